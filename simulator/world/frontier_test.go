package world

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/bangfu/cabinet/firmware/infer"
)

// purchaseP must be a distribution: over every removal vector a purchase
// of the class can make on a small cabinet, it sums to one.
func TestFrontierPurchasePSumsToOne(t *testing.T) {
	p := Planogram{Shelves: []ShelfPlan{
		{Shelf: 1, Products: []Product{{SKU: infer.SKU{SKU: "A", UnitG: 100, TolG: 2}}, {SKU: infer.SKU{SKU: "B", UnitG: 250, TolG: 3}}}},
		{Shelf: 2, Products: []Product{{SKU: infer.SKU{SKU: "C", UnitG: 500, TolG: 5}}}},
		{Shelf: 3, Products: []Product{{SKU: infer.SKU{SKU: "D", UnitG: 150, TolG: 2}}, {SKU: infer.SKU{SKU: "E", UnitG: 200, TolG: 2}}, {SKU: infer.SKU{SKU: "F", UnitG: 400, TolG: 4}}}},
		{Shelf: 4, Products: []Product{{SKU: infer.SKU{SKU: "G", UnitG: 1000, TolG: 10}}}},
	}}
	// Every vector of up to MaxBig units per shelf.
	var lists [][]fCand
	for _, sh := range p.Shelves {
		f := &fShelf{prods: sh.Products}
		var out []fCand
		x := make([]int, len(sh.Products))
		var rec func(k, n int)
		rec = func(k, n int) {
			if k == len(x) {
				out = append(out, p.candidate(f, append([]int(nil), x...), n, 0.05))
				return
			}
			for v := 0; n+v <= MaxBig; v++ {
				x[k] = v
				rec(k+1, n+v)
			}
			x[k] = 0
		}
		rec(0, 0)
		lists = append(lists, out)
	}
	for _, c := range []Class{Ordinary, Big} {
		var sum float64
		cs := make([]*fCand, len(lists))
		var walk func(i, n, k int)
		walk = func(i, n, k int) {
			if i == len(lists) {
				sum += purchaseP(c, n, k, len(lists), cs)
				return
			}
			for j := range lists[i] {
				cs[i] = &lists[i][j]
				kk := k
				if cs[i].n > 0 {
					kk++
				}
				if n+cs[i].n <= MaxBig {
					walk(i+1, n+cs[i].n, kk)
				}
			}
		}
		walk(0, 0, 0)
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s: Σ P(purchase) = %.12f, want 1", c, sum)
		}
	}
}

// The frontier is calibrated on the world it was built from: of the
// sessions whose most probable basket it gives 0.99 or more, at least
// 99 % are right, and the truth is almost never ruled out.
func TestFrontierCalibrated(t *testing.T) {
	var sure, sureRight, lost, n int
	for i := range 30 {
		p := planogramOf(i)
		for j := range 40 {
			s := sessionOf(p, i, j, 0.5, false)
			post := p.Frontier(s, 0.5)
			if len(post) == 0 {
				t.Fatalf("planogram %d session %d: no basket at all", i, j)
			}
			n++
			if post[0].Posterior >= 0.99 {
				sure++
				if sameTaken(post[0].Taken, s.Taken) {
					sureRight++
				}
			}
			found := false
			for _, b := range post {
				found = found || sameTaken(b.Taken, s.Taken)
			}
			if !found {
				lost++
			}
		}
	}
	t.Logf("%d sessions: %d sure, %d of them right; truth missing from %d", n, sure, sureRight, lost)
	if sure < n/2 || float64(sureRight) < 0.99*float64(sure) {
		t.Errorf("%d sure of %d, %d right: not calibrated", sure, n, sureRight)
	}
	if float64(lost) > 0.01*float64(n) {
		t.Errorf("the truth is missing from %d of %d posteriors", lost, n)
	}
}

func sameTaken(a, b map[string]int) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func TestFrontierDecide(t *testing.T) {
	dear := FrontierBasket{Taken: map[string]int{"HONEY": 1}, PriceFen: 6800, Posterior: 0.9995}
	cheap := FrontierBasket{Taken: map[string]int{"TEA": 1}, PriceFen: 900, Posterior: 0.0005}
	post := []FrontierBasket{dear, cheap}
	safe := FrontierDecide(post, 0.99, 1e-4, false)
	if safe.Status != infer.StatusAmbiguous || safe.PriceFen != 900 {
		t.Errorf("shopper-safe: %s %d fen, want the cheaper plausible basket, flagged", safe.Status, safe.PriceFen)
	}
	rev := FrontierDecide(post, 0.99, 1e-4, true)
	if rev.Status != infer.StatusExact || rev.PriceFen != 6800 {
		t.Errorf("revenue-first: %s %d fen, want the most probable, exact", rev.Status, rev.PriceFen)
	}
	cheap.Posterior = 5e-5
	if r := FrontierDecide([]FrontierBasket{dear, cheap}, 0.99, 1e-4, false); r.Status != infer.StatusExact || r.PriceFen != 6800 {
		t.Errorf("cheaper below δ: %s %d fen, want exact", r.Status, r.PriceFen)
	}
	if r := FrontierDecide([]FrontierBasket{{Posterior: 1}}, 0.99, 1e-4, false); r.Status != infer.StatusEmpty || len(r.Lines) != 0 {
		t.Errorf("empty basket: %+v", r)
	}
}

// The frontier's stock prior: a shelf cannot lose units its true stock
// lacks; the books are off by one on a few shelves.
func TestFrontierStockAllows(t *testing.T) {
	f := &fShelf{prods: []Product{{SKU: infer.SKU{SKU: "A"}}, {SKU: infer.SKU{SKU: "B"}}}, books: map[string]int{"A": 2, "B": 0}}
	// Within the books: right, or a miscount that leaves room (A's true
	// stock one more, or B's one more), not one that takes A's second unit.
	if got := stockAllows(f, []int{2, 0}); math.Abs(got-(1-MiscountShelfP/2)) > 1e-12 {
		t.Errorf("within the books: %g", got)
	}
	if got := stockAllows(f, []int{0, 1}); math.Abs(got-MiscountShelfP/4) > 1e-12 {
		t.Errorf("one over on B: %g, want one miscount's share", got)
	}
	if got := stockAllows(f, []int{4, 0}); got != 0 {
		t.Errorf("two over: %g, want 0", got)
	}
}

// The frontier's lift likelihood is countLifts's distribution: over k it
// sums to one, and it agrees with the counter's own draws, the units in
// random order and a put-back unit after them.
func TestFrontierLiftsMatchCounter(t *testing.T) {
	prods := []Product{
		{SKU: infer.SKU{SKU: "PACKET", UnitG: 100, TolG: 2}},
		{SKU: infer.SKU{SKU: "JAR", UnitG: 500, TolG: 8}},
	}
	x, tail := []int{3, 1}, 0
	const draws = 200000
	rng := rand.New(rand.NewPCG(5, 6))
	seen := map[int]int{}
	for range draws {
		var us []unit
		for j, n := range x {
			for range n {
				us = append(us, unit{sku: prods[j].SKU.SKU, g: prods[j].UnitG})
			}
		}
		rng.Shuffle(len(us), func(a, b int) { us[a], us[b] = us[b], us[a] })
		us = append(us, unit{sku: prods[tail].SKU.SKU, g: prods[tail].UnitG})
		seen[countLifts(rng, us)]++
	}
	var sum float64
	for k := 0; k <= 12; k++ {
		f := &fShelf{prods: prods, lifts: k, liftsKnown: true}
		p := f.liftsLik(x, tail)
		sum += p
		got := float64(seen[k]) / draws
		sd := math.Sqrt(p*(1-p)/draws) + 1e-4
		t.Logf("k=%d: frontier %.5f, counter %.5f", k, p, got)
		if math.Abs(got-p) > 4*sd {
			t.Errorf("k=%d: frontier %.5f, counter's draws %.5f", k, p, got)
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("P(k) sums to %.12f", sum)
	}
	// Not known, or a still shelf: no evidence.
	for _, f := range []*fShelf{{prods: prods, lifts: 3}, {prods: prods, lifts: 3, liftsKnown: true, still: true}} {
		if p := f.liftsLik(x, tail); p != 1 {
			t.Errorf("%+v: %g, want 1", f, p)
		}
	}
}
