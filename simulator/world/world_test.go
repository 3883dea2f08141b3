package world

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bangfu/cabinet/firmware/infer"
)

// TestPlanograms checks the drawn cabinets: 4–8 shelves, 1–3 distinct
// products a shelf, every shelf clean under the lint, sane trays, prices
// and tolerances.
func TestPlanograms(t *testing.T) {
	for i := range 50 {
		p := NewPlanogram(rand.New(rand.NewPCG(1, uint64(i))))
		if n := len(p.Shelves); n < 4 || n > 8 {
			t.Fatalf("planogram %d: %d shelves", i, n)
		}
		if p.DriftG < MinDriftG || p.DriftG > MaxDriftG {
			t.Errorf("planogram %d: drift %g", i, p.DriftG)
		}
		for _, sh := range p.Shelves {
			checkShelf(t, i, sh)
		}
	}
}

func checkShelf(t *testing.T, i int, sh ShelfPlan) {
	t.Helper()
	if n := len(sh.Products); n < 1 || n > 3 {
		t.Errorf("planogram %d shelf %d: %d products", i, sh.Shelf, n)
	}
	if w := infer.Lint(sh.Shelf, skusOf(sh.Products, false), 0); len(w) != 0 {
		t.Errorf("planogram %d shelf %d: lint %v", i, sh.Shelf, w[0].Text)
	}
	if sh.TrayG < MinTrayG || sh.TrayG > MaxTrayG {
		t.Errorf("planogram %d shelf %d: tray %g g", i, sh.Shelf, sh.TrayG)
	}
	seen := map[string]bool{}
	for _, q := range sh.Products {
		if seen[q.SKU.SKU] {
			t.Errorf("planogram %d shelf %d: %s twice", i, sh.Shelf, q.SKU.SKU)
		}
		seen[q.SKU.SKU] = true
		if q.PriceFen < MinPriceFen || q.PriceFen > MaxPriceFen {
			t.Errorf("%s: price %d fen", q.Name, q.PriceFen)
		}
		if r := q.TolG / q.UnitG; r < 0.01-1e-9 || r > 0.03+1e-9 {
			t.Errorf("%s: tolerance %g g", q.Name, q.TolG)
		}
	}
}

// TestUnitsInSpec checks that every drawn unit is within UnitG±TolG and
// that OracleUnitSpread is the units' RMS offset / TolG.
func TestUnitsInSpec(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 0))
	var sum2 float64
	var n int
	for range 400 {
		p := newProduct(rng, 0)
		for range 200 {
			off := p.DrawUnitG(rng) - p.UnitG
			if math.Abs(off) > p.TolG+1e-9 {
				t.Fatalf("%s: unit off by %g g, tolerance %g g", p.Name, off, p.TolG)
			}
			sum2 += (off / p.TolG) * (off / p.TolG)
			n++
		}
	}
	if rms := math.Sqrt(sum2 / float64(n)); math.Abs(rms-OracleUnitSpread) > 0.02 {
		t.Errorf("RMS unit offset %.3f·TolG, OracleUnitSpread %.3f", rms, OracleUnitSpread)
	}
}

// TestClassMix checks that sessions follow the behaviour mix and that
// the truth matches what the shopper did.
func TestClassMix(t *testing.T) {
	const n = 20000
	p := NewPlanogram(rand.New(rand.NewPCG(3, 0)))
	var counts [NumClasses]int
	for j := range n {
		s := p.Session(rand.New(rand.NewPCG(3, uint64(j))), 0.5, false)
		counts[s.Class]++
		checkTruth(t, s)
	}
	for c, pct := range classPct {
		got := 100 * float64(counts[c]) / n
		if math.Abs(got-float64(pct)) > 1 {
			t.Errorf("%s: %.2f %% of sessions, want %d %%", Class(c), got, pct)
		}
	}
}

func checkTruth(t *testing.T, s Session) {
	t.Helper()
	units := 0
	var fen int64
	for sku, q := range s.Taken {
		units += q
		fen += int64(q) * s.Prices[sku]
	}
	if fen != s.TrueFen {
		t.Fatalf("TrueFen %d, lines price %d", s.TrueFen, fen)
	}
	switch {
	case s.Class == Nothing && units != 0:
		t.Fatalf("nothing class bought %d units", units)
	case s.Class == Big && (units < 1 || units > MaxBig):
		t.Fatalf("big class bought %d units", units)
	case s.Class != Nothing && s.Class != Big && (units < 1 || units > 3):
		t.Fatalf("%s class bought %d units", s.Class, units)
	}
}

// TestSameShoppingOnTwoCells checks that one seed gives the same shopping
// on one cell and on two, and that the two cells add up.
func TestSameShoppingOnTwoCells(t *testing.T) {
	p := NewPlanogram(rand.New(rand.NewPCG(4, 0)))
	for j := range 200 {
		one := p.Session(rand.New(rand.NewPCG(4, uint64(j))), 2, false)
		two := p.Session(rand.New(rand.NewPCG(4, uint64(j))), 2, true)
		if one.Class != two.Class || one.TrueFen != two.TrueFen || len(one.Lines) != len(two.Lines) {
			t.Fatalf("session %d differs between one and two cells", j)
		}
		for _, sh := range two.Shelves {
			if !sh.TwoCell || sh.RightBeforeG <= 0 || sh.RightBeforeG >= sh.BeforeG {
				t.Fatalf("session %d shelf %d: two-cell readings %+v", j, sh.Shelf, sh)
			}
			if math.Abs(sh.NoiseG-NoiseG(2, false)*math.Sqrt2) > 1e-12 {
				t.Fatalf("NoiseG %g", sh.NoiseG)
			}
		}
	}
}
