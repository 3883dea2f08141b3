package world

import (
	"math/rand/v2"

	"github.com/bangfu/cabinet/firmware/infer"
)

// Planogram is one cabinet: its catalog, which products stand on which
// shelf, the trays and the temperature behaviour of its load cells.
type Planogram struct {
	// Catalog are the products the planogram was drawn from; only some of
	// them stand on a shelf.
	Catalog []Product
	// Shelves are the shelves, numbered 1..n.
	Shelves []ShelfPlan
	// DriftG is σ of each load cell's zero drift between the reading
	// before the door opened and the one after it closed.
	DriftG float64
	// Prices are the unit prices in fen of every SKU on a shelf.
	Prices map[string]int64
}

// ShelfPlan is one shelf of a planogram.
type ShelfPlan struct {
	Shelf int
	// Products stand on the shelf, one lane each, left to right.
	Products []Product
	// TrayG is the empty tray's weight on the shelf's load cell(s).
	TrayG float64
}

// Planogram limits.
const (
	// MinStock and MaxStock bound the units of a SKU on a shelf at the
	// start of a session.
	MinStock = 3
	MaxStock = 15
	// MinTrayG and MaxTrayG bound an empty tray's weight.
	MinTrayG = 800
	MaxTrayG = 2500
	// MinDriftG and MaxDriftG bound a planogram's zero drift σ
	// (temperature swings differ from site to site).
	MinDriftG = 0.2
	MaxDriftG = 1.5
	// ReuseP is the chance that a shelf's lane holds a product that is
	// already on another shelf.
	ReuseP = 0.05
	// maxShelfTries is how many times a shelf is redrawn before it is
	// given fewer SKUs.
	maxShelfTries = 200
)

// shelfCountWeights are the relative frequencies of 4..8 shelves: six is
// the common cabinet.
var shelfCountWeights = []float64{1, 2, 5, 2, 1}

// skuCountWeights are the relative frequencies of 1..3 SKUs on a shelf.
var skuCountWeights = []float64{3, 4, 3}

// NewPlanogram draws a cabinet: a catalog, 4–8 shelves (six most often)
// of 1–3 products each, every shelf clean under infer.Lint, trays and a
// drift σ.
func NewPlanogram(rng *rand.Rand) Planogram {
	p := Planogram{
		Catalog: NewCatalog(rng),
		DriftG:  MinDriftG + (MaxDriftG-MinDriftG)*rng.Float64(),
		Prices:  map[string]int64{},
	}
	n := 4 + pickWeighted(rng, shelfCountWeights)
	placed := map[string]bool{}
	for no := 1; no <= n; no++ {
		prods := drawShelf(rng, no, p.Catalog, placed)
		for _, q := range prods {
			placed[q.SKU.SKU] = true
			p.Prices[q.SKU.SKU] = q.PriceFen
		}
		p.Shelves = append(p.Shelves, ShelfPlan{
			Shelf:    no,
			Products: prods,
			TrayG:    MinTrayG + (MaxTrayG-MinTrayG)*rng.Float64(),
		})
	}
	return p
}

// drawShelf draws a lint-clean shelf, redrawing until infer.Lint passes;
// after maxShelfTries failures it tries one SKU fewer.
func drawShelf(rng *rand.Rand, no int, catalog []Product, placed map[string]bool) []Product {
	k := 1 + pickWeighted(rng, skuCountWeights)
	for try := 0; ; try++ {
		if try > 0 && try%maxShelfTries == 0 && k > 1 {
			k--
		}
		prods := drawLanes(rng, k, catalog, placed)
		if len(infer.Lint(no, skusOf(prods, false), 0)) == 0 {
			return prods
		}
	}
}

// drawLanes picks k different products for a shelf, mostly ones not yet
// on another shelf.
func drawLanes(rng *rand.Rand, k int, catalog []Product, placed map[string]bool) []Product {
	var fresh, reused []Product
	for _, q := range catalog {
		if placed[q.SKU.SKU] {
			reused = append(reused, q)
		} else {
			fresh = append(fresh, q)
		}
	}
	var out []Product
	for len(out) < k {
		pool := fresh
		if len(pool) == 0 || (len(reused) > 0 && rng.Float64() < ReuseP) {
			pool = reused
		}
		q := pool[rng.IntN(len(pool))]
		if !containsSKU(out, q.SKU.SKU) {
			out = append(out, q)
		}
	}
	return out
}

func containsSKU(ps []Product, sku string) bool {
	for _, p := range ps {
		if p.SKU.SKU == sku {
			return true
		}
	}
	return false
}

// skusOf turns a shelf's products into infer SKUs; with lanes, SKU i of n
// gets Lane (i+0.5)/n.
func skusOf(ps []Product, lanes bool) []infer.SKU {
	out := make([]infer.SKU, len(ps))
	for i, p := range ps {
		out[i] = p.SKU
		out[i].Lane = 0
		if lanes {
			out[i].Lane = laneOf(i, len(ps))
		}
	}
	return out
}

// laneOf is the centre of lane i of n along a shelf.
func laneOf(i, n int) float64 { return (float64(i) + 0.5) / float64(n) }

// Cabinet is every SKU on a shelf of the planogram, each once, in shelf
// order: the cabinet list the firmware passes to infer.Infer.
func (p Planogram) Cabinet() []infer.SKU {
	var out []infer.SKU
	seen := map[string]bool{}
	for _, sh := range p.Shelves {
		for _, s := range skusOf(sh.Products, false) {
			if !seen[s.SKU] {
				seen[s.SKU] = true
				out = append(out, s)
			}
		}
	}
	return out
}
