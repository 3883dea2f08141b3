package firmware

import (
	"slices"
	"testing"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// A flagged sale carries its posterior and the other baskets the weights
// allow, priced, so the platform can settle it without inference.
func TestFlaggedSaleCarriesAlternatives(t *testing.T) {
	r := newConfusableRig(t)
	sale := r.shopShelf3(func() {
		if err := r.hw.Take(confusableShelf, "CQ-0304", 1); err != nil { // 500 g, ¥68
			t.Fatal(err)
		}
	})
	dump(t, sale)
	if sale.Status != msg.SaleAmbiguous || sale.Posterior == nil || len(sale.Alternatives) == 0 {
		t.Fatalf("sale %s posterior %v alternatives %+v: want flagged with alternatives", sale.Status, sale.Posterior, sale.Alternatives)
	}
	// 1 × 500 g (¥68) or 2 × 250 g (2 × ¥36): whichever is charged, the
	// other is an alternative with its price.
	found := false
	for _, a := range sale.Alternatives {
		if a.Posterior <= 0 || a.Posterior > 1 || a.Lines == nil {
			t.Errorf("alternative %+v: posterior out of range or null lines", a)
		}
		var fen int64
		for _, l := range a.Lines {
			fen += int64(l.Qty) * map[string]int64{"CQ-0303": 3600, "CQ-0304": 6800}[l.SKU]
		}
		if fen != a.TotalFen {
			t.Errorf("alternative %+v: total %d, lines price to %d", a, a.TotalFen, fen)
		}
		found = found || slices.ContainsFunc(a.Lines, func(l msg.AltLine) bool { return l.SKU != sale.Lines[0].SKU })
	}
	if !found {
		t.Errorf("alternatives %+v lack the other pack size", sale.Alternatives)
	}
}

// The books say one unit is left; the weights say three went. The sale is
// judged on the weights alone — three units are its most probable basket,
// charged or (when a cheaper reading stays plausible) first in line for the
// reviewer — and stock_mismatch names the shelf and SKU.
func TestStockMismatchAlarm(t *testing.T) {
	r := newRig(t)
	r.seedStock(map[int]map[string]int{1: {"NM-0003": 1}})
	sale := r.shopShelf3(func() {
		if err := r.hw.Take(1, "NM-0003", 3); err != nil {
			t.Fatal(err)
		}
	})
	dump(t, sale)
	three := func(sku string, qty, n int) bool { return n == 1 && sku == "NM-0003" && qty == 3 }
	charged := len(sale.Lines) == 1 && three(sale.Lines[0].SKU, sale.Lines[0].Qty, 1)
	first := len(sale.Alternatives) > 0 && len(sale.Alternatives[0].Lines) == 1 &&
		three(sale.Alternatives[0].Lines[0].SKU, sale.Alternatives[0].Lines[0].Qty, 1)
	if !charged && !first || sale.TotalFen > 3*11800 {
		t.Fatalf("lines %+v alternatives %+v: want 3 × NM-0003 charged or first alternative", sale.Lines, sale.Alternatives)
	}
	a := r.alarms(msg.AlarmStockMismatch)
	if len(a) != 1 || a[0].Detail["shelf"] != float64(1) || a[0].Detail["sku"] != "NM-0003" ||
		a[0].Detail["stock"] != float64(1) || a[0].Detail["removed"] != float64(3) {
		t.Fatalf("stock_mismatch alarms %+v", a)
	}
}
