package infer

import (
	"cmp"
	"math"
	"slices"
)

// pick is one combination: an index into each shelf's list.
type pick struct {
	idx   []int
	price int64
	logL  float64
}

// tally accumulates a combination's per-SKU removals and additions.
type tally struct {
	r, a    []int
	moved   []int // additions by mixed explanations, which must be matched
	rescued int   // units added by rescue explanations
}

func newTally(n int) *tally {
	return &tally{r: make([]int, n), a: make([]int, n), moved: make([]int, n)}
}

func (t *tally) apply(c *cand, sign int) {
	for _, x := range c.rem {
		t.r[x.g] += sign * x.n
	}
	for _, x := range c.add {
		t.a[x.g] += sign * x.n
		if c.moved {
			t.moved[x.g] += sign * x.n
		}
		if c.rescue {
			t.rescued += sign * x.n
		}
	}
}

func (t *tally) reset() {
	clear(t.r)
	clear(t.a)
	clear(t.moved)
	t.rescued = 0
}

func (e *engine) priceOf(t *tally) int64 {
	var p int64
	for g, r := range t.r {
		if q := r - t.a[g]; q > 0 {
			p += int64(q) * e.price[g]
		}
	}
	return p
}

// matched reports whether every unit a mixed explanation added is covered
// by a removal of the same SKU elsewhere in the combination: such an
// addition stands for a move inside the cabinet, never for stock brought in.
func (t *tally) matched() bool {
	for g, m := range t.moved {
		if m > 0 && t.a[g] > t.r[g] {
			return false
		}
	}
	return true
}

func candKey(c cand) []int {
	k := make([]int, 0, 2*(len(c.rem)+len(c.add))+1)
	for _, x := range c.rem {
		k = append(k, x.g, x.n)
	}
	k = append(k, -1)
	for _, x := range c.add {
		k = append(k, x.g, x.n)
	}
	return k
}

// sortCands orders a shelf's explanations most likely first, then by a
// canonical key, so every tie-break downstream is deterministic.
func sortCands(cs []cand) []cand {
	out := slices.Clone(cs)
	slices.SortStableFunc(out, func(a, b cand) int {
		if c := cmp.Compare(b.logL, a.logL); c != 0 {
			return c
		}
		return slices.Compare(candKey(a), candKey(b))
	})
	return out
}

func (e *engine) choose(work []*shelfWork) Result {
	n := len(work)
	lists := make([][]cand, n)
	for _, w := range work {
		if len(w.occam) == 0 {
			w.unexplained = true
		}
	}
	for {
		overflow := false
		combos := 1
		for i, w := range work {
			overflow = overflow || w.overflow
			if w.unexplained {
				// A null explanation: the shelf takes part in no basket.
				lists[i] = []cand{{residG: w.delta}}
			} else {
				lists[i] = sortCands(w.occam)
			}
			if combos > maxCombos/len(lists[i]) {
				overflow = true
			} else {
				combos *= len(lists[i])
			}
		}
		if overflow {
			return e.floorBasket(work, lists)
		}
		r, ok := e.rank(work, lists)
		if ok {
			return r
		}
		// No combination matches every moved unit of the mixed shelves:
		// their changes are not moves after all, so nothing explains them.
		// Pure shelves always combine, so a second attempt succeeds.
		changed := false
		for _, w := range work {
			if w.mixedRound && !w.unexplained {
				w.unexplained, changed = true, true
			}
		}
		if !changed { // unreachable by the argument above; never loop
			return e.floorBasket(work, lists)
		}
	}
}

// rank enumerates every combination of the lists, keeps the matched ones and
// builds the result; false when no combination is matched.
func (e *engine) rank(work []*shelfWork, lists [][]cand) (Result, bool) {
	n := len(work)
	t := newTally(len(e.names))
	idx := make([]int, n)
	used := make([][]bool, n)
	for i := range lists {
		used[i] = make([]bool, len(lists[i]))
	}
	var best pick
	top1, top2 := math.Inf(-1), math.Inf(-1)
	top1Is, bestIs, valid := -1, -1, 0
	for k := 0; ; k++ {
		t.reset()
		var logL float64
		for i, j := range idx {
			t.apply(&lists[i][j], 1)
			logL += lists[i][j].logL
		}
		if t.matched() {
			valid++
			for i, j := range idx {
				used[i][j] = true
			}
			price := e.priceOf(t)
			if bestIs < 0 || price < best.price || (price == best.price && logL > best.logL) {
				best = pick{idx: slices.Clone(idx), price: price, logL: logL}
				bestIs = k
			}
			switch {
			case logL > top1:
				top2, top1, top1Is = top1, logL, k
			case logL > top2:
				top2 = logL
			}
		}
		if !next(idx, lists) {
			break
		}
	}
	if valid == 0 {
		return Result{}, false
	}
	margin := math.Inf(1)
	if valid > 1 {
		if bestIs == top1Is {
			margin = top1 - top2
		} else {
			margin = best.logL - top1
		}
	}
	status := StatusExact
	if valid > 1 {
		status = StatusAmbiguous
	}
	counts := make([]int, n)
	for i, w := range work {
		if !w.unexplained {
			for _, u := range used[i] {
				if u {
					counts[i]++
				}
			}
		}
	}

	// Move rescue: is a combination using one strictly cheaper?
	if r, ok, capped := e.rescue(work, lists, best.price, top1-rescueGateLogL); capped {
		return e.floorBasket(work, lists), true
	} else if ok {
		margin = r.logL - top1
		best = r
		status = StatusAmbiguous
	}

	res := e.build(work, lists, best.idx, counts)
	res.MarginLogL = margin
	switch {
	case len(res.Unexplained) > 0:
		status = StatusAmbiguous
	case status == StatusExact && len(res.Lines) == 0:
		status = StatusEmpty
	}
	res.Status = status
	return res, true
}

// next advances a mixed-radix counter over the lists; false when done.
func next(idx []int, lists [][]cand) bool {
	for i := len(idx) - 1; i >= 0; i-- {
		idx[i]++
		if idx[i] < len(lists[i]) {
			return true
		}
		idx[i] = 0
	}
	return false
}

// rescue looks, by branch and bound, for the cheapest combination that uses
// at least one rescue candidate, assumes at most rescueMaxMoves moved units,
// is matched, is at least minLogL likely and is strictly cheaper than limit. It extends lists in place
// with the rescue candidates. The third result reports that the node cap
// was hit.
func (e *engine) rescue(work []*shelfWork, lists [][]cand, limit int64, minLogL float64) (pick, bool, bool) {
	have := false
	for i, w := range work {
		if len(w.rescue) > 0 && !w.unexplained {
			lists[i] = append(slices.Clip(lists[i]), sortCands(w.rescue)...)
			have = true
		}
	}
	if !have || limit <= 0 {
		return pick{}, false, false
	}
	n, gN := len(lists), len(e.names)
	// Suffix bounds: from shelf k on, at least futMinR more removals and at
	// most futMaxA more additions of each SKU.
	futMinR := make([][]int, n+1)
	futMaxA := make([][]int, n+1)
	futMinR[n], futMaxA[n] = make([]int, gN), make([]int, gN)
	for k := n - 1; k >= 0; k-- {
		minR, maxA := make([]int, gN), make([]int, gN)
		for g := range minR {
			minR[g] = math.MaxInt
		}
		for _, c := range lists[k] {
			got := make(map[int]int, len(c.rem))
			for _, x := range c.rem {
				got[x.g] = x.n
			}
			for g := range minR {
				minR[g] = min(minR[g], got[g])
			}
			for _, x := range c.add {
				maxA[x.g] = max(maxA[x.g], x.n)
			}
		}
		futMinR[k], futMaxA[k] = make([]int, gN), make([]int, gN)
		for g := range minR {
			futMinR[k][g] = futMinR[k+1][g] + minR[g]
			futMaxA[k][g] = futMaxA[k+1][g] + maxA[g]
		}
	}

	t := newTally(gN)
	idx := make([]int, n)
	bound := limit - 1
	var best pick
	found, capped := false, false
	nodes := 0
	var dfs func(k int, logL float64)
	dfs = func(k int, logL float64) {
		if nodes++; nodes > maxRescueNodes {
			capped = true
			return
		}
		if t.rescued > rescueMaxMoves {
			return
		}
		if k == n {
			if t.rescued == 0 || logL < minLogL || !t.matched() {
				return
			}
			p := e.priceOf(t)
			if p > bound {
				return
			}
			if !found || p < best.price || (p == best.price && logL > best.logL) {
				best = pick{idx: slices.Clone(idx), price: p, logL: logL}
				found, bound = true, p
			}
			return
		}
		var lb int64
		for g := range gN {
			if q := t.r[g] + futMinR[k][g] - t.a[g] - futMaxA[k][g]; q > 0 {
				lb += int64(q) * e.price[g]
			}
		}
		if lb > bound {
			return
		}
		for j := range lists[k] {
			c := &lists[k][j]
			idx[k] = j
			t.apply(c, 1)
			dfs(k+1, logL+c.logL)
			t.apply(c, -1)
			if capped {
				return
			}
		}
	}
	dfs(0, 0)
	if capped {
		return pick{}, false, true
	}
	return best, found, false
}

// build turns the chosen combination into lines, shelf results and returns.
// counts are the per-shelf candidate counts to report.
func (e *engine) build(work []*shelfWork, lists [][]cand, idx []int, counts []int) Result {
	t := newTally(len(e.names))
	for i, j := range idx {
		t.apply(&lists[i][j], 1)
	}
	left := make([]int, len(e.names))
	for g := range left {
		left[g] = max(0, t.r[g]-t.a[g])
	}
	res := Result{Unexplained: unexplainedShelves(work)}
	for i, w := range work {
		c := lists[i][idx[i]]
		res.Shelves = append(res.Shelves, ShelfResult{
			Shelf: w.in.Shelf, DeltaG: w.delta, ResidualG: c.residG,
			Removed: e.named(c.rem), Added: e.named(c.add),
			Explained: !w.unexplained, Candidates: counts[i],
		})
		// Charged units go to the shelves they were removed from, lowest
		// shelf first; which removal an addition cancelled is unknowable.
		for _, x := range c.rem {
			if q := min(x.n, left[x.g]); q > 0 {
				res.Lines = append(res.Lines, Line{Shelf: w.in.Shelf, SKU: e.names[x.g], Qty: q})
				left[x.g] -= q
			}
		}
	}
	for g, a := range t.a {
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
// explanation seen, which is a lower bound of what any consistent basket
// charges, so the guarantee holds even when the search gave up.
//
// Mixed shelves charge nothing here: whether their additions were moves
// cannot be settled without the enumeration, and charging nothing for a
// shelf can only lower the bill.
func (e *engine) floorBasket(work []*shelfWork, lists [][]cand) Result {
	gN := len(e.names)
	net := make([]int, gN)
	charges := func(w *shelfWork) bool { return !w.unexplained && !w.mixedRound }
	for _, w := range work {
		if !charges(w) {
			continue
		}
		for g := range gN {
			net[g] += w.minRem[g] - w.maxAdd[g]
		}
	}
	res := Result{Status: StatusAmbiguous, Unexplained: unexplainedShelves(work)}
	for i, w := range work {
		c := lists[i][0]
		res.Shelves = append(res.Shelves, ShelfResult{
			Shelf: w.in.Shelf, DeltaG: w.delta, ResidualG: c.residG,
			Removed: e.named(c.rem), Added: e.named(c.add),
			Explained: !w.unexplained, Candidates: len(w.occam),
		})
		if !charges(w) {
			continue
		}
		for g := range gN {
			if q := min(w.minRem[g], net[g]); q > 0 {
				res.Lines = append(res.Lines, Line{Shelf: w.in.Shelf, SKU: e.names[g], Qty: q})
				net[g] -= q
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

func unexplainedShelves(work []*shelfWork) []int {
	var out []int
	for _, w := range work {
		if w.unexplained {
			out = append(out, w.in.Shelf)
		}
	}
	return out
}
