package stock

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/catalog"
	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/telemetry/msg"
)

var now = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// example is the stock file of docs/simulator.md.
const example = `{"products":[{"sku":"HONEY-500","name":"土蜂蜜 500克","unit_weight_g":500,"weight_tol_g":8,"price_fen":6800},
             {"sku":"TEA-100","name":"高山绿茶 100克","unit_weight_g":100,"weight_tol_g":2,"price_fen":3800}],
 "shelves":[{"shelf":1,"door":1,"items":{"HONEY-500":8}},
            {"shelf":2,"door":1,"items":{"TEA-100":12,"HONEY-500":4}}]}`

func TestParseExample(t *testing.T) {
	g, err := Parse([]byte(example), now)
	if err != nil {
		t.Fatal(err)
	}
	c := g.Catalog(now, "150000")
	if err := catalog.Validate(c); err != nil {
		t.Fatalf("catalog the cabinet would refuse: %v", err)
	}
	want := []msg.Product{
		{SKU: "HONEY-500", CertNo: "FAKE-0001", Name: "土蜂蜜 500克", SupplierID: SupplierIDPlaceholder,
			Supplier: "示例供应商（非真实）", OriginCode: "000000", Origin: "示例产地（非真实）",
			UnitWeightG: 500, WeightTolG: 8, PriceFen: 6800, ValidUntil: msg.At(now.AddDate(1, 0, 0)), Status: msg.StatusActive},
		{SKU: "TEA-100", CertNo: "FAKE-0002", Name: "高山绿茶 100克", SupplierID: SupplierIDPlaceholder,
			Supplier: "示例供应商（非真实）", OriginCode: "000000", Origin: "示例产地（非真实）",
			UnitWeightG: 100, WeightTolG: 2, PriceFen: 3800, ValidUntil: msg.At(now.AddDate(1, 0, 0)), Status: msg.StatusActive},
	}
	if !reflect.DeepEqual(c.Products, want) {
		t.Errorf("products\n got %+v\nwant %+v", c.Products, want)
	}
	if c.Version != 1 || c.Region != "150000" || !c.IssuedAt.Equal(now) {
		t.Errorf("catalog header %d %q %v", c.Version, c.Region, c.IssuedAt)
	}
	p := g.Planogram("NM-150102-0007")
	wantPlan := msg.Planogram{Version: 1, CabinetID: "NM-150102-0007", Shelves: []msg.PlanogramShelf{
		{Shelf: 1, Door: 1, SKUs: []string{"HONEY-500"}},
		{Shelf: 2, Door: 1, SKUs: []string{"HONEY-500", "TEA-100"}},
	}}
	if !reflect.DeepEqual(p, wantPlan) {
		t.Errorf("planogram\n got %+v\nwant %+v", p, wantPlan)
	}
	if got := g.Shelves()[1].Items; !reflect.DeepEqual(got, map[string]int{"TEA-100": 12, "HONEY-500": 4}) {
		t.Errorf("shelf 2 items %v", got)
	}
	if g.Doors() != 1 {
		t.Errorf("doors %d", g.Doors())
	}
	// Callers get copies.
	g.Shelves()[0].Items["HONEY-500"] = 99
	g.Products()[0].PriceFen = 1
	if g.Shelves()[0].Items["HONEY-500"] != 8 || g.Catalog(now, "").Products[0].PriceFen != 6800 {
		t.Error("accessors share the goods' maps or slices")
	}
}

func TestParseEverything(t *testing.T) {
	until := now.AddDate(0, 6, 0)
	data := `{"products":[{"sku":"A-1","cert_no":"C-1","name":"甲","supplier_id":"S-1","supplier":"乙",
	  "origin_code":"500242","origin":"丙","unit_weight_g":250,"weight_tol_g":3,"price_fen":3600,
	  "valid_until":"` + until.Format("2006-01-02T15:04:05.000Z") + `","status":"revoked"},
	  {"sku":"B-2","name":"丁","unit_weight_g":600,"weight_tol_g":4,"price_fen":100}],
	 "shelves":[{"shelf":3,"door":2,"items":{"A-1":0,"B-2":5},"lanes":{"A-1":0.25,"B-2":1}}]}`
	g, err := Parse([]byte(data), now)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := g.Product("A-1")
	want := msg.Product{SKU: "A-1", CertNo: "C-1", Name: "甲", SupplierID: "S-1", Supplier: "乙", OriginCode: "500242",
		Origin: "丙", UnitWeightG: 250, WeightTolG: 3, PriceFen: 3600, ValidUntil: msg.At(until), Status: msg.StatusRevoked}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("product\n got %+v\nwant %+v", a, want)
	}
	if b, _ := g.Product("B-2"); b.CertNo != "FAKE-0002" {
		t.Errorf("second product's placeholder cert_no %q", b.CertNo)
	}
	sh := g.Planogram("C").Shelves[0]
	if sh.Shelf != 3 || sh.Door != 2 || !slices.Equal(sh.SKUs, []string{"A-1", "B-2"}) ||
		!reflect.DeepEqual(sh.Lanes, map[string]float64{"A-1": 0.25, "B-2": 1}) {
		t.Errorf("planogram shelf %+v", sh)
	}
	if g.Doors() != 2 {
		t.Errorf("doors %d, want 2", g.Doors())
	}
}

// TestParseRefuses feeds bad stock files: each is refused with an error
// naming the problem.
func TestParseRefuses(t *testing.T) {
	prod := func(extra string) string {
		return `{"sku":"HONEY-500","name":"土蜂蜜","unit_weight_g":500,"weight_tol_g":8,"price_fen":6800` + extra + `}`
	}
	file := func(products, shelves string) string {
		return `{"products":[` + products + `],"shelves":[` + shelves + `]}`
	}
	shelf1 := `{"shelf":1,"door":1,"items":{"HONEY-500":8}}`
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not JSON", `{"products":`, "unexpected"},
		{"trailing data", file(prod(""), shelf1) + `{}`, "trailing data"},
		{"unknown top-level field", `{"products":[` + prod("") + `],"shelves":[` + shelf1 + `],"cabinet":"x"}`, `unknown field "cabinet"`},
		{"unknown product field", file(prod(`,"colour":"gold"`), shelf1), `unknown field "colour"`},
		{"unknown shelf field", file(prod(""), `{"shelf":1,"door":1,"items":{"HONEY-500":8},"depth_cm":40}`), `unknown field "depth_cm"`},
		{"duplicate key", file(prod(`,"price_fen":1`), shelf1), `duplicate key "price_fen"`},
		{"duplicate item key", file(prod(""), `{"shelf":1,"door":1,"items":{"HONEY-500":8,"HONEY-500":2}}`), `duplicate key "HONEY-500"`},
		{"wrong type", file(prod(""), `{"shelf":"one","door":1,"items":{"HONEY-500":8}}`), "cannot unmarshal"},
		{"no products", `{"products":[],"shelves":[` + shelf1 + `]}`, "no products"},
		{"no shelves", `{"products":[` + prod("") + `],"shelves":[]}`, "no shelves"},
		{"unknown SKU on a shelf", file(prod(""), `{"shelf":1,"door":1,"items":{"HONEY-250":8}}`), `shelves[0] (shelf 1): SKU "HONEY-250" is not among the products`},
		{"duplicate shelf", file(prod(""), shelf1+","+shelf1), "shelf 1 listed twice"},
		{"duplicate SKU", file(prod("")+","+prod(""), shelf1), `SKU "HONEY-500" listed twice`},
		{"zero weight", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":0,"weight_tol_g":0,"price_fen":1}`, shelf1), "unit_weight_g 0: must be positive"},
		{"negative weight", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":-500,"weight_tol_g":8,"price_fen":1}`, shelf1), "unit_weight_g -500: must be positive"},
		{"tolerance as large as the weight", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"weight_tol_g":500,"price_fen":1}`, shelf1), "weight_tol_g 500: must be below unit_weight_g 500"},
		{"tolerance over half the weight", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"weight_tol_g":300,"price_fen":1}`, shelf1), "under half the unit weight"},
		{"negative tolerance", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"weight_tol_g":-1,"price_fen":1}`, shelf1), "weight_tol_g -1: must not be negative"},
		{"negative price", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"weight_tol_g":8,"price_fen":-6800}`, shelf1), "price_fen -6800: must not be negative"},
		{"free", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"weight_tol_g":8,"price_fen":0}`, shelf1), "price_fen 0"},
		{"fractional price", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"weight_tol_g":8,"price_fen":68.5}`, shelf1), "cannot unmarshal"},
		{"negative quantity", file(prod(""), `{"shelf":1,"door":1,"items":{"HONEY-500":-1}}`), "-1 units of HONEY-500: must be 0 or more"},
		{"shelf 0", file(prod(""), `{"shelf":0,"door":1,"items":{"HONEY-500":8}}`), "shelf number 0: must be 1 or more"},
		{"negative shelf", file(prod(""), `{"shelf":-2,"door":1,"items":{"HONEY-500":8}}`), "shelf number -2: must be 1 or more"},
		{"door 0", file(prod(""), `{"shelf":1,"door":0,"items":{"HONEY-500":8}}`), "door 0: must be 1 to 16"},
		{"door left out", file(prod(""), `{"shelf":1,"items":{"HONEY-500":8}}`), "door 0: must be 1 to 16"},
		{"empty shelf", file(prod(""), `{"shelf":1,"door":1,"items":{}}`), "(shelf 1): no items"},
		{"too heavy", file(prod(""), `{"shelf":1,"door":1,"items":{"HONEY-500":170}}`), "more than the load cell's"},
		{"lane out of range", file(prod(""), `{"shelf":1,"door":1,"items":{"HONEY-500":8},"lanes":{"HONEY-500":1.5}}`), "want 0 to 1"},
		{"lane of a SKU not on the shelf", file(prod(""), `{"shelf":1,"door":1,"items":{"HONEY-500":8},"lanes":{"TEA-100":0.5}}`), "lanes"},
		{"sku missing", file(`{"name":"x","unit_weight_g":500,"weight_tol_g":8,"price_fen":1}`, shelf1), "products[0]: sku missing"},
		{"price missing", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"weight_tol_g":8}`, shelf1), "price_fen missing"},
		{"tolerance missing", file(`{"sku":"HONEY-500","name":"x","unit_weight_g":500,"price_fen":1}`, shelf1), "weight_tol_g missing"},
		{"name missing", file(`{"sku":"HONEY-500","unit_weight_g":500,"weight_tol_g":8,"price_fen":1}`, shelf1), "name missing"},
		{"cert_no empty", file(prod(`,"cert_no":""`), shelf1), "cert_no is empty"},
		{"status unknown", file(prod(`,"status":"suspended"`), shelf1), "status"},
		{"control character in a name", file(`{"sku":"HONEY-500","name":"土蜂蜜\u0007","unit_weight_g":500,"weight_tol_g":8,"price_fen":1}`, shelf1), "name"},
		{"valid_until null", file(prod(`,"valid_until":null`), shelf1), "valid_until is null"},
		{"expired", file(prod(`,"valid_until":"2025-01-01T00:00:00.000Z"`), shelf1), "valid_until 2025-01-01T00:00:00Z has passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse([]byte(tc.data), now)
			if err == nil {
				t.Fatalf("accepted: %+v", g)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.json"), now); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Fatalf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(path, []byte(`{"products":[],"shelves":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, now); err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "no products") {
		t.Fatalf("bad file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, []byte(`{"products":[`+strings.Repeat(" ", MaxFileBytes)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, now); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversize file: %v", err)
	}
}

// TestShippedStocks checks simulator/stocks: standard-packs.json has six
// shelves of standard pack sizes that the planogram lint passes;
// confusable.json has exactly one shelf it flags, two pack sizes of one
// 花椒.
func TestShippedStocks(t *testing.T) {
	std, err := Load(filepath.Join("..", "stocks", "standard-packs.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(std.Shelves()); n != 6 {
		t.Errorf("standard-packs: %d shelves, want 6", n)
	}
	packs := []float64{100, 150, 200, 250, 400, 500, 1000}
	for _, p := range std.Products() {
		if !slices.Contains(packs, p.UnitWeightG) {
			t.Errorf("standard-packs: %s weighs %g g, not a standard pack", p.SKU, p.UnitWeightG)
		}
		if r := p.WeightTolG / p.UnitWeightG; r < 0.01 || r > 0.03 {
			t.Errorf("standard-packs: %s tolerance %g g is %.1f %% of its weight, want 1–3 %%", p.SKU, p.WeightTolG, 100*r)
		}
	}
	for _, sh := range std.Shelves() {
		var ws []float64
		for sku := range sh.Items {
			p, _ := std.Product(sku)
			ws = append(ws, p.UnitWeightG)
		}
		if slices.Contains(ws, 250) && slices.Contains(ws, 500) {
			t.Errorf("standard-packs: shelf %d holds 250 g and 500 g packs", sh.Shelf)
		}
	}
	if w := std.Lint(); len(w) != 0 {
		t.Errorf("standard-packs: lint warnings %+v", w)
	}

	conf, err := Load(filepath.Join("..", "stocks", "confusable.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	w := conf.Lint()
	if len(w) != 1 || w[0].Shelf != 3 || strings.Join(w[0].SKUs, ",") != "CQ-0303,CQ-0304" {
		t.Fatalf("confusable: lint warnings %+v, want exactly shelf 3's CQ-0303 vs CQ-0304", w)
	}
	for _, sku := range w[0].SKUs {
		if p, _ := conf.Product(sku); !strings.Contains(p.Name, "花椒") {
			t.Errorf("confusable: %s is %q, want a 花椒", sku, p.Name)
		}
	}
}

// TestDemo checks the demo's goods go through the same checks and that no
// demo shelf mixes products the lint cannot tell apart.
func TestDemo(t *testing.T) {
	g, err := Demo(now)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range g.Planogram("C").Shelves {
		if w := infer.Lint(sh.Shelf, lintSKUs(g, sh.SKUs), 0); len(w) != 0 {
			t.Errorf("demo shelf %d: lint warnings %+v", sh.Shelf, w)
		}
	}
	if _, ok := g.Product("CQ-0303"); !ok {
		t.Error("CQ-0303 left the demo catalog")
	}
}

func lintSKUs(g *Goods, ids []string) []infer.SKU {
	var out []infer.SKU
	for _, id := range ids {
		p, _ := g.Product(id)
		out = append(out, infer.SKU{SKU: id, UnitG: p.UnitWeightG, TolG: p.WeightTolG, PriceFen: p.PriceFen})
	}
	return out
}

// TestWithLanes: every SKU of every shelf gets a lane — the file's where
// it gives one, else its place among the shelf's SKUs spread evenly in SKU
// order — the planogram carries them, and the goods it came from keep
// theirs.
func TestWithLanes(t *testing.T) {
	const file = `{"products":[{"sku":"A","name":"甲","unit_weight_g":500,"weight_tol_g":8,"price_fen":600},
             {"sku":"B","name":"乙","unit_weight_g":100,"weight_tol_g":2,"price_fen":300},
             {"sku":"C","name":"丙","unit_weight_g":250,"weight_tol_g":3,"price_fen":400}],
 "shelves":[{"shelf":1,"door":1,"items":{"A":8}},
            {"shelf":2,"door":1,"items":{"C":1,"B":12,"A":4}},
            {"shelf":3,"door":1,"items":{"C":1,"B":0},"lanes":{"C":0.1}}]}`
	g, err := Parse([]byte(file), now)
	if err != nil {
		t.Fatal(err)
	}
	l := g.WithLanes()
	want := map[int]map[string]float64{
		1: {"A": 0.5},
		2: {"A": 1.0 / 6, "B": 0.5, "C": 5.0 / 6},
		3: {"B": 0.25, "C": 0.1},
	}
	plan := l.Planogram("NM-1")
	for _, sh := range plan.Shelves {
		if !reflect.DeepEqual(sh.Lanes, want[sh.Shelf]) {
			t.Errorf("shelf %d: planogram lanes %v, want %v", sh.Shelf, sh.Lanes, want[sh.Shelf])
		}
		if err := sh.ValidateLanes(); err != nil {
			t.Error(err)
		}
	}
	for _, sh := range l.Shelves() {
		if !reflect.DeepEqual(sh.Lanes, want[sh.Shelf]) {
			t.Errorf("shelf %d: lanes %v, want %v", sh.Shelf, sh.Lanes, want[sh.Shelf])
		}
	}
	if sh := g.Shelves(); sh[0].Lanes != nil || len(sh[2].Lanes) != 1 {
		t.Errorf("WithLanes changed the goods it came from: %+v", sh)
	}
	if p, ok := l.Product("B"); !ok || p.UnitWeightG != 100 {
		t.Errorf("products lost: %+v", p)
	}
}
