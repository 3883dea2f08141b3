package demo

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/telemetry/msg"
)

var now = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func TestCatalog(t *testing.T) {
	c := Catalog(now)
	if c.Version != 1 || c.Region != "150000" || !c.IssuedAt.Equal(now) {
		t.Fatalf("catalog header = %d %q %v", c.Version, c.Region, c.IssuedAt)
	}
	if n := len(c.Products); n < 12 || n > 16 {
		t.Errorf("%d products, want 12–16", n)
	}
	skuRE := regexp.MustCompile(`^(NM|QH|CQ)-\d{4}$`)
	certRE := regexp.MustCompile(`^FP-(\d{6})-20\d\d-\d{4}$`)
	prefix := map[string]string{"NM": "15", "QH": "63", "CQ": "50"}
	seen := map[string]bool{}
	for _, p := range c.Products {
		t.Run(p.SKU, func(t *testing.T) {
			if seen[p.SKU] {
				t.Errorf("duplicate SKU")
			}
			seen[p.SKU] = true
			if !skuRE.MatchString(p.SKU) {
				t.Errorf("SKU format")
			}
			m := certRE.FindStringSubmatch(p.CertNo)
			if m == nil || m[1] != p.OriginCode {
				t.Errorf("cert_no %q does not name origin %s", p.CertNo, p.OriginCode)
			}
			// The SKU prefix and the county code agree on the province.
			if !strings.HasPrefix(p.OriginCode, prefix[p.SKU[:2]]) {
				t.Errorf("origin %s is not in the SKU's province", p.OriginCode)
			}
			if p.Name == "" || p.Supplier == "" || p.SupplierID == "" || p.Origin == "" {
				t.Errorf("missing text field: %+v", p)
			}
			if p.UnitWeightG < 150 || p.UnitWeightG > 1000 || p.WeightTolG < 2 || p.WeightTolG > 8 {
				t.Errorf("weight %v±%v out of the demo range", p.UnitWeightG, p.WeightTolG)
			}
			if p.PriceFen <= 0 || p.Status != msg.StatusActive || !p.ValidUntil.After(now.AddDate(0, 11, 0)) {
				t.Errorf("not sellable for a year: %+v", p)
			}
		})
	}
	// The wire form carries the timestamps as the contract says.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"issued_at":"2026-03-01T08:00:00.000Z"`) {
		t.Errorf("issued_at not in contract form: %.200s", b)
	}
}

func TestPlanogram(t *testing.T) {
	cat := map[string]msg.Product{}
	for _, p := range Catalog(now).Products {
		cat[p.SKU] = p
	}
	p := Planogram("NM-150125-0007")
	if p.Version != 1 || p.CabinetID != "NM-150125-0007" || len(p.Shelves) != 4 {
		t.Fatalf("planogram = %+v", p)
	}
	stock := Stock()
	for _, s := range p.Shelves {
		if s.Door != 1 || len(s.SKUs) < 2 || len(s.SKUs) > 4 {
			t.Errorf("shelf %d: door %d, %d SKUs", s.Shelf, s.Door, len(s.SKUs))
		}
		var skus []infer.SKU
		for _, id := range s.SKUs {
			pr, ok := cat[id]
			if !ok {
				t.Errorf("shelf %d: %s not in the catalog", s.Shelf, id)
				continue
			}
			skus = append(skus, infer.SKU{SKU: id, UnitG: pr.UnitWeightG, TolG: pr.WeightTolG, PriceFen: pr.PriceFen})
			if n := stock[s.Shelf][id]; n < 6 || n > 12 {
				t.Errorf("shelf %d: stock of %s = %d, want 6–12", s.Shelf, id, n)
			}
		}
		if len(stock[s.Shelf]) != len(s.SKUs) {
			t.Errorf("shelf %d: stock lists %d SKUs, planogram %d", s.Shelf, len(stock[s.Shelf]), len(s.SKUs))
		}
		// No shelf mixes SKUs whose small baskets weigh alike.
		if w := infer.Lint(s.Shelf, skus, 0); len(w) != 0 {
			t.Errorf("shelf %d: lint warnings %+v", s.Shelf, w)
		}
	}
	// The 250 g 花椒 stays in the catalog, off the shelves.
	if _, ok := cat["CQ-0303"]; !ok {
		t.Error("CQ-0303 left the catalog")
	}
	for _, s := range p.Shelves {
		if slices.Contains(s.SKUs, "CQ-0303") {
			t.Errorf("shelf %d holds CQ-0303 again", s.Shelf)
		}
	}
}

func TestCopies(t *testing.T) {
	// Callers get their own copies: editing one must not change the next.
	p := Planogram("C1")
	p.Shelves[0].SKUs[0] = "XX-0000"
	if Planogram("C1").Shelves[0].SKUs[0] == "XX-0000" {
		t.Error("Planogram shares its SKU slices")
	}
	s := Stock()
	s[1]["NM-0001"] = 999
	if Stock()[1]["NM-0001"] == 999 {
		t.Error("Stock shares its maps")
	}
}
