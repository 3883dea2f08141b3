// Package world is a realistic test world for the basket inference of
// firmware/infer, and the scoring that measures infer.Infer against it.
//
// The world is drawn from how real products, shelves, shoppers and load
// cells behave, not from the inference model's own assumptions: certified
// goods in standard pack sizes whose units scatter within their declared
// tolerance (with a per-product fill bias and a few units near the limit),
// random lint-clean planograms across whose shelves weights are whole
// multiples of each other, stock books that are sometimes off by a unit,
// shoppers who buy, put back, move goods between shelves, leave their keys,
// lean on a shelf, bulk-buy or take nothing, and load cells with noise,
// zero drift, creep and hysteresis, on one cell or two per shelf.
//
// NewPlanogram draws a cabinet; Planogram.Session draws one shopping
// session and returns the infer inputs together with the truth; Score and
// Report judge infer.Results against that truth and print markdown tables.
// Every draw comes from the caller's *rand.Rand, so seeded runs replay.
//
// It may import the standard library and firmware/infer (for the types it
// feeds Infer and for Lint) and nothing else. It must not borrow infer's
// defaults or priors to shape the world: the point is to find out where
// the model's assumptions and the world part.
package world

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/bangfu/cabinet/firmware/infer"
)

// Product is a certified product as it really is: the catalog entry the
// cabinet knows (UnitG, TolG, PriceFen) and the fill bias it does not.
type Product struct {
	infer.SKU
	// Name is a human label such as "honey 500 g".
	Name string
	// BiasG is the product's fill bias: the mean offset of its units from
	// UnitG, uniform in ±FillBiasFrac·TolG.
	BiasG float64
}

// Unit weights of a product: a fill bias per product, then a normal
// scatter, with a few units drawn near the tolerance limit; every unit is
// clipped into UnitG±TolG (certified goods are in spec).
const (
	// FillBiasFrac bounds a product's fill bias, as a fraction of TolG.
	FillBiasFrac = 0.3
	// UnitSDFrac is σ of a unit around the biased mean, as a fraction of
	// TolG (σ ≈ TolG/2.5).
	UnitSDFrac = 1 / 2.5
	// NearLimitShare is the share of units whose offset lies near the
	// limit: |offset| uniform in [NearLimitLo, 1]·TolG.
	NearLimitShare = 0.03
	// NearLimitLo is the lower end of a near-limit unit's |offset|, as a
	// fraction of TolG.
	NearLimitLo = 0.75
)

// DrawUnitG draws the true weight of one unit of p.
func (p Product) DrawUnitG(rng *rand.Rand) float64 {
	var off float64
	if rng.Float64() < NearLimitShare {
		off = (NearLimitLo + (1-NearLimitLo)*rng.Float64()) * p.TolG
		if rng.IntN(2) == 0 {
			off = -off
		}
	} else {
		off = p.BiasG + rng.NormFloat64()*UnitSDFrac*p.TolG
	}
	return p.UnitG + clamp(off, -p.TolG, p.TolG)
}

// category is a kind of product with the pack sizes it is sold in and its
// price per gram in fen.
type category struct {
	name    string
	sizes   []float64
	fenPerG [2]float64
}

// categories are the goods of a rural-products cabinet. 50 g and 750 g
// packs exist but are rare (see rareSizeWeight).
var categories = []category{
	{"honey", []float64{250, 500, 1000}, [2]float64{6, 14}},
	{"beef jerky", []float64{100, 150, 200, 250}, [2]float64{25, 50}},
	{"tea", []float64{50, 100, 150, 250}, [2]float64{40, 90}},
	{"rice", []float64{500, 1000}, [2]float64{1.5, 3}},
	{"noodles", []float64{400, 500, 1000}, [2]float64{2, 5}},
	{"chili sauce", []float64{200, 250, 400, 750}, [2]float64{4, 10}},
	{"mixed nuts", []float64{150, 200, 250, 500}, [2]float64{10, 25}},
	{"dried mushrooms", []float64{100, 150, 200, 250}, [2]float64{30, 60}},
	{"red dates", []float64{250, 400, 500, 1000}, [2]float64{5, 12}},
	{"goji berries", []float64{100, 250, 500}, [2]float64{10, 25}},
}

// Catalog and price limits.
const (
	// rareSizeWeight is the relative weight of a 50 g or 750 g pack among
	// a category's sizes (the standard sizes weigh 1).
	rareSizeWeight = 0.15
	// MinPriceFen and MaxPriceFen bound a unit's price.
	MinPriceFen = 1000
	MaxPriceFen = 15000
	// MinCatalog and MaxCatalog bound the products of one planogram's
	// catalog.
	MinCatalog = 20
	MaxCatalog = 40
)

// tolerancePct are the declared tolerances, in percent of the nominal.
var tolerancePct = []float64{1, 1.5, 2, 2.5, 3}

// newProduct draws product number i of a catalog.
func newProduct(rng *rand.Rand, i int) Product {
	c := categories[rng.IntN(len(categories))]
	w := drawSize(rng, c.sizes)
	tol := w * tolerancePct[rng.IntN(len(tolerancePct))] / 100
	rate := c.fenPerG[0] + (c.fenPerG[1]-c.fenPerG[0])*rng.Float64()
	price := int64(math.Round(w*rate/10)) * 10
	p := Product{
		SKU: infer.SKU{
			SKU:      fmt.Sprintf("W-%03d", i+1),
			UnitG:    w,
			TolG:     tol,
			PriceFen: min(max(price, MinPriceFen), MaxPriceFen),
		},
		Name:  fmt.Sprintf("%s %g g", c.name, w),
		BiasG: (2*rng.Float64() - 1) * FillBiasFrac * tol,
	}
	return p
}

// drawSize picks a pack size, the rare 50 g and 750 g packs less often.
func drawSize(rng *rand.Rand, sizes []float64) float64 {
	weights := make([]float64, len(sizes))
	for i, s := range sizes {
		weights[i] = 1
		if s == 50 || s == 750 {
			weights[i] = rareSizeWeight
		}
	}
	return sizes[pickWeighted(rng, weights)]
}

// NewCatalog draws a catalog of MinCatalog..MaxCatalog products.
func NewCatalog(rng *rand.Rand) []Product {
	n := MinCatalog + rng.IntN(MaxCatalog-MinCatalog+1)
	out := make([]Product, n)
	for i := range out {
		out[i] = newProduct(rng, i)
	}
	return out
}

// pickWeighted returns an index drawn with probability proportional to
// its weight.
func pickWeighted(rng *rand.Rand, weights []float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	r := rng.Float64() * sum
	for i, w := range weights {
		if r < w {
			return i
		}
		r -= w
	}
	return len(weights) - 1
}

func clamp(x, lo, hi float64) float64 { return min(max(x, lo), hi) }
