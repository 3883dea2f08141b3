package demo

import (
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/infer"
)

func TestProbe(t *testing.T) {
	c := Catalog(time.Now())
	by := map[string]infer.SKU{}
	for _, p := range c.Products {
		by[p.SKU] = infer.SKU{SKU: p.SKU, UnitG: p.UnitWeightG, TolG: p.WeightTolG, PriceFen: p.PriceFen}
	}
	for _, s := range Planogram("X").Shelves {
		var ks []infer.SKU
		for _, n := range s.SKUs {
			ks = append(ks, by[n])
		}
		for _, w := range infer.Lint(s.Shelf, ks, 0) {
			t.Log(w.Text)
		}
	}
}
