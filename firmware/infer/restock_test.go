package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// rshelf is a restock shelf of testPlan with the given weights and stock.
func rshelf(n int, before, after float64, have map[string]int) RestockShelf {
	return RestockShelf{Shelf: Shelf{Shelf: n, SKUs: testPlan[n], BeforeG: before, AfterG: after, NoiseG: 0.25}, Have: have}
}

func TestCountRestock(t *testing.T) {
	type ch = []Change
	tests := []struct {
		name      string
		in        RestockShelf
		opt       *CountOptions
		status    CountStatus
		changes   ch
		unsettled []string
		check     func(t *testing.T, c ShelfCount)
	}{
		{
			name:   "nothing moved",
			in:     rshelf(1, 5000, 5000.6, nil),
			status: CountExact,
		},
		{
			name:   "drift within UntouchedG is no change",
			in:     rshelf(2, 3000, 3006, nil),
			opt:    &CountOptions{UntouchedG: 10},
			status: CountExact,
			check: func(t *testing.T, c ShelfCount) {
				if c.ResidualG != c.DeltaG {
					t.Errorf("residual %.1f, want the whole drift %.1f", c.ResidualG, c.DeltaG)
				}
			},
		},
		{
			name:    "adds of one SKU",
			in:      rshelf(2, 3000, 3000+3*1000+2.1, nil),
			status:  CountExact,
			changes: ch{{"T-D", 3}},
		},
		{
			name:    "adds of two SKUs",
			in:      rshelf(2, 3000, 3000+2*1000+5*180-1.2, nil),
			status:  CountExact,
			changes: ch{{"T-C", 5}, {"T-D", 2}},
		},
		{
			name:    "removals",
			in:      rshelf(2, 3000, 3000-3*180+0.8, map[string]int{"T-C": 10, "T-D": 2}),
			status:  CountExact,
			changes: ch{{"T-C", -3}},
		},
		{
			name:    "a swap: revoked units out, their replacement in",
			in:      rshelf(2, 3000, 3000+3*180-1000+0.9, map[string]int{"T-C": 4, "T-D": 2}),
			status:  CountExact,
			changes: ch{{"T-C", 3}, {"T-D", -1}},
		},
		{
			name:      "the confusable shelf: one 500 g out or two 250 g",
			in:        rshelf(3, 4000, 3500-0.3, nil),
			status:    CountAmbiguous,
			changes:   ch{{"T-P500", -1}}, // fewest units reported, not trusted
			unsettled: []string{"T-P250", "T-P500"},
		},
		{
			name:    "known stock settles it: no 500 g unit to remove",
			in:      rshelf(3, 4000, 3500-0.3, map[string]int{"T-P250": 2, "T-P500": 0}),
			status:  CountExact,
			changes: ch{{"T-P250", -2}},
		},
		{
			name:      "nine 400 g weigh five 720 g: fewest units reported, both unsettled",
			in:        rshelf(1, 2000, 2000+9*400+1.5, nil),
			status:    CountAmbiguous,
			changes:   ch{{"T-B", 5}},
			unsettled: []string{"T-A", "T-B"},
		},
		{
			name:      "a foreign object matches no count",
			in:        rshelf(1, 2000, 2037, nil),
			status:    CountUnexplained,
			unsettled: []string{"T-A", "T-B"},
			check: func(t *testing.T, c ShelfCount) {
				if c.ResidualG != c.DeltaG || c.Changes != nil {
					t.Errorf("unexplained shelf reports residual %.1f of Δ %.1f, changes %v", c.ResidualG, c.DeltaG, c.Changes)
				}
			},
		},
		{
			// +2 A −1 B is nominally +80 g: 12 g off has a
			// log-likelihood of about −6.2, 3 g off about −2.6.
			name:      "a swap less likely than SwapMinLogL is not an explanation",
			in:        rshelf(1, 2000, 2092, nil),
			opt:       &CountOptions{MaxUnits: 3, SwapMinLogL: -3},
			status:    CountUnexplained,
			unsettled: []string{"T-A", "T-B"},
		},
		{
			name:    "one likelier is",
			in:      rshelf(1, 2000, 2083, nil),
			opt:     &CountOptions{MaxUnits: 3, SwapMinLogL: -3},
			status:  CountExact,
			changes: ch{{"T-A", 2}, {"T-B", -1}},
		},
		{
			// 18 A out and 10 B in weigh nothing nominally, and the spread
			// of 28 units covers 37 g: only MaxSwapUnits (24) keeps such
			// a swap from explaining the object above.
			name:      "without the swap cap a large swap explains a small object",
			in:        rshelf(1, 2000, 2037, nil),
			opt:       &CountOptions{MaxSwapUnits: 40},
			status:    CountAmbiguous,
			changes:   ch{{"T-A", -18}, {"T-B", 10}},
			unsettled: []string{"T-A", "T-B"},
		},
		{
			name:    "a unit at its tolerance limit still counts",
			in:      rshelf(2, 3000, 3000+1000+8, nil),
			status:  CountExact,
			changes: ch{{"T-D", 1}},
		},
		{
			name: "a large fill",
			in: RestockShelf{Shelf: Shelf{Shelf: 6, BeforeG: 300, AfterG: 300 + 40*180 + 6.5, NoiseG: 0.25,
				SKUs: []SKU{skuC}}},
			status:  CountExact,
			changes: ch{{"T-C", 40}},
		},
		{
			// 40 units uniform within ±10 g sum to a spread of ±37 g: 41
			// units 80 g light are about as likely as 40 units 20 g heavy.
			name: "many units of a wide-tolerance SKU cannot be counted to one",
			in: RestockShelf{Shelf: Shelf{Shelf: 6, BeforeG: 300, AfterG: 300 + 40*100 + 20, NoiseG: 0.25,
				SKUs: []SKU{{SKU: "T-WIDE", UnitG: 100, TolG: 10}}}},
			status:    CountAmbiguous,
			changes:   ch{{"T-WIDE", 40}},
			unsettled: []string{"T-WIDE"},
		},
		{
			name:      "removals never exceed the known stock",
			in:        rshelf(2, 3000, 3000-3*180, map[string]int{"T-C": 2, "T-D": 0}),
			status:    CountUnexplained,
			unsettled: []string{"T-C", "T-D"},
		},
		{
			name:    "a shelf empty before can only gain",
			in:      rshelf(1, 0.4, 0.4+3*400-0.7, nil),
			status:  CountExact,
			changes: ch{{"T-A", 3}},
			check: func(t *testing.T, c ShelfCount) {
				if !c.EmptyBefore || c.EmptyAfter {
					t.Errorf("empty before %v after %v, want true, false", c.EmptyBefore, c.EmptyAfter)
				}
			},
		},
		{
			name:      "a shelf empty before cannot lose",
			in:        rshelf(1, -0.2, -400.1, nil),
			status:    CountUnexplained,
			unsettled: []string{"T-A", "T-B"},
		},
		{
			name:    "emptied",
			in:      rshelf(1, 3*400+2*720+0.9, 0.3, map[string]int{"T-A": 3, "T-B": 2}),
			status:  CountExact,
			changes: ch{{"T-A", -3}, {"T-B", -2}},
			check: func(t *testing.T, c ShelfCount) {
				if c.EmptyBefore || !c.EmptyAfter {
					t.Errorf("empty before %v after %v, want false, true", c.EmptyBefore, c.EmptyAfter)
				}
			},
		},
		{
			name:      "beyond MaxUnits",
			in:        rshelf(2, 500, 500+5*180, nil),
			opt:       &CountOptions{MaxUnits: 4},
			status:    CountUnexplained,
			unsettled: []string{"T-C", "T-D"},
		},
		{
			name:      "a broken reading",
			in:        rshelf(1, 2000, math.NaN(), nil),
			status:    CountUnexplained,
			unsettled: []string{"T-A", "T-B"},
		},
		{
			name: "a SKU that cannot be weighed is never settled",
			in: RestockShelf{Shelf: Shelf{Shelf: 5, BeforeG: 1000, AfterG: 1000 + 2*180 + 0.5, NoiseG: 0.25,
				SKUs: []SKU{skuC, {SKU: "T-ZERO", UnitG: 0, TolG: 1}, skuC}}},
			status:    CountExact,
			changes:   ch{{"T-C", 2}},
			unsettled: []string{"T-ZERO"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CountRestock([]RestockShelf{tc.in}, tc.opt)
			if len(got) != 1 {
				t.Fatalf("%d counts for one shelf", len(got))
			}
			c := got[0]
			if c.Shelf != tc.in.Shelf.Shelf || math.Abs(c.DeltaG-(tc.in.AfterG-tc.in.BeforeG)) > 1e-9 && !math.IsNaN(c.DeltaG) {
				t.Errorf("shelf %d Δ %.2f", c.Shelf, c.DeltaG)
			}
			if c.Status != tc.status || !reflect.DeepEqual(c.Changes, tc.changes) || !slices.Equal(c.Unsettled, tc.unsettled) {
				t.Fatalf("got %s %v unsettled %v (alternatives %d, residual %.1f); want %s %v unsettled %v",
					c.Status, c.Changes, c.Unsettled, c.Alternatives, c.ResidualG, tc.status, tc.changes, tc.unsettled)
			}
			if c.Status != CountUnexplained && (c.Status == CountExact) != (c.Alternatives == 0 && !c.Capped) {
				t.Errorf("status %s with %d alternatives, capped %v", c.Status, c.Alternatives, c.Capped)
			}
			units := 0
			for _, x := range c.Changes {
				units += abs(x.Qty)
			}
			if units != c.Units {
				t.Errorf("Units %d, changes sum to %d", c.Units, units)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestCountRestockShelvesSortedAndIndependent(t *testing.T) {
	in := []RestockShelf{
		rshelf(3, 4000, 4000, nil),
		rshelf(1, 2000, 2000+2*720+0.4, nil),
		rshelf(2, 3000, 3000-1000.6, map[string]int{"T-D": 1}),
	}
	got := CountRestock(in, nil)
	var shelves []int
	for _, c := range got {
		shelves = append(shelves, c.Shelf)
	}
	if !slices.Equal(shelves, []int{1, 2, 3}) {
		t.Fatalf("shelves %v, want 1 2 3", shelves)
	}
	want := [][]Change{{{"T-B", 2}}, {{"T-D", -1}}, nil}
	for i, c := range got {
		if c.Status != CountExact || !reflect.DeepEqual(c.Changes, want[i]) {
			t.Errorf("shelf %d: %s %v, want exact %v", c.Shelf, c.Status, c.Changes, want[i])
		}
	}
}

// A shelf of five SKUs whose every multiple misses Δ: the search stops at
// its node cap and says so instead of running on.
func TestCountRestockCapped(t *testing.T) {
	var skus []SKU
	for i := range 5 {
		skus = append(skus, SKU{SKU: fmt.Sprintf("T-%d", i), UnitG: float64(100 * (i + 1)), TolG: 0.2})
	}
	got := CountRestock([]RestockShelf{{Shelf: Shelf{Shelf: 1, SKUs: skus, BeforeG: 5000, AfterG: 5050, NoiseG: 0.25}}}, nil)[0]
	if !got.Capped || got.Status == CountExact || len(got.Unsettled) != 5 {
		t.Fatalf("got %+v, want capped, not exact, every SKU unsettled", got)
	}
}

// TestCountRestockAccuracy plays random restocks (1–12 units of each SKU
// added; in one case in four one SKU's units removed instead: a swap), one
// shelf at a time, unit weights uniform within ±0.8·TolG as the simulator
// draws them, scale noise σ 0.3 g on each reading, on shelves of common pack
// weights (the demo cabinet's). It checks that a fill is never counted
// wrong while claiming to be exact. Swaps are where weights mislead: a swap
// that nets to what a plain fill would weigh reads as the fill, and about a
// eighth to a third of the swaps reported exact here are wrong (logged, not
// asserted; see CountRestock for why that never counts a revoked product
// away). Ambiguous counts are the price of never guessing: their levels
// become unknown. The seed is fixed, so the figures are too.
func TestCountRestockAccuracy(t *testing.T) {
	shelves := [][]SKU{
		{{SKU: "780g", UnitG: 780, TolG: 5}, {SKU: "368g", UnitG: 368, TolG: 2}},
		{{SKU: "800g", UnitG: 800, TolG: 5}, {SKU: "568g", UnitG: 568, TolG: 3}},
		{{SKU: "600g", UnitG: 600, TolG: 4}, {SKU: "380g", UnitG: 380, TolG: 2}},
	}
	rng := rand.New(rand.NewPCG(11, 12))
	const n = 1000
	type tally struct{ n, exact, wrong, ambiguous, unexplained int }
	for _, sk := range shelves {
		t.Run(sk[0].SKU+"+"+sk[1].SKU, func(t *testing.T) {
			var fill, swap tally
			for range n {
				q := []int{1 + rng.IntN(12), 1 + rng.IntN(12)}
				tl := &fill
				if rng.IntN(4) == 0 {
					q[rng.IntN(2)] *= -1
					tl = &swap
				}
				delta := 0.0
				for i, k := range sk {
					for range abs(q[i]) {
						w := k.UnitG + (2*rng.Float64()-1)*0.8*k.TolG
						if q[i] < 0 {
							w = -w
						}
						delta += w
					}
				}
				before := 6000 + rng.NormFloat64()*0.3
				after := 6000 + delta + rng.NormFloat64()*0.3
				have := map[string]int{sk[0].SKU: 12, sk[1].SKU: 12}
				c := CountRestock([]RestockShelf{{Shelf: Shelf{Shelf: 1, SKUs: sk, BeforeG: before, AfterG: after, NoiseG: 0.3 * math.Sqrt2}, Have: have}}, nil)[0]
				got := map[string]int{}
				for _, ch := range c.Changes {
					got[ch.SKU] = ch.Qty
				}
				tl.n++
				switch c.Status {
				case CountExact:
					tl.exact++
					if got[sk[0].SKU] != q[0] || got[sk[1].SKU] != q[1] {
						tl.wrong++
					}
				case CountAmbiguous:
					tl.ambiguous++
				default:
					tl.unexplained++
				}
			}
			for _, x := range []struct {
				name string
				tally
			}{{"fills", fill}, {"swaps", swap}} {
				t.Logf("%d %s: %d exact (%d of them wrong), %d ambiguous, %d unexplained",
					x.n, x.name, x.exact, x.wrong, x.ambiguous, x.unexplained)
			}
			if fill.wrong > 0 || fill.exact < fill.n/3 || fill.unexplained+swap.unexplained > 0 {
				t.Errorf("fills: %d exact, %d of them wrong; %d unexplained in all: want none wrong, at least a third exact, none unexplained",
					fill.exact, fill.wrong, fill.unexplained+swap.unexplained)
			}
		})
	}
}

// BenchmarkCountRestock times one shelf's count: the search grows with the
// SKUs on the shelf (see maxCountNodes).
func BenchmarkCountRestock(b *testing.B) {
	all := []SKU{skuA, skuB, skuC, skuD}
	for n := 2; n <= len(all); n++ {
		b.Run(fmt.Sprintf("%d SKUs", n), func(b *testing.B) {
			in := []RestockShelf{{Shelf: Shelf{Shelf: 1, SKUs: all[:n], BeforeG: 3000, AfterG: 3000 + 5*400 + 3*720 + 1.5, NoiseG: 0.3}}}
			for b.Loop() {
				CountRestock(in, nil)
			}
		})
	}
}
