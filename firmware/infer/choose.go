package infer

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// tally accumulates a combination's per-SKU removals and additions.
type tally struct{ r, a []int }

func newTally(n int) *tally { return &tally{r: make([]int, n), a: make([]int, n)} }

func (t *tally) apply(c *cand, sign int) {
	for _, x := range c.rem {
		t.r[x.g] += sign * x.n
	}
	for _, x := range c.add {
		t.a[x.g] += sign * x.n
	}
}

// matched reports whether every unit added to a shelf is covered by a
// removal of the same SKU elsewhere: an addition is a move inside the
// cabinet, never stock brought in (that is an unknown object).
func (t *tally) matched() bool {
	for g, a := range t.a {
		if a > t.r[g] {
			return false
		}
	}
	return true
}

// basket is every enumerated hypothesis that charges the same units.
type basket struct {
	key      string
	charged  []int // per global SKU
	price    int64
	lse      float64 // log Σ exp(score) over its hypotheses
	lseClean float64 // the same over those without a move or an object
	best     float64 // its most probable hypothesis: score and choices
	bestIdx  []int
	moved    bool
	object   bool
	post     float64 // normalised posterior
}

func logAdd(a, b float64) float64 {
	if math.IsInf(a, -1) {
		return b
	}
	if math.IsInf(b, -1) {
		return a
	}
	if a < b {
		a, b = b, a
	}
	return a + math.Log1p(math.Exp(b-a))
}

func (e *engine) choose(work []*shelfWork) Result {
	n := len(work)
	for _, w := range work {
		if w.overflow {
			return e.floorBasket(work)
		}
	}
	sufBest := make([]float64, n+1)
	for k := n - 1; k >= 0; k-- {
		sufBest[k] = sufBest[k+1] + work[k].cands[0].score
	}

	gN := len(e.names)
	t := newTally(gN)
	idx := make([]int, n)
	byKey := map[string]*basket{}
	bestLeaf := math.Inf(-1)
	var mapIdx []int
	nodes, capped := 0, false
	var dfs func(k int, partial float64)
	dfs = func(k int, partial float64) {
		if nodes++; nodes > maxNodes {
			capped = true
			return
		}
		if k == n {
			if t.matched() {
				score := partial + e.moveCorrection(work, t, idx)
				e.leaf(work, t, idx, score, byKey)
				if score > bestLeaf {
					bestLeaf, mapIdx = score, slices.Clone(idx)
				}
			}
			return
		}
		for j := range work[k].cands {
			c := &work[k].cands[j]
			if partial+c.score+sufBest[k+1] < bestLeaf-keepLogP {
				break // sorted: the rest are less probable still
			}
			idx[k] = j
			t.apply(c, 1)
			dfs(k+1, partial+c.score)
			t.apply(c, -1)
			if capped {
				return
			}
		}
	}
	dfs(0, 0)
	if capped || len(byKey) == 0 {
		// len 0 cannot happen (every shelf's list holds a hypothesis
		// without additions, and those always combine), but never guess.
		return e.floorBasket(work)
	}
	return e.decide(work, byKey, mapIdx)
}

// moveCorrection rescores a combination's moved units. Each shelf's
// hypothesis scored its removals as purchases; a unit that was moved was
// not bought, so its source shelf's purchase count is one less, and the move
// itself picked that shelf and that SKU among the cabinet's (1/shelves ×
// 1/SKUs on the shelf; the destination was scored with the addition). The
// moved units of a SKU are taken from the lowest shelves removing it.
//
// The moved unit is also one and the same unit on both shelves: its
// deviation from the nominal weight leaves the source and arrives at the
// destination, so the two residuals are anti-correlated. Each shelf's
// likelihood counted that deviation on its own; the correction replaces
// the two independent Gaussians by their joint one (single-cell shelves
// without an object). Without it, a twin of the moved unit taken from the
// destination looks as likely as the unit itself, even when the source's
// reading has already pinned the moved unit's weight down.
func (e *engine) moveCorrection(work []*shelfWork, t *tally, idx []int) float64 {
	moved := false
	for _, a := range t.a {
		moved = moved || a > 0
	}
	if !moved {
		return 0
	}
	left := slices.Clone(t.a)
	var corr float64
	// SKU → the shelf its first moved units came from, and how many.
	type source struct{ shelf, n int }
	src := map[int]source{}
	for i, j := range idx {
		w := work[i]
		c := &w.cands[j]
		var out []kc
		for _, x := range c.rem {
			if q := min(x.n, left[x.g]); q > 0 {
				out = append(out, kc{x.g, q})
				left[x.g] -= q
				if _, ok := src[x.g]; !ok {
					src[x.g] = source{i, q}
				}
			}
		}
		if len(out) == 0 {
			continue
		}
		bought := make([]kc, 0, len(c.rem))
		units := 0
		for _, x := range c.rem {
			n := x.n
			for _, y := range out {
				if y.g == x.g {
					n -= y.n
					units += y.n
				}
			}
			bought = append(bought, kc{x.g, n})
		}
		corr += e.purchasePrior(w, bought) - e.purchasePrior(w, c.rem)
		corr -= float64(units) * (e.lShelves + math.Log(float64(max(len(w.own), 1))))
	}
	for b, j := range idx {
		cb := &work[b].cands[j]
		for _, x := range cb.add {
			from, ok := src[x.g]
			if !ok || from.shelf == b {
				continue
			}
			ca := &work[from.shelf].cands[idx[from.shelf]]
			if ca.varG <= 0 || cb.varG <= 0 {
				continue
			}
			// Only the units that came from this source share their
			// deviation with it; each shelf's variance holds at least
			// those units' spread, so the pair's covariance matrix stays
			// positive definite.
			sd := e.opt.UnitSpread * e.addable[x.g].tol
			cv := -float64(min(x.n, from.n)) * sd * sd
			corr += gauss2(ca.residG, cb.residG, ca.varG, cb.varG, cv) -
				gauss1(ca.residG, ca.varG) - gauss1(cb.residG, cb.varG)
		}
	}
	return corr
}

// gauss1 is the log density of a Gaussian residual r with variance v.
func gauss1(r, v float64) float64 { return -0.5*r*r/v - 0.5*math.Log(2*math.Pi*v) }

// isObject reports whether c needs an unknown object: a residual of
// ObjectMinG or more left on or taken from the shelf. A smaller one is a
// reading offset (a lean's hysteresis, crumbs, drift beyond the model's):
// the shelf counts as explained and the hypothesis as clean.
func (e *engine) isObject(c *cand) bool { return c.obj != 0 && c.objG >= e.opt.ObjectMinG }

// leaf adds one matched combination to its basket.
func (e *engine) leaf(work []*shelfWork, t *tally, idx []int, score float64, byKey map[string]*basket) {
	var sb strings.Builder
	var price int64
	for g, r := range t.r {
		if q := r - t.a[g]; q > 0 {
			sb.WriteString(strconv.Itoa(g))
			sb.WriteByte(':')
			sb.WriteString(strconv.Itoa(q))
			sb.WriteByte(' ')
			price += int64(q) * e.price[g]
		}
	}
	moved, object := false, false
	for i, j := range idx {
		c := &work[i].cands[j]
		moved = moved || len(c.add) > 0
		object = object || e.isObject(c)
	}
	key := sb.String()
	b := byKey[key]
	if b == nil {
		b = &basket{key: key, price: price, lse: math.Inf(-1), lseClean: math.Inf(-1), best: math.Inf(-1),
			charged: make([]int, len(t.r))}
		for g, r := range t.r {
			b.charged[g] = r - t.a[g]
		}
		byKey[key] = b
	}
	b.lse = logAdd(b.lse, score)
	if !moved && !object {
		b.lseClean = logAdd(b.lseClean, score)
	}
	if score > b.best {
		b.best, b.bestIdx, b.moved, b.object = score, slices.Clone(idx), moved, object
	}
}

// decide applies the decision rule to the enumerated baskets.
func (e *engine) decide(work []*shelfWork, byKey map[string]*basket, mapIdx []int) Result {
	o := e.opt
	bs := make([]*basket, 0, len(byKey))
	for _, b := range byKey {
		bs = append(bs, b)
	}
	// A fixed order before summing: map order must not move the last bit.
	slices.SortFunc(bs, func(a, b *basket) int { return strings.Compare(a.key, b.key) })
	z := math.Inf(-1)
	for _, b := range bs {
		z = logAdd(z, b.lse)
	}
	for _, b := range bs {
		b.post = math.Exp(b.lse - z)
	}
	slices.SortFunc(bs, func(a, b *basket) int {
		if c := cmp.Compare(b.lse, a.lse); c != 0 {
			return c
		}
		if c := cmp.Compare(a.price, b.price); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	star := bs[0]
	// The most probable basket cheaper than B*: exactness needs it below
	// CheaperBound, i.e. B* is the cheapest basket still plausible.
	var cheaper float64
	for _, b := range bs {
		if b.price < star.price {
			cheaper = max(cheaper, b.post)
		}
	}
	broken := false
	for _, w := range work {
		broken = broken || w.broken
	}
	clean := math.Exp(star.lseClean - z)
	exact := !broken && clean >= o.Confidence && (o.RevenueFirst || cheaper < o.CheaperBound)

	charged := star
	if !exact {
		// The cheapest basket the evidence leaves plausible; bs is most
		// probable first, so ties go to the more probable.
		var pick *basket
		for _, b := range bs {
			if b.post >= o.CheaperBound && (pick == nil || b.price < pick.price) {
				pick = b
			}
		}
		if pick != nil {
			charged = pick
		}
	}

	res := e.build(work, charged.bestIdx, charged.charged)
	res.PriceFen = charged.price
	res.Posterior = charged.post
	res.MarginLogL = math.Inf(1)
	for _, b := range bs {
		if b == charged {
			continue
		}
		if res.MarginLogL == math.Inf(1) {
			res.MarginLogL = charged.lse - b.lse
		}
		if len(res.Alternatives) < o.Alternatives && b.post >= 1e-9 {
			alt := e.build(work, b.bestIdx, b.charged)
			res.Alternatives = append(res.Alternatives, Alternative{Lines: alt.Lines, PriceFen: b.price,
				Posterior: b.post, Moved: b.moved, Object: b.object})
		}
	}
	switch {
	case !exact:
		res.Status = StatusAmbiguous
	case len(res.Lines) == 0:
		res.Status = StatusEmpty
	default:
		res.Status = StatusExact
	}
	res.StockMismatch = e.mismatch(work, mapIdx)
	e.mapClean = true
	for i, j := range mapIdx {
		c := &work[i].cands[j]
		e.mapClean = e.mapClean && len(c.add) == 0 && !e.isObject(c)
	}
	return res
}

// mismatch lists where the most probable hypothesis removes more units than
// a shelf's known Stock.
func (e *engine) mismatch(work []*shelfWork, idx []int) []StockMismatch {
	var out []StockMismatch
	for i, j := range idx {
		w := work[i]
		for _, x := range w.cands[j].rem {
			name := e.names[x.g]
			if have, ok := w.in.Stock[name]; ok && x.n > max(have, 0) {
				out = append(out, StockMismatch{Shelf: w.in.Shelf, SKU: name, Stock: have, Removed: x.n})
			}
		}
	}
	return out
}

// build turns a combination into lines, shelf results and returns. charged
// is the units per SKU to charge, attributed to the shelves they were
// removed from, lowest shelf first: which removal a move cancelled is
// unknowable.
func (e *engine) build(work []*shelfWork, idx []int, charged []int) Result {
	left := slices.Clone(charged)
	var res Result
	added := make([]int, len(e.names))
	for i, w := range work {
		c := &w.cands[idx[i]]
		explained := !w.broken && !e.isObject(c)
		if !explained {
			res.Unexplained = append(res.Unexplained, w.in.Shelf)
		}
		sr := ShelfResult{Shelf: w.in.Shelf, DeltaG: w.delta, ResidualG: c.residG,
			Removed: e.named(c.rem), Added: e.named(c.add), Explained: explained, Candidates: len(w.cands)}
		if c.obj != 0 {
			sr.ObjectG = float64(c.obj) * c.objG
		}
		res.Shelves = append(res.Shelves, sr)
		for _, x := range c.rem {
			if q := min(x.n, left[x.g]); q > 0 {
				res.Lines = append(res.Lines, Line{Shelf: w.in.Shelf, SKU: e.names[x.g], Qty: q})
				left[x.g] -= q
			}
		}
		for _, x := range c.add {
			added[x.g] += x.n
		}
	}
	for g, a := range added {
		if a > 0 {
			if res.Returned == nil {
				res.Returned = map[string]int{}
			}
			res.Returned[e.names[g]] = a
		}
	}
	sortLines(res.Lines)
	return res
}

// floorBasket is the capped fallback: per SKU it charges
// max(0, Σ shelves' fewest removals − Σ shelves' most additions) over every
// hypothesis kept, which no hypothesis undercuts, so the no-overcharge
// guarantee holds even when the search gave up.
func (e *engine) floorBasket(work []*shelfWork) Result {
	gN := len(e.names)
	net := make([]int, gN)
	minRem := make([][]int, len(work))
	for i, w := range work {
		minRem[i] = make([]int, gN)
		for g := range minRem[i] {
			minRem[i][g] = math.MaxInt
		}
		maxAdd := make([]int, gN)
		for _, c := range w.cands {
			got := make([]int, gN)
			for _, x := range c.rem {
				got[x.g] = x.n
			}
			for g := range gN {
				minRem[i][g] = min(minRem[i][g], got[g])
			}
			for _, x := range c.add {
				maxAdd[x.g] = max(maxAdd[x.g], x.n)
			}
		}
		for g := range gN {
			net[g] += minRem[i][g] - maxAdd[g]
		}
	}
	res := Result{Status: StatusAmbiguous}
	for i, w := range work {
		c := &w.cands[0]
		res.Shelves = append(res.Shelves, ShelfResult{
			Shelf: w.in.Shelf, DeltaG: w.delta, ResidualG: c.residG,
			Removed: e.named(c.rem), Added: e.named(c.add),
			Explained: !w.broken && !e.isObject(c), Candidates: len(w.cands),
		})
		if w.broken || e.isObject(c) {
			res.Unexplained = append(res.Unexplained, w.in.Shelf)
		}
		for g := range gN {
			if q := min(minRem[i][g], net[g]); q > 0 {
				res.Lines = append(res.Lines, Line{Shelf: w.in.Shelf, SKU: e.names[g], Qty: q})
				net[g] -= q
				res.PriceFen += int64(q) * e.price[g]
			}
		}
	}
	sortLines(res.Lines)
	return res
}

func (e *engine) named(xs []kc) map[string]int {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]int, len(xs))
	for _, x := range xs {
		m[e.names[x.g]] = x.n
	}
	return m
}

func sortLines(ls []Line) {
	slices.SortFunc(ls, func(a, b Line) int {
		if c := cmp.Compare(a.Shelf, b.Shelf); c != 0 {
			return c
		}
		return cmp.Compare(a.SKU, b.SKU)
	})
}
