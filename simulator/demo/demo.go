// Package demo holds the simulator's demonstration data: a certified catalog
// of products from formerly poor counties of Inner Mongolia, Qinghai and
// Chongqing, one cabinet's planogram and its initial stock.
//
// It owns only data. It must not touch the firmware's state, the platform
// keys or the wire format: products and planograms are built with the
// telemetry/msg types as they are, and signing and publishing them is the
// virtual platform's job. Weights and tolerances are chosen so that the
// planogram lint passes every shelf: no two small baskets of one shelf's
// SKUs weigh alike, so a purchase of a few units is told exactly. The
// catalog still lists two pack sizes of the same 花椒 (CQ-0303, 250 g, and
// CQ-0304, 500 g), but only the 500 g pack is on a shelf; the cabinet that
// puts both on one shelf, to show the lint and the ambiguous sale, is the
// stock file simulator/stocks/confusable.json.
package demo

import (
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// Region is the catalog's issuing region (Inner Mongolia Autonomous Region).
const Region = "150000"

type product struct {
	sku, cert, name, supplierID, supplier, originCode, origin string
	weightG, tolG                                             float64
	priceFen                                                  int64
}

// products is the demo catalog. Certification numbers follow the pattern
// FP-<county code>-<year>-<serial> of the regional 消费帮扶 product
// certification; suppliers are fictitious.
var products = []product{
	// Inner Mongolia
	{"NM-0001", "FP-150125-2024-0031", "武川莜面（莜麦全粉）", "S-150125-003", "武川县禾川莜麦种植专业合作社",
		"150125", "内蒙古自治区呼和浩特市武川县", 780, 5, 2680},
	{"NM-0002", "FP-150125-2024-0047", "武川莜麦挂面", "S-150125-003", "武川县禾川莜麦种植专业合作社",
		"150125", "内蒙古自治区呼和浩特市武川县", 900, 6, 1880},
	{"NM-0003", "FP-150929-2024-0012", "四子王旗手撕风干羊肉", "S-150929-001", "四子王旗草原牧歌肉食品有限公司",
		"150929", "内蒙古自治区乌兰察布市四子王旗", 368, 2, 11800},
	{"NM-0004", "FP-150928-2023-0106", "察右后旗马铃薯宽粉条", "S-150928-002", "察右后旗薯乡农产品加工有限公司",
		"150928", "内蒙古自治区乌兰察布市察哈尔右翼后旗", 380, 3, 1690},
	{"NM-0005", "FP-150430-2024-0215", "敖汉小米", "S-150430-007", "敖汉旗金谷杂粮种植专业合作社",
		"150430", "内蒙古自治区赤峰市敖汉旗", 888, 7, 2590},
	// Qinghai
	{"QH-0201", "FP-630223-2024-0009", "互助青稞米", "S-630223-004", "互助县高原青稞农牧专业合作社",
		"630223", "青海省海东市互助土族自治县", 800, 5, 2290},
	{"QH-0202", "FP-630223-2024-0018", "互助青稞炒面（糌粑）", "S-630223-004", "互助县高原青稞农牧专业合作社",
		"630223", "青海省海东市互助土族自治县", 568, 3, 2380},
	{"QH-0203", "FP-630225-2023-0077", "循化线辣椒面", "S-630225-002", "循化县撒拉人家农产品有限公司",
		"630225", "青海省海东市循化撒拉族自治县", 158, 2, 1590},
	{"QH-0204", "FP-630224-2024-0035", "化隆清真牛肉干", "S-630224-001", "化隆县群科牛羊肉食品有限公司",
		"630224", "青海省海东市化隆回族自治县", 188, 2, 5980},
	// Chongqing
	{"CQ-0301", "FP-500229-2024-0102", "城口老腊肉", "S-500229-005", "城口县大巴山腊味食品有限公司",
		"500229", "重庆市城口县", 600, 4, 6980},
	{"CQ-0302", "FP-500238-2024-0023", "巫溪老鹰茶", "S-500238-003", "巫溪县红池坝茶叶专业合作社",
		"500238", "重庆市巫溪县", 150, 2, 3900},
	{"CQ-0303", "FP-500242-2024-0061", "酉阳青花椒 250克", "S-500242-006", "酉阳县桃花源花椒种植专业合作社",
		"500242", "重庆市酉阳土家族苗族自治县", 250, 3, 3600},
	{"CQ-0304", "FP-500242-2024-0062", "酉阳青花椒 500克", "S-500242-006", "酉阳县桃花源花椒种植专业合作社",
		"500242", "重庆市酉阳土家族苗族自治县", 500, 4, 6800},
	{"CQ-0305", "FP-500240-2024-0044", "石柱莼菜（瓶装）", "S-500240-002", "石柱县黄水莼菜专业合作社",
		"500240", "重庆市石柱土家族自治县", 380, 2, 2880},
	{"CQ-0306", "FP-500240-2023-0019", "石柱红干辣椒", "S-500240-008", "石柱县辣椒产业发展有限公司",
		"500240", "重庆市石柱土家族自治县", 258, 2, 1690},
}

// shelves is the demo planogram: products of one origin region per shelf,
// the way a 消费帮扶 cabinet presents them. Two SKUs a shelf, because with
// three the summed tolerances of a 0–3-units-each basket let another basket
// fit in about a third of the cases (measured over all lint-clean triples of
// common pack weights); and the weights are picked so that no unit of one
// shelf weighs like a small ± combination of another shelf's units, which
// inference would otherwise have to read as a possible move. Shelf 3 pairs
// the 500 g 花椒 with a 150 g tea, not with the 250 g 花椒: two of those
// weigh one 500 g pack within tolerance.
var shelves = []msg.PlanogramShelf{
	{Shelf: 1, Door: 1, SKUs: []string{"NM-0001", "NM-0003"}},
	{Shelf: 2, Door: 1, SKUs: []string{"QH-0201", "QH-0202"}},
	{Shelf: 3, Door: 1, SKUs: []string{"CQ-0302", "CQ-0304"}},
	{Shelf: 4, Door: 1, SKUs: []string{"CQ-0301", "CQ-0305"}},
}

// stock is the initial units per shelf and SKU.
var stock = map[int]map[string]int{
	1: {"NM-0001": 6, "NM-0003": 12},
	2: {"QH-0201": 6, "QH-0202": 8},
	3: {"CQ-0302": 10, "CQ-0304": 8},
	4: {"CQ-0301": 6, "CQ-0305": 9},
}

// Catalog returns the demo catalog as the platform would issue it at now:
// version 1, region 150000, every product active and valid for a year.
func Catalog(now time.Time) msg.Catalog {
	c := msg.Catalog{Version: 1, IssuedAt: msg.At(now), Region: Region}
	until := msg.At(now.AddDate(1, 0, 0))
	for _, p := range products {
		c.Products = append(c.Products, msg.Product{
			SKU: p.sku, CertNo: p.cert, Name: p.name,
			SupplierID: p.supplierID, Supplier: p.supplier,
			OriginCode: p.originCode, Origin: p.origin,
			UnitWeightG: p.weightG, WeightTolG: p.tolG, PriceFen: p.priceFen,
			ValidUntil: until, Status: msg.StatusActive,
		})
	}
	return c
}

// Planogram returns the demo planogram (version 1) for cabinetID: four
// shelves behind door 1.
func Planogram(cabinetID string) msg.Planogram {
	p := msg.Planogram{Version: 1, CabinetID: cabinetID}
	for _, s := range shelves {
		s.SKUs = append([]string(nil), s.SKUs...) // callers may edit their copy
		p.Shelves = append(p.Shelves, s)
	}
	return p
}

// Stock returns the initial units per shelf and SKU of the demo planogram;
// every call returns a fresh copy.
func Stock() map[int]map[string]int {
	out := make(map[int]map[string]int, len(stock))
	for shelf, m := range stock {
		c := make(map[string]int, len(m))
		for sku, n := range m {
			c[sku] = n
		}
		out[shelf] = c
	}
	return out
}
