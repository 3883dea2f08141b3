package infer

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Lint limits.
const (
	// DefaultLintItems is the basket size Lint checks when maxItems ≤ 0:
	// most sessions take a handful of units from a shelf.
	DefaultLintItems = 4
	// MaxLintItems clamps maxItems, because the number of baskets grows
	// like maxItems^SKUs and the lint runs on the cabinet board.
	MaxLintItems = 12
	// LintScaleG is the scale allowance added to the two baskets' summed
	// tolerances: about K·σ of a typical settled shelf reading.
	LintScaleG = 2.0
)

// Warning says that two baskets of one shelf's SKUs weigh the same within
// tolerance, so Infer cannot tell them apart and will charge the cheaper.
type Warning struct {
	Shelf int
	// A and B are the two baskets (units per SKU; an empty map is "nothing").
	A, B map[string]int
	// SKUs are the SKUs whose counts differ between A and B, sorted: the
	// products that get confused.
	SKUs []string
	// Text is a one-line explanation for the technician and the platform.
	Text string
}

type lintBasket struct {
	cnt   []int
	w     float64
	tol   float64
	units int
}

// Lint checks one shelf of a planogram: for every two different baskets of
// up to maxItems units each (DefaultLintItems when maxItems ≤ 0, clamped to
// MaxLintItems) whose nominal weights differ by less than the sum of their
// tolerances (Σ units·TolG of both) plus LintScaleG, it warns. Each set of
// confused SKUs is reported once, with the smallest pair of baskets that
// shows it. A SKU's own multiples (n vs n+1 units) only warn when its
// tolerance is so wide that they overlap. The result is sorted by SKU set and
// is an empty, non-nil slice when the shelf is clean.
func Lint(shelf int, skus []SKU, maxItems int) []Warning {
	if maxItems <= 0 {
		maxItems = DefaultLintItems
	}
	maxItems = min(maxItems, MaxLintItems)

	var items []SKU
	seen := map[string]bool{}
	for _, s := range skus {
		if seen[s.SKU] || !(s.UnitG > 0) || math.IsInf(s.UnitG, 0) {
			continue
		}
		seen[s.SKU] = true
		s.TolG = math.Max(s.TolG, 0)
		items = append(items, s)
	}
	slices.SortFunc(items, func(a, b SKU) int { return cmp.Compare(a.SKU, b.SKU) })

	var baskets []lintBasket
	cnt := make([]int, len(items))
	var gen func(i, units int, w, tol float64)
	gen = func(i, units int, w, tol float64) {
		if i == len(items) {
			baskets = append(baskets, lintBasket{cnt: slices.Clone(cnt), w: w, tol: tol, units: units})
			return
		}
		for n := 0; units+n <= maxItems; n++ {
			cnt[i] = n
			gen(i+1, units+n, w+float64(n)*items[i].UnitG, tol+float64(n)*items[i].TolG)
		}
		cnt[i] = 0
	}
	gen(0, 0, 0, 0)
	slices.SortStableFunc(baskets, func(a, b lintBasket) int { return cmp.Compare(a.w, b.w) })

	var maxTol float64
	for _, b := range baskets {
		maxTol = math.Max(maxTol, b.tol)
	}
	window := 2*maxTol + LintScaleG

	type found struct {
		a, b  lintBasket
		skus  []string
		units int
	}
	bySet := map[string]*found{}
	for i := range baskets {
		for j := i + 1; j < len(baskets) && baskets[j].w-baskets[i].w < window; j++ {
			a, b := baskets[i], baskets[j]
			if b.w-a.w >= a.tol+b.tol+LintScaleG {
				continue
			}
			var diff []string
			for k := range items {
				if a.cnt[k] != b.cnt[k] {
					diff = append(diff, items[k].SKU)
				}
			}
			key := strings.Join(diff, "\x00")
			u := a.units + b.units
			// The smallest pair explains the confusion best; larger ones
			// are the same confusion with more units around it.
			if f := bySet[key]; f == nil || u < f.units {
				bySet[key] = &found{a: a, b: b, skus: diff, units: u}
			}
		}
	}

	keys := make([]string, 0, len(bySet))
	for k := range bySet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Warning, 0, len(keys))
	for _, k := range keys {
		f := bySet[k]
		a, b := f.a, f.b
		// The basket with more units reads first: "2×250 g and 1×500 g".
		if b.units > a.units {
			a, b = b, a
		}
		out = append(out, Warning{
			Shelf: shelf,
			A:     lintMap(items, a.cnt),
			B:     lintMap(items, b.cnt),
			SKUs:  f.skus,
			Text: fmt.Sprintf("shelf %d: %s and %s weigh the same within tolerance",
				shelf, lintText(items, a.cnt), lintText(items, b.cnt)),
		})
	}
	return out
}

func lintMap(items []SKU, cnt []int) map[string]int {
	m := map[string]int{}
	for i, n := range cnt {
		if n > 0 {
			m[items[i].SKU] = n
		}
	}
	return m
}

func lintText(items []SKU, cnt []int) string {
	var parts []string
	for i, n := range cnt {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d×%s (%s g)", n, items[i].SKU,
				strconv.FormatFloat(items[i].UnitG, 'f', -1, 64)))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " + ")
}

// PlanShelf is one shelf of a planogram as Predict sees it.
type PlanShelf struct {
	Shelf int
	// SKUs are the shelf's products (Lane set for a TwoCell shelf).
	SKUs []SKU
	// Stock is the units per SKU a session starts from; a SKU missing
	// from it starts from PredictStock.
	Stock   map[string]int
	TwoCell bool
}

// Prediction is what a seeded simulation of ordinary sessions predicts for
// a planogram.
type Prediction struct {
	// Sessions is how many sessions were simulated.
	Sessions int
	// ExactPct is the share charged exactly and rightly, in percent.
	ExactPct float64
	// WrongExactPct is the share reported exact but charged wrongly.
	WrongExactPct float64
	// OverchargePct is the share charged more than the truth.
	OverchargePct float64
	// Confusions are the commonest ways a session went unsettled, most
	// frequent first (at most PredictConfusions).
	Confusions []Confusion
	// Pass is ExactPct ≥ PassExactPct and no session charged wrongly as
	// exact.
	Pass bool
}

// Confusion is a true basket and what the evidence also fitted.
type Confusion struct {
	// Taken and ConfusedWith are baskets as text ("1×CQ-0304@3": units,
	// SKU and shelf); ConfusedWith is the charged basket when it differs
	// from the truth, else the most probable alternative.
	Taken, ConfusedWith string
	Count               int
	Pct                 float64
}

// Predict's settings.
const (
	// PredictSessions is the default number of simulated sessions: enough
	// for the exact rate within about ±1.5 points, cheap enough to run on
	// the cabinet when a planogram arrives.
	PredictSessions = 400
	// PredictStock is the units per SKU assumed where the stock is not given.
	PredictStock = 6
	// PredictConfusions is how many confusions are named.
	PredictConfusions = 5
	// PassExactPct is the predicted exact rate a planogram needs to pass.
	PassExactPct = 90
)

// Predict plays sessions ordinary shoppers make (1–3 units from one or two
// shelves, each unit a random SKU of its shelf, within stock) on the
// planogram, with unit weights, noise and drift drawn from the model's own
// parameters at scale noise σ noiseG per settled reading, and judges each
// with Infer under opt. It reasons over exactly Infer's hypothesis space —
// across shelves, at the given stock — so its exact rate is what the
// cabinet will do if the world is as the model assumes: an upper bound for
// a real world with moves, objects and miscounts. The same planogram, seed
// and settings always give the same prediction.
func Predict(plan []PlanShelf, sessions int, noiseG float64, seed uint64, opt *Options) Prediction {
	o := opt.resolved()
	if sessions <= 0 {
		sessions = PredictSessions
	}
	if !(noiseG > 0) {
		noiseG = 0.5
	}
	var cabinet []SKU
	var shelves []PlanShelf
	for _, sh := range plan {
		var skus []SKU
		for _, k := range sh.SKUs {
			if k.UnitG > 0 && !math.IsInf(k.UnitG, 0) && !math.IsNaN(k.UnitG+k.TolG) {
				skus = append(skus, k)
				cabinet = append(cabinet, k)
			}
		}
		if len(skus) > 0 {
			sh.SKUs = skus
			shelves = append(shelves, sh)
		}
	}
	p := Prediction{Sessions: sessions}
	if len(shelves) == 0 {
		p.ExactPct, p.Pass = 100, true
		return p
	}
	slices.SortFunc(shelves, func(a, b PlanShelf) int { return cmp.Compare(a.Shelf, b.Shelf) })
	rng := rand.New(rand.NewPCG(seed, 0x6c696e74))
	confused := map[[2]string]int{}
	var exact, wrongExact, over int
	for range sessions {
		in, taken, truth := drawSession(rng, shelves, noiseG, o)
		r := Infer(in, cabinet, &o)
		got := basketText(r.Lines)
		want := basketText(taken)
		right := got == want
		switch {
		case r.Status != StatusAmbiguous && right:
			exact++
		case r.Status != StatusAmbiguous:
			wrongExact++
		}
		if r.PriceFen > truth {
			over++
		}
		if r.Status == StatusAmbiguous || !right {
			with := got
			if right && len(r.Alternatives) > 0 {
				with = basketText(r.Alternatives[0].Lines)
			}
			confused[[2]string{want, with}]++
		}
	}
	pct := func(n int) float64 { return 100 * float64(n) / float64(sessions) }
	p.ExactPct, p.WrongExactPct, p.OverchargePct = pct(exact), pct(wrongExact), pct(over)
	for k, n := range confused {
		p.Confusions = append(p.Confusions, Confusion{Taken: k[0], ConfusedWith: k[1], Count: n, Pct: pct(n)})
	}
	slices.SortFunc(p.Confusions, func(a, b Confusion) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Taken, b.Taken); c != 0 {
			return c
		}
		return cmp.Compare(a.ConfusedWith, b.ConfusedWith)
	})
	if len(p.Confusions) > PredictConfusions {
		p.Confusions = p.Confusions[:PredictConfusions]
	}
	p.Pass = p.ExactPct >= PassExactPct && wrongExact == 0
	return p
}

// drawSession draws one ordinary session: the shelves' evidence, the lines
// taken and their price.
func drawSession(rng *rand.Rand, plan []PlanShelf, noiseG float64, o Options) ([]Shelf, []Line, int64) {
	stock := make([]map[string]int, len(plan))
	for i, sh := range plan {
		stock[i] = map[string]int{}
		for _, k := range sh.SKUs {
			n, ok := sh.Stock[k.SKU]
			if !ok {
				n = PredictStock
			}
			stock[i][k.SKU] = n
		}
	}
	touched := rng.Perm(len(plan))[:min(len(plan), 1+rng.IntN(2))]
	units := 1 + rng.IntN(3)
	delta := make([]float64, len(plan))
	right := make([]float64, len(plan))
	taken := map[Line]int{}
	lifted := make([]int, len(plan))
	var truth int64
	for range units {
		i := touched[rng.IntN(len(touched))]
		k := plan[i].SKUs[rng.IntN(len(plan[i].SKUs))]
		if stock[i][k.SKU] <= 0 {
			continue
		}
		stock[i][k.SKU]--
		sd := o.UnitSpread * k.TolG
		w := k.UnitG + math.Max(-k.TolG, math.Min(k.TolG, rng.NormFloat64()*sd))
		lane := 1 / float64(len(plan[i].SKUs))
		x := math.Min(1, math.Max(0, k.Lane+(2*rng.Float64()-1)*laneJitter*lane))
		delta[i] -= w
		right[i] -= w * x
		lifted[i]++
		taken[Line{Shelf: plan[i].Shelf, SKU: k.SKU}]++
		truth += k.PriceFen
	}
	var lines []Line
	for l, n := range taken {
		l.Qty = n
		lines = append(lines, l)
	}
	sortLines(lines)
	// A settled reading averages 10 samples of σ noiseG; the delta of two
	// has σ noiseG·√(2/10), as the firmware computes it.
	sd := noiseG * math.Sqrt(2.0/10)
	var in []Shelf
	for i, sh := range plan {
		// The cabinet watches its shelves: one the shopper did not reach
		// into is still, nothing is set down on any, and the lifts are
		// counted as the model expects them (a jolt, a brushing sleeve or
		// a hand resting on a shelf, which would leave shelves unmarked,
		// are the real world's, not the model's).
		still := !slices.Contains(touched, i)
		have := map[string]int{}
		for _, k := range sh.SKUs {
			n, ok := sh.Stock[k.SKU]
			if !ok {
				n = PredictStock
			}
			have[k.SKU] = n
		}
		s := Shelf{Shelf: sh.Shelf, SKUs: sh.SKUs, Stock: have, NoiseG: sd, BeforeG: 2000, Still: still, NeverRose: true,
			Lifts: drawLifts(rng, lifted[i], o), LiftsKnown: true}
		if sh.TwoCell {
			// Each cell has its own noise and drift.
			cell := sd / math.Sqrt2
			l := delta[i] - right[i] + rng.NormFloat64()*cell + rng.NormFloat64()*o.DriftG
			r := right[i] + rng.NormFloat64()*cell + rng.NormFloat64()*o.DriftG
			s.TwoCell, s.RightBeforeG = true, 1000
			s.AfterG, s.RightAfterG = s.BeforeG+l+r, s.RightBeforeG+r
		} else {
			s.AfterG = s.BeforeG + delta[i] + rng.NormFloat64()*sd + rng.NormFloat64()*o.DriftG
		}
		in = append(in, s)
	}
	return in, lines, truth
}

// drawLifts draws the lifts the watch counts when n units are lifted from
// a shelf, by the model's own lift process (see liftP).
func drawLifts(rng *rand.Rand, n int, o Options) int {
	k := 0
	for u := range n {
		if u > 0 && rng.Float64() < o.GrabP {
			continue // in the grab before
		}
		miss := o.LiftMissP // a later grab merges with the one before
		if u == 0 {
			miss = o.LiftHideP
		}
		if rng.Float64() >= miss {
			k++
		}
	}
	for n > 0 && rng.Float64() < o.LiftExtraP {
		k++
	}
	return k
}

// basketText is a basket as text: "1×CQ-0304@3 + 2×NM-0001@1", or "nothing".
func basketText(lines []Line) string {
	if len(lines) == 0 {
		return "nothing"
	}
	parts := make([]string, len(lines))
	for i, l := range lines {
		parts[i] = fmt.Sprintf("%d×%s@%d", l.Qty, l.SKU, l.Shelf)
	}
	return strings.Join(parts, " + ")
}
