package infer

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// A small cabinet whose shelves 1 and 2 lint clean and whose shelf 3 holds
// the classic confusion: a 250 g and a 500 g pack of the same product.
var (
	skuA    = SKU{SKU: "T-A", UnitG: 400, TolG: 4, PriceFen: 1200}
	skuB    = SKU{SKU: "T-B", UnitG: 720, TolG: 5, PriceFen: 2500}
	skuC    = SKU{SKU: "T-C", UnitG: 180, TolG: 2, PriceFen: 900}
	skuD    = SKU{SKU: "T-D", UnitG: 1000, TolG: 8, PriceFen: 3000}
	skuP250 = SKU{SKU: "T-P250", UnitG: 250, TolG: 3, PriceFen: 1500}
	skuP500 = SKU{SKU: "T-P500", UnitG: 500, TolG: 5, PriceFen: 2800}

	testPlan = [][]SKU{
		1: {skuA, skuB},
		2: {skuC, skuD},
		3: {skuP250, skuP500},
	}
	testCabinet = []SKU{skuA, skuB, skuC, skuD, skuP250, skuP500}
)

// shelves builds the three test shelves with the given deltas (grams) and σ.
func shelves(noiseG float64, deltas ...float64) []Shelf {
	var out []Shelf
	for i, d := range deltas {
		n := i + 1
		before := 5000.0 + 100*float64(n)
		out = append(out, Shelf{Shelf: n, SKUs: testPlan[n], BeforeG: before, AfterG: before + d, NoiseG: noiseG})
	}
	return out
}

func TestTestShelvesLint(t *testing.T) {
	// The fixtures above rely on this: only shelf 3 is confusable.
	for n := 1; n <= 3; n++ {
		w := Lint(n, testPlan[n], 0)
		if (len(w) > 0) != (n == 3) {
			t.Errorf("shelf %d: lint %v", n, w)
		}
	}
}

func TestInfer(t *testing.T) {
	tests := []struct {
		name        string
		in          []Shelf
		opt         *Options
		status      Status
		lines       []Line
		returned    map[string]int
		unexplained []int
		check       func(t *testing.T, r Result)
	}{
		{
			name:   "exact single shelf",
			in:     shelves(0.2, -800.4, 0.1, -0.2),
			status: StatusExact,
			lines:  []Line{{1, "T-A", 2}},
		},
		{
			name:   "exact multi shelf",
			in:     shelves(0.2, -1119.2, -540.5, 0.3),
			status: StatusExact,
			lines:  []Line{{1, "T-A", 1}, {1, "T-B", 1}, {2, "T-C", 3}},
		},
		{
			name:   "empty: noise only",
			in:     shelves(0.25, 0.6, -0.9, 0.2),
			status: StatusEmpty,
		},
		{
			// A move is never exact: weight alone cannot rule out that the
			// unit was taken and a look-alike left behind.
			name:     "moved from shelf 1 to shelf 2: not charged, flagged",
			in:       shelves(0.2, -721.0, 719.4, 0),
			status:   StatusAmbiguous,
			returned: map[string]int{"T-B": 1},
		},
		{
			name:   "taken and put back on the same shelf",
			in:     shelves(0.2, -1.1, 0, 0),
			status: StatusEmpty,
		},
		{
			name:        "foreign object added: unexplained, nothing charged for it",
			in:          shelves(0.2, -399.0, 61.0, 0),
			status:      StatusAmbiguous,
			lines:       []Line{{1, "T-A", 1}},
			unexplained: []int{2},
			check: func(t *testing.T, r Result) {
				if r.Shelves[1].Explained || math.Abs(r.Shelves[1].ObjectG-61) > 1e-9 {
					t.Errorf("shelf 2 = %+v, want a 61 g unknown object", r.Shelves[1])
				}
			},
		},
		{
			name:   "ambiguous 2×250 vs 1×500: cheapest charged",
			in:     shelves(0.2, 0, 0, -500.2),
			status: StatusAmbiguous,
			lines:  []Line{{3, "T-P500", 1}},
			check: func(t *testing.T, r Result) {
				if len(r.Alternatives) == 0 || !reflect.DeepEqual(r.Alternatives[0].Lines, []Line{{3, "T-P250", 2}}) {
					t.Errorf("alternatives = %+v, want 2×T-P250 first", r.Alternatives)
				}
				if r.Posterior <= 0 || r.Posterior >= 0.99 {
					t.Errorf("posterior = %v", r.Posterior)
				}
				if math.IsInf(r.MarginLogL, 0) || math.IsNaN(r.MarginLogL) {
					t.Errorf("margin = %v, want finite", r.MarginLogL)
				}
			},
		},
		{
			// Two T-A taken from shelf 1 and a T-C from shelf 2 dropped on
			// it: shelf 1 reads −620 g, which no pure removal explains.
			name:     "mixed: take two, drop one from another shelf",
			in:       shelves(0.2, -620.3, -180.2, 0),
			status:   StatusAmbiguous,
			lines:    []Line{{1, "T-A", 2}},
			returned: map[string]int{"T-C": 1},
			check: func(t *testing.T, r Result) {
				want := map[string]int{"T-A": 2}
				if !reflect.DeepEqual(r.Shelves[0].Removed, want) {
					t.Errorf("shelf 1 removed %v, want %v", r.Shelves[0].Removed, want)
				}
			},
		},
		{
			name:   "noise at σ 2 g",
			in:     shelves(2, -806.5, 3.1, -4.2),
			status: StatusExact,
			lines:  []Line{{1, "T-A", 2}},
		},
		{
			// Ten tight-tolerance units: 6 g off is beyond units·TolG + K·σ
			// (1 + 1.35 g) and only the creep allowance (0.1 % of 5 kg)
			// covers it.
			name: "creep on a large change",
			in: []Shelf{{Shelf: 1, SKUs: []SKU{{SKU: "T-W", UnitG: 500, TolG: 0.1, PriceFen: 100}},
				BeforeG: 6000, AfterG: 1006, NoiseG: 0.1}},
			status: StatusExact,
			lines:  []Line{{1, "T-W", 10}},
		},
		{
			// Without the creep allowance no count of units fits: an unknown
			// object is the only explanation left, and it never charges
			// more than units that fit with it.
			name: "creep allowance off: the same change needs an object",
			in: []Shelf{{Shelf: 1, SKUs: []SKU{{SKU: "T-W", UnitG: 500, TolG: 0.1, PriceFen: 100}},
				BeforeG: 6000, AfterG: 1006, NoiseG: 0.1}},
			opt:         &Options{CreepFrac: 1e-9},
			status:      StatusAmbiguous,
			unexplained: []int{1},
		},
		{
			// Shelf 1 holds a cheap 600 g and a dear 450 g product. The
			// shopper takes the 600 g one and drops a 150 g unit from
			// shelf 2 there: shelf 1 reads −450 g, which the pure rule
			// explains as the dear product. The move hypothesis keeps the
			// cheaper truth plausible, so it is charged.
			name: "a plausible move prevents an overcharge",
			in: []Shelf{
				{Shelf: 1, SKUs: []SKU{{SKU: "R-X", UnitG: 600, TolG: 5, PriceFen: 500}, {SKU: "R-Y", UnitG: 450, TolG: 4, PriceFen: 5000}},
					BeforeG: 3000, AfterG: 2550.2, NoiseG: 0.2},
				{Shelf: 2, SKUs: []SKU{{SKU: "R-Z", UnitG: 150, TolG: 2, PriceFen: 800}},
					BeforeG: 2000, AfterG: 1850.1, NoiseG: 0.2},
			},
			status:   StatusAmbiguous,
			lines:    []Line{{1, "R-X", 1}},
			returned: map[string]int{"R-Z": 1},
			check: func(t *testing.T, r Result) {
				if r.MarginLogL >= 0 || len(r.Alternatives) == 0 || r.Alternatives[0].PriceFen <= r.PriceFen {
					t.Errorf("margin %v alternatives %+v: want the dearer pure reading more probable and not charged",
						r.MarginLogL, r.Alternatives)
				}
			},
		},
		{
			name:   "no shelves",
			status: StatusEmpty,
			check: func(t *testing.T, r Result) {
				if !math.IsInf(r.MarginLogL, 1) {
					t.Errorf("margin = %v, want +Inf", r.MarginLogL)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Infer(tc.in, testCabinet, tc.opt)
			if r.Status != tc.status {
				t.Errorf("status = %q, want %q (result %+v)", r.Status, tc.status, r)
			}
			if !reflect.DeepEqual(r.Lines, tc.lines) {
				t.Errorf("lines = %v, want %v", r.Lines, tc.lines)
			}
			if !reflect.DeepEqual(r.Returned, tc.returned) {
				t.Errorf("returned = %v, want %v", r.Returned, tc.returned)
			}
			if !reflect.DeepEqual(r.Unexplained, tc.unexplained) {
				t.Errorf("unexplained = %v, want %v", r.Unexplained, tc.unexplained)
			}
			if len(r.Shelves) != len(tc.in) {
				t.Fatalf("%d shelf results for %d shelves", len(r.Shelves), len(tc.in))
			}
			if r.Status == StatusExact && (r.Posterior < DefaultConfidence || r.MarginLogL <= 0) {
				t.Errorf("exact with posterior %v margin %v", r.Posterior, r.MarginLogL)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestInferDeterministic(t *testing.T) {
	// The caller's shelf order must not change anything.
	in := shelves(0.3, -1120, -540.5, -750.4)
	rev := []Shelf{in[2], in[0], in[1]}
	a, b := Infer(in, testCabinet, nil), Infer(rev, testCabinet, nil)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("order changed the result:\n%+v\n%+v", a, b)
	}
	if a.Shelves[0].Shelf != 1 || a.Shelves[2].Shelf != 3 {
		t.Errorf("shelves not sorted: %+v", a.Shelves)
	}
}

// TestNeverOvercharges is the guarantee as a property: for random baskets
// (takes, units moved between shelves, units put back) with unit weights
// anywhere within tolerance and Gaussian scale noise, the charge never
// exceeds the true basket's price.
func TestNeverOvercharges(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 500
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var exact, ambiguous int
	for i := range n {
		sigma := []float64{0.2, 0.5, 1, 2}[rng.IntN(4)]
		noise := sigma * math.Sqrt(2.0/10)
		delta := make([]float64, 4)
		var truth int64
		for s := 1; s <= 3; s++ {
			if rng.IntN(2) == 0 {
				continue
			}
			for _, k := range testPlan[s] {
				q := rng.IntN(4)
				truth += int64(q) * k.PriceFen
				for range q {
					delta[s] -= k.UnitG + (2*rng.Float64()-1)*k.TolG
				}
			}
		}
		if rng.IntN(5) == 0 { // a unit moved from one shelf to another
			from, to := 1+rng.IntN(3), 1+rng.IntN(3)
			if from != to {
				k := testPlan[from][rng.IntN(len(testPlan[from]))]
				w := k.UnitG + (2*rng.Float64()-1)*k.TolG
				delta[from] -= w
				delta[to] += w
			}
		}
		var in []Shelf
		for s := 1; s <= 3; s++ {
			in = append(in, Shelf{Shelf: s, SKUs: testPlan[s], BeforeG: 8000,
				AfterG: 8000 + delta[s] + rng.NormFloat64()*noise, NoiseG: noise})
		}
		r := Infer(in, testCabinet, nil)
		var charged int64
		for _, l := range r.Lines {
			for _, k := range testCabinet {
				if k.SKU == l.SKU {
					charged += int64(l.Qty) * k.PriceFen
				}
			}
		}
		if charged > truth {
			t.Fatalf("basket %d: charged %d fen > true %d fen\ninput %+v\nresult %+v", i, charged, truth, in, r)
		}
		switch r.Status {
		case StatusAmbiguous:
			ambiguous++
		default:
			exact++
		}
	}
	t.Logf("%d baskets: %d exact/empty, %d ambiguous", n, exact, ambiguous)
}

func TestOptionsDefaults(t *testing.T) {
	var nilOpt *Options
	want := Options{K: 4.5, CreepFrac: 0.001, MinNoiseG: 0.3, UnitSpread: 0.5, DriftG: 1,
		TouchedShelves: 1.3, TakeMean: 1.5, BulkP: 0.08, BulkMean: 5, MoveP: 0.02, ObjectP: 0.002, ObjectGoneP: 1e-5,
		ObjectMinG: 10, ObjectMaxG: 5000, MiscountP: 0.002, StillMissP: 0.1, RiseMissP: 0.1, RiseFalseP: 0.3,
		GrabP: 0.3, LiftHideP: 0.01, LiftMissP: 0.1, LiftExtraP: 0.05, RisePutBackP: 0.2, MaxItems: 30, MaxAdds: 2,
		Confidence: 0.995, CheaperBound: 1e-4, Alternatives: 3}
	if got := nilOpt.resolved(); got != want {
		t.Errorf("nil options = %+v, want %+v", got, want)
	}
	if got := (&Options{}).resolved(); got != want {
		t.Errorf("zero options = %+v, want the defaults", got)
	}
	if got := (&Options{K: 3, MaxItems: -1}).resolved(); got.K != 3 || got.MaxItems != 30 {
		t.Errorf("partial options = %+v", got)
	}
}

func TestInferCapsFallBackToFloor(t *testing.T) {
	// Five light SKUs with wide tolerances: thousands of removal vectors fit
	// 300 g, beyond the per-shelf cap. The floor must still never exceed
	// what the shopper took (25 × 12 g here).
	var skus []SKU
	for i, w := range []float64{10, 11, 12, 13, 14} {
		skus = append(skus, SKU{SKU: string(rune('a' + i)), UnitG: w, TolG: 4, PriceFen: 100 * int64(i+1)})
	}
	in := []Shelf{
		{Shelf: 1, SKUs: skus, BeforeG: 1000, AfterG: 700, NoiseG: 0.2},
		{Shelf: 2, SKUs: []SKU{skuA}, BeforeG: 1000, AfterG: 600.5, NoiseG: 0.2},
	}
	r := Infer(in, nil, nil)
	if r.Status != StatusAmbiguous || r.MarginLogL != 0 {
		t.Errorf("status %q margin %v, want the capped fallback", r.Status, r.MarginLogL)
	}
	var fen int64
	for _, l := range r.Lines {
		switch l.SKU {
		case "T-A":
			fen += int64(l.Qty) * skuA.PriceFen
		default:
			fen += int64(l.Qty) * 100 * int64(l.SKU[0]-'a'+1)
		}
	}
	if truth := 25*300 + skuA.PriceFen; fen > int64(truth) {
		t.Errorf("floor charged %d fen > true %d (lines %v)", fen, truth, r.Lines)
	}
}

// The key-ring case: a shopper takes one 500 g jar of honey from shelf 3
// and leaves a 64 g key ring on shelf 1, which holds 150 g packs of jerky.
// "The honey moved to shelf 1 and three jerky packs taken" fits shelf 1
// within tolerance; it must not be charged, and the sale is not exact.
func TestKeyRingIsNotJerky(t *testing.T) {
	jerky := SKU{SKU: "JERKY-150", UnitG: 150, TolG: 3, PriceFen: 6800}
	tea := SKU{SKU: "TEA-250", UnitG: 250, TolG: 4, PriceFen: 4200}
	honey := SKU{SKU: "HONEY-500", UnitG: 500, TolG: 8, PriceFen: 6800}
	in := []Shelf{
		{Shelf: 1, SKUs: []SKU{jerky}, BeforeG: 3000, AfterG: 3064.3, NoiseG: 0.22, Stock: map[string]int{"JERKY-150": 10}},
		{Shelf: 2, SKUs: []SKU{tea}, BeforeG: 3000, AfterG: 3000.1, NoiseG: 0.22, Stock: map[string]int{"TEA-250": 8}},
		{Shelf: 3, SKUs: []SKU{honey}, BeforeG: 5000, AfterG: 4502.9, NoiseG: 0.22, Stock: map[string]int{"HONEY-500": 6}},
	}
	r := Infer(in, []SKU{jerky, tea, honey}, nil)
	if r.Status != StatusAmbiguous || r.PriceFen != 6800 || !reflect.DeepEqual(r.Lines, []Line{{3, "HONEY-500", 1}}) {
		t.Fatalf("charged %v (%d fen, %s), want 1 honey, ambiguous: %+v", r.Lines, r.PriceFen, r.Status, r)
	}
	if !reflect.DeepEqual(r.Unexplained, []int{1}) || math.Abs(r.Shelves[0].ObjectG-64.3) > 1e-6 {
		t.Errorf("shelf 1 = %+v, want a 64.3 g object", r.Shelves[0])
	}
}

// Removals are bounded by the stock the books hold: with one 250 g pack
// left, −500 g cannot be two of them (but for a miscount), which settles
// the shelf's 2×250 g / 1×500 g confusion.
func TestStockBoundSettlesAConfusion(t *testing.T) {
	in := shelves(0.2, 0, 0, -500.2)
	r := Infer(in, testCabinet, nil)
	if r.Status != StatusAmbiguous {
		t.Fatalf("without stock: %s, want ambiguous (2×250 g or 1×500 g)", r.Status)
	}
	// Only one 250 g pack left: 2×250 g is impossible but for a miscount.
	in[2].Stock = map[string]int{"T-P250": 1, "T-P500": 5}
	r = Infer(in, testCabinet, nil)
	if r.Status != StatusExact || !reflect.DeepEqual(r.Lines, []Line{{3, "T-P500", 1}}) || len(r.StockMismatch) != 0 {
		t.Errorf("with stock: %+v, want 1×T-P500 exact", r)
	}
}

// Evidence that contradicts the stock raises a mismatch and is judged
// without the bound: the charge follows the weights.
func TestStockMismatchJudgesWithoutTheBound(t *testing.T) {
	in := shelves(0.2, -1200.4, 0, 0) // three 400 g T-A
	in[0].Stock = map[string]int{"T-A": 2, "T-B": 4}
	r := Infer(in, testCabinet, nil)
	if !reflect.DeepEqual(r.Lines, []Line{{1, "T-A", 3}}) {
		t.Fatalf("lines %v, want 3×T-A whatever the books say (%+v)", r.Lines, r)
	}
	want := []StockMismatch{{Shelf: 1, SKU: "T-A", Stock: 2, Removed: 3}}
	if !reflect.DeepEqual(r.StockMismatch, want) {
		t.Errorf("mismatch %+v, want %+v", r.StockMismatch, want)
	}
	if r.Status != StatusExact {
		t.Errorf("status %s: judged without the bound, three T-A is sure", r.Status)
	}
}

// The revenue-first rule reports exact on the posterior alone.
func TestRevenueFirst(t *testing.T) {
	tea := SKU{SKU: "TEA-100", UnitG: 100, TolG: 2, PriceFen: 900}
	honey := SKU{SKU: "HONEY-500", UnitG: 500, TolG: 5, PriceFen: 6800}
	// 500 g off shelf 2. Shelf 1 holds 100 g packs: "the jar moved onto
	// shelf 1 and five 100 g packs taken from it" is a cheaper, far less
	// probable (≈ 2·10⁻⁵) reading of the same weights.
	in := []Shelf{
		{Shelf: 1, SKUs: []SKU{tea}, BeforeG: 3000, AfterG: 3000.2, NoiseG: 0.22},
		{Shelf: 2, SKUs: []SKU{honey}, BeforeG: 3000, AfterG: 2500.3, NoiseG: 0.22},
	}
	safe := Infer(in, nil, nil)
	rev := Infer(in, nil, &Options{RevenueFirst: true, CheaperBound: 1e-6})
	strict := Infer(in, nil, &Options{CheaperBound: 1e-6})
	t.Logf("safe %s %v p=%.6f alts %+v", safe.Status, safe.Lines, safe.Posterior, safe.Alternatives)
	if rev.Status != StatusExact || !reflect.DeepEqual(rev.Lines, []Line{{2, "HONEY-500", 1}}) {
		t.Errorf("revenue-first: %+v", rev)
	}
	if strict.Status != StatusAmbiguous || strict.PriceFen >= 6800 {
		t.Errorf("shopper-safe with δ 1e-6: %s %v, want the cheaper plausible basket flagged", strict.Status, strict.Lines)
	}
}

// A shopper leaned on shelf 2, which now reads 3 g heavier: no removal is
// ever charged for it, whatever else the sale is.
func TestLeanChargesNothing(t *testing.T) {
	r := Infer(shelves(0.2, -400.3, 3.1, 0), testCabinet, nil)
	if !reflect.DeepEqual(r.Lines, []Line{{1, "T-A", 1}}) {
		t.Fatalf("lines %v, want 1×T-A only: %+v", r.Lines, r)
	}
	if len(r.Shelves[1].Removed) != 0 {
		t.Errorf("shelf 2 explained as removals %v", r.Shelves[1].Removed)
	}
}

// A bulk buyer takes six units from one shelf: the bulk tail of the count
// prior keeps that the reading, charged right.
func TestBigBasket(t *testing.T) {
	r := Infer(shelves(0.2, -3040.4, 0, 0), testCabinet, nil)
	want := []Line{{1, "T-A", 4}, {1, "T-B", 2}}
	if !reflect.DeepEqual(r.Lines, want) {
		t.Fatalf("lines %v, want %v: %+v", r.Lines, want, r)
	}
	t.Logf("status %s posterior %.4f", r.Status, r.Posterior)
}

// A shopper leaned on shelf 2, which reads 6 g heavier after: a change
// lighter than ObjectMinG is a reading offset, not an unknown object, so
// the shelf counts as explained and the hypothesis as clean.
func TestOffsetBelowObjectMinIsNotAnObject(t *testing.T) {
	in := shelves(0.2, -400.3, 6.2, 0)
	for i := range in {
		in[i].Stock = map[string]int{}
		for _, s := range in[i].SKUs {
			in[i].Stock[s.SKU] = 5
		}
	}
	r := Infer(in, testCabinet, nil)
	if !reflect.DeepEqual(r.Lines, []Line{{1, "T-A", 1}}) {
		t.Fatalf("%s %v, want 1×T-A: %+v", r.Status, r.Lines, r)
	}
	if len(r.Unexplained) != 0 || !r.Shelves[1].Explained {
		t.Errorf("shelf 2 = %+v, unexplained %v: a 6 g offset is not an object", r.Shelves[1], r.Unexplained)
	}
	// The same 6 g with ObjectMinG 5 is an object: the shelf is
	// unexplained, and a sale whose best reading needs it is not exact.
	r = Infer(in, testCabinet, &Options{ObjectMinG: 5})
	if !reflect.DeepEqual(r.Unexplained, []int{2}) || r.Status == StatusExact {
		t.Errorf("ObjectMinG 5: %s, unexplained %v, want shelf 2 unexplained and not exact", r.Status, r.Unexplained)
	}
}

// Twins on two shelves: a 500 g jar with a wide tolerance on shelf 1 and a
// cheaper 500 g pack on shelf 2. The shopper takes a jar that weighs
// 488 g. "The jar moved onto shelf 2 and a pack taken from there" needs
// the moved jar, whose weight shelf 1 has just measured at 488 g, to
// cancel a pack of 500 ± 5 g on shelf 2 to within a gram: the move
// correction scores both shelves with the one unit, which rules it out,
// and the sale is exact even under the shopper-safe rule.
func TestMovedUnitIsOneUnitOnBothShelves(t *testing.T) {
	jar := SKU{SKU: "HONEY-500", UnitG: 500, TolG: 15, PriceFen: 6800}
	pack := SKU{SKU: "RICE-500", UnitG: 500, TolG: 5, PriceFen: 1200}
	in := []Shelf{
		{Shelf: 1, SKUs: []SKU{jar}, BeforeG: 4000, AfterG: 3512.1, NoiseG: 0.22, Stock: map[string]int{"HONEY-500": 6}},
		{Shelf: 2, SKUs: []SKU{pack}, BeforeG: 4000, AfterG: 4000.2, NoiseG: 0.22, Stock: map[string]int{"RICE-500": 6}},
	}
	r := Infer(in, nil, nil)
	if r.Status != StatusExact || !reflect.DeepEqual(r.Lines, []Line{{1, "HONEY-500", 1}}) {
		t.Fatalf("%s %v (posterior %.6f), want the jar, exact; alternatives %+v", r.Status, r.Lines, r.Posterior, r.Alternatives)
	}
	for _, a := range r.Alternatives {
		if a.Moved && a.Posterior >= DefaultCheaperBound {
			t.Errorf("move alternative %+v keeps posterior ≥ δ", a)
		}
	}
}
