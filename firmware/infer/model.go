package infer

import (
	"cmp"
	"math"
	"slices"
	"sort"
)

// The search's margins, in log-probability units. A hypothesis this far
// below the best one holds less than e⁻¹⁴ ≈ 10⁻⁶ of the posterior: too
// little to change a decision whose finest bound (CheaperBound) is 10⁻⁴.
const (
	// keepLogP: combinations below the best matched one by more than this
	// are not enumerated.
	keepLogP = 14.0
	// shelfLogP: a shelf's hypotheses below its best by more than this are
	// dropped. Wider than keepLogP, because a shelf's best hypothesis may
	// need a move that no other shelf matches.
	shelfLogP = 20.0
	// missSlack is how many units beyond a known stock a miscount may hide.
	missSlack = 2
	// maxObjUnits caps the units removed in a hypothesis with an unknown
	// object.
	maxObjUnits = 5
	// laneJitter is how far off its lane's centre a unit may stand, as a
	// share of the lane's width (uniformly: a pack nearly fills its lane).
	laneJitter = 0.3
	// nudgeP is the chance that a unit on a two-cell shelf was lifted and
	// put back elsewhere in its lane, shifting the centre of mass without
	// changing the weight.
	nudgeP = 0.1
)

// Caps on the search. They bound time and memory on a cabinet board; when
// one is hit the result falls back to a floor basket that is provably no
// dearer than any hypothesis kept (see floorBasket), so a cap can
// undercharge but never overcharge.
const (
	maxShelfCands = 4096
	maxNodes      = 1 << 18
)

// shelfWork is one shelf's evidence and its hypotheses.
type shelfWork struct {
	in     Shelf
	delta  float64 // AfterG − BeforeG
	deltaR float64 // the right cell's change (TwoCell)
	two    bool
	sigma  float64
	own    []sku
	// laneSD is σ of a unit's position within its lane, as a fraction of
	// the shelf's width: a unit stands up to laneJitter of its lane's
	// width off the lane's centre, one of len(own) lanes.
	laneSD float64
	// nudgeVar is the right cell's extra variance when a unit was put back
	// elsewhere in its lane (see nudgeP).
	nudgeVar float64
	cands    []cand // most probable first
	// lifts caches log P(the shelf's Lifts | n units lifted), by n, plain
	// and with a put-back's lift (see liftLogP); NaN means not yet computed.
	lifts [2][]float64
	// broken: the readings cannot be used; the shelf takes part with one
	// null hypothesis and the result is ambiguous.
	broken   bool
	overflow bool
}

// cand is one hypothesis about one shelf.
type cand struct {
	rem, add []kc // sorted by g
	// obj is +1 for an unknown object left on the shelf, −1 for one taken
	// away; objG its weight.
	obj    int8
	objG   float64
	over   []kc // removals beyond the known stock
	units  int
	residG float64
	// varG is the variance of the total's residual the likelihood used (0
	// for an object or a two-cell shelf: no move correlation applied).
	varG  float64
	score float64 // log prior + log likelihood
}

// moments accumulate a hypothesis's predicted change and the variance its
// units add.
type moments struct {
	t, r       float64 // predicted change of the total and of the right cell
	vt, vr, cv float64 // variance of the total, the right cell, their covariance
	tol        float64 // summed hard tolerances
	units      int
}

// unit adds n units of s, removed (sign −1) or added (+1) at lane x; lane
// spread lsd is σ of the position within the lane.
func (m *moments) unit(s sku, n int, sign, x, lsd, spread float64) {
	if n == 0 {
		return
	}
	nf := float64(n)
	sd := spread * s.tol
	m.t += sign * nf * s.w
	m.r += sign * nf * s.w * x
	m.vt += nf * sd * sd
	m.cv += nf * sd * sd * x
	m.vr += nf * (sd*sd*x*x + s.w*s.w*lsd*lsd)
	m.tol += nf * s.tol
	m.units += n
}

func (m moments) plus(o moments) moments {
	return moments{t: m.t + o.t, r: m.r + o.r, vt: m.vt + o.vt, vr: m.vr + o.vr, cv: m.cv + o.cv,
		tol: m.tol + o.tol, units: m.units + o.units}
}

// addVec is one way of moving units onto a shelf.
type addVec struct {
	add []kc
	m   moments
}

func (e *engine) explain(w *shelfWork, elsewhere []sku) {
	o := e.opt
	w.delta = w.in.AfterG - w.in.BeforeG
	w.two = w.in.TwoCell
	if w.two {
		w.deltaR = w.in.RightAfterG - w.in.RightBeforeG
	}
	w.sigma = math.Max(w.in.NoiseG, o.MinNoiseG)
	if math.IsNaN(w.sigma) || math.IsInf(w.sigma, 0) {
		w.sigma = o.MinNoiseG
	}
	w.own = e.prepare(w.in.SKUs)
	// Heaviest first: the weight bounds of the walk below bite soonest.
	slices.SortStableFunc(w.own, func(a, b sku) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return a.g - b.g
	})
	w.laneSD = laneJitter / (float64(max(len(w.own), 1)) * math.Sqrt(3))
	for _, k := range w.own {
		w.nudgeVar = math.Max(w.nudgeVar, 2*k.w*k.w*w.laneSD*w.laneSD)
	}
	if bad(w.delta) || (w.two && bad(w.deltaR)) {
		w.broken = true
		w.cands = []cand{{residG: w.delta}}
		return
	}

	// Per own SKU: the known stock (−1 unknown) and the most units a
	// hypothesis may remove.
	stock := make([]int, len(w.own))
	limit := make([]int, len(w.own))
	for i, s := range w.own {
		stock[i] = -1
		limit[i] = o.MaxItems
		if n, ok := w.in.Stock[s.name]; ok && n >= 0 && e.bounded {
			stock[i] = n
			limit[i] = n + missSlack
		}
	}
	// Past nMax units a basket is shelfLogP less likely than one unit,
	// whatever it explains.
	nMax := len(e.lCount) - 1

	adds := e.addVecs(w, elsewhere)

	var maxAddW, maxAddTol float64
	for _, a := range adds {
		maxAddW = math.Max(maxAddW, a.m.t)
		maxAddTol = math.Max(maxAddTol, a.m.tol)
	}
	base := o.K*math.Sqrt(w.sigma*w.sigma+e.driftVar(w)) + o.CreepFrac*math.Abs(w.delta)
	// restW[i], restTol[i]: the most weight and tolerance SKUs i.. can
	// still remove (own is heaviest first).
	restW := make([]float64, len(w.own)+1)
	restTol := make([]float64, len(w.own)+1)
	for i := len(w.own) - 1; i >= 0; i-- {
		k := float64(min(limit[i], nMax))
		restW[i] = restW[i+1] + k*w.own[i].w
		restTol[i] = restTol[i+1] + k*w.own[i].tol
	}

	cnt := make([]int, len(w.own))
	// Hypotheses made of units: removals, with or without units moved here.
	var walk func(i, n int, remW, remTol float64)
	walk = func(i, n int, remW, remTol float64) {
		if w.delta+remW-remTol-maxAddW-maxAddTol > base {
			return // more removed than any addition can make up
		}
		if w.delta+remW+restW[i]+remTol+restTol[i] < -base {
			return // the rest cannot remove enough
		}
		if i < len(w.own) {
			for c := 0; c <= limit[i] && n+c <= nMax; c++ {
				cnt[i] = c
				cf := float64(c)
				walk(i+1, n+c, remW+cf*w.own[i].w, remTol+cf*w.own[i].tol)
			}
			cnt[i] = 0
			return
		}
		prior, over, rem, mr := e.removal(w, cnt, stock)
		if c, ok := e.fit(w, mr, base); ok {
			c.rem, c.over, c.score = rem, over, c.score+prior
			e.keep(w, c)
		}
		need := w.delta - mr.t
		lo := sort.Search(len(adds), func(k int) bool { return adds[k].m.t >= need-base-mr.tol-maxAddTol })
		for k := lo; k < len(adds) && adds[k].m.t <= need+base+mr.tol+maxAddTol; k++ {
			if overlaps(rem, adds[k].add) {
				continue // a unit taken and put back on one shelf is neither
			}
			if c, ok := e.fit(w, mr.plus(adds[k].m), base); ok {
				c.rem, c.add, c.over = rem, adds[k].add, over
				c.score += prior + float64(adds[k].m.units)*(e.lMove-e.lDest)
				e.keep(w, c)
			}
		}
	}
	walk(0, 0, 0, 0)

	// An unknown object takes up what a few removed units leave. Larger
	// removals with an object are too improbable to matter (each further
	// unit makes the count less likely on top of the object's own prior).
	var walkObj func(i, n int)
	walkObj = func(i, n int) {
		if i < len(w.own) {
			for c := 0; c <= limit[i] && n+c <= maxObjUnits; c++ {
				cnt[i] = c
				walkObj(i+1, n+c)
			}
			cnt[i] = 0
			return
		}
		prior, over, rem, mr := e.removal(w, cnt, stock)
		if c, ok := e.object(w, mr); ok {
			c.rem, c.over, c.score = rem, over, c.score+prior
			e.keep(w, c)
		}
	}
	walkObj(0, 0)

	slices.SortFunc(w.cands, func(a, b cand) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return slices.Compare(candKey(a), candKey(b))
	})
	if len(w.cands) == 0 {
		// Nothing fits, not even an object (a change beyond ObjectMaxG, or
		// below ObjectMinG yet beyond the noise): judged as untouched and
		// flagged.
		w.broken = true
		w.cands = []cand{{residG: w.delta}}
		return
	}
	cut := len(w.cands)
	for cut > 1 && w.cands[cut-1].score < w.cands[0].score-shelfLogP {
		cut--
	}
	if cut > maxShelfCands {
		cut, w.overflow = maxShelfCands, true
	}
	w.cands = slices.Clip(w.cands[:cut])
}

func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// keep records a hypothesis, dropping it at once when it is already hopeless
// against the shelf's best so far.
func (e *engine) keep(w *shelfWork, c cand) {
	switch {
	case w.in.Still && (len(c.rem) > 0 || len(c.add) > 0 || e.isObject(&c)):
		c.score += e.lStillMiss // the shelf never moved, yet units did
	case w.in.NeverRose && !w.in.Still && (len(c.add) > 0 || (c.obj > 0 && e.isObject(&c))):
		c.score += e.lRiseMiss // nothing was set down, yet something was
	case w.in.Rose && len(c.add) == 0 && !(c.obj > 0 && e.isObject(&c)):
		c.score += e.lRiseFalse // something was set down, yet nothing was
	}
	if w.in.LiftsKnown && w.in.Lifts >= 0 && !w.in.Still {
		n := 0
		for _, r := range c.rem {
			n += r.n
		}
		if c.obj < 0 && e.isObject(&c) {
			n++ // an object taken away was lifted too
		}
		// A rise with nothing set down may be a unit put back: one lift more.
		putBack := w.in.Rose && len(c.add) == 0 && !(c.obj > 0 && e.isObject(&c))
		c.score += e.liftLogP(w, n, putBack)
	}
	if math.IsInf(c.score, -1) || math.IsNaN(c.score) {
		return
	}
	w.cands = append(w.cands, c)
}

// liftLogP is log P(the shelf's Lifts | n units lifted from it), with a
// put-back's extra lift mixed in at RisePutBackP when putBack is set.
func (e *engine) liftLogP(w *shelfWork, n int, putBack bool) float64 {
	v := 0
	if putBack {
		v = 1
	}
	c := &w.lifts[v]
	for len(*c) <= n {
		*c = append(*c, math.NaN())
	}
	if !math.IsNaN((*c)[n]) {
		return (*c)[n]
	}
	o := &e.opt
	p := liftP(n, w.in.Lifts, o.GrabP, o.LiftHideP, o.LiftMissP, o.LiftExtraP)
	if putBack {
		q := min(max(o.RisePutBackP, 0), 1)
		p = (1-q)*p + q*liftP(n+1, w.in.Lifts, o.GrabP, o.LiftHideP, o.LiftMissP, o.LiftExtraP)
	}
	// A count no explanation makes likely is a count the watch got wrong:
	// never a reason to rule every explanation out.
	l := math.Log(max(p, liftFloor))
	(*c)[n] = l
	return l
}

// liftFloor is the least likelihood a lift count gives any explanation:
// the chance that the watch miscounted (a fault, a shelf knocked in a way
// no shopper does), so a wrong count weighs no explanation down further.
const liftFloor = 1e-6

// liftP is the chance that the watch sees k lifts when n units were
// lifted from a shelf: the units go up in g grabs (each unit after the
// first joins the grab before it with probability grab); the first grab
// shows as a lift except with probability hide, each later one except
// with probability merge; and the watch sees further lifts, geometric with
// ratio extra.
func liftP(n, k int, grab, hide, merge, extra float64) float64 {
	clip := func(p float64) float64 { return min(max(p, 0), 1) }
	grab, hide, merge, extra = clip(grab), clip(hide), clip(merge), clip(extra)
	spurious := func(m int) float64 { // P(m extra lifts)
		if m < 0 {
			return 0
		}
		return (1 - extra) * math.Pow(extra, float64(m))
	}
	if n <= 0 {
		return spurious(k)
	}
	var p float64
	for g := 1; g <= n; g++ {
		pg := binomial(n-1, g-1) * math.Pow(1-grab, float64(g-1)) * math.Pow(grab, float64(n-g))
		if pg == 0 {
			continue
		}
		// s lifts seen of the g grabs: the first seen or not, then s or
		// s−1 of the g−1 later ones.
		for s := 0; s <= min(g, k); s++ {
			later := func(m int) float64 {
				return binomial(g-1, m) * math.Pow(1-merge, float64(m)) * math.Pow(merge, float64(g-1-m))
			}
			ps := hide*later(s) + (1-hide)*later(s-1)
			p += pg * ps * spurious(k-s)
		}
	}
	return p
}

// binomial is n choose k as a float.
func binomial(n, k int) float64 {
	if k < 0 || k > n {
		return 0
	}
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// driftVar is the zero drift's variance of the shelf's total.
func (e *engine) driftVar(w *shelfWork) float64 {
	d := e.opt.DriftG * e.opt.DriftG
	if w.two {
		return 2 * d
	}
	return d
}

// removalPrior scores a removal count vector: untouched, or n ≥ 1 units
// geometric in n and spread evenly (multinomially) over the shelf's SKUs;
// units beyond a known stock cost MiscountP each and are returned in over.
func (e *engine) removalPrior(w *shelfWork, cnt, stock []int) (float64, []kc) {
	n := 0
	for _, c := range cnt {
		n += c
	}
	if n == 0 {
		return e.lUntouched, nil
	}
	if n >= len(e.lCount) {
		return math.Inf(-1), nil
	}
	lp := e.lTouch + e.lCount[n]
	lg, _ := math.Lgamma(float64(n + 1))
	lp += lg - float64(n)*math.Log(float64(len(w.own)))
	var over []kc
	for i, c := range cnt {
		l, _ := math.Lgamma(float64(c + 1))
		lp -= l
		if stock[i] >= 0 && c > stock[i] {
			lp += float64(c-stock[i]) * e.lMiscount
			over = append(over, kc{w.own[i].g, c - stock[i]})
		}
	}
	return lp, over
}

// purchasePrior is the count part of removalPrior for units bought.
func (e *engine) purchasePrior(w *shelfWork, rem []kc) float64 {
	n := 0
	lp := 0.0
	for _, x := range rem {
		n += x.n
		l, _ := math.Lgamma(float64(x.n + 1))
		lp -= l
	}
	if n == 0 {
		return e.lUntouched
	}
	if n >= len(e.lCount) {
		return math.Inf(-1)
	}
	lg, _ := math.Lgamma(float64(n + 1))
	return lp + e.lTouch + e.lCount[n] + lg - float64(n)*math.Log(float64(len(w.own)))
}

// removal builds a removal count vector's prior, stock excess, units and
// moments.
func (e *engine) removal(w *shelfWork, cnt, stock []int) (float64, []kc, []kc, moments) {
	prior, over := e.removalPrior(w, cnt, stock)
	var m moments
	for j, s := range w.own {
		m.unit(s, cnt[j], -1, s.lane, w.laneSD, e.opt.UnitSpread)
	}
	return prior, over, toKC(w.own, cnt), m
}

// addVecs lists the ways of moving 1..MaxAdds units of SKUs stocked on
// other shelves onto w, lightest first. A moved unit lands anywhere on the
// shelf: its lane is unknown (uniform, mean ½, variance 1/12).
func (e *engine) addVecs(w *shelfWork, elsewhere []sku) []addVec {
	var out []addVec
	cnt := make([]int, len(elsewhere))
	var walk func(i, units int)
	walk = func(i, units int) {
		if i == len(elsewhere) {
			if units == 0 {
				return
			}
			var m moments
			for j, s := range elsewhere {
				m.unit(s, cnt[j], +1, 0.5, math.Sqrt(1.0/12), e.opt.UnitSpread)
			}
			out = append(out, addVec{add: toKC(elsewhere, cnt), m: m})
			return
		}
		for n := 0; units+n <= e.opt.MaxAdds; n++ {
			cnt[i] = n
			walk(i+1, units+n)
		}
		cnt[i] = 0
	}
	walk(0, 0)
	slices.SortStableFunc(out, func(a, b addVec) int { return cmp.Compare(a.m.t, b.m.t) })
	return out
}

// fit scores the shelf's weights against a hypothesis without an object:
// ok is false when the residual is beyond the hard limit.
func (e *engine) fit(w *shelfWork, m moments, base float64) (cand, bool) {
	o := e.opt
	rt := w.delta - m.t
	if math.Abs(rt) > base+m.tol {
		return cand{}, false
	}
	s2 := w.sigma * w.sigma
	creep := o.CreepFrac * w.delta
	vt := s2 + e.driftVar(w) + creep*creep + m.vt
	c := cand{units: m.units, residG: rt}
	if !w.two {
		c.varG = vt
		c.score = -0.5*rt*rt/vt - 0.5*math.Log(2*math.Pi*vt)
		return c, true
	}
	rr := w.deltaR - m.r
	d2 := o.DriftG * o.DriftG
	creepR := o.CreepFrac * w.deltaR
	vr := s2/2 + d2 + creepR*creepR + m.vr
	cv := s2/2 + d2 + creep*creepR + m.cv
	// A unit put back elsewhere in its lane moves the centre of mass only:
	// a mixture over "not nudged" and "nudged".
	c.score = logAdd(math.Log(1-nudgeP)+gauss2(rt, rr, vt, vr, cv), math.Log(nudgeP)+gauss2(rt, rr, vt, vr+w.nudgeVar, cv))
	return c, true
}

// gauss2 is the log density of a 2-D Gaussian residual (rt, rr) with
// variances vt, vr and covariance cv.
func gauss2(rt, rr, vt, vr, cv float64) float64 {
	det := vt*vr - cv*cv
	if !(det > 1e-9*vt*vr) {
		// Not a covariance matrix: never let a degenerate pair make a
		// hypothesis likelier than its two readings on their own.
		return gauss1(rt, vt) + gauss1(rr, vr)
	}
	return -0.5*(vr*rt*rt-2*cv*rt*rr+vt*rr*rr)/det - 0.5*math.Log(4*math.Pi*math.Pi*det)
}

// object scores the hypothesis that an unknown object, left on the shelf or
// taken from it, makes up the residual the units leave. Its weight g has a
// density flat below ObjectMinG (a lean's hysteresis, crumbs: anything too
// light to call an object) and log-uniform from there to ObjectMaxG:
// 1/(ObjectMinG·Z) below, 1/(g·Z) above, Z = 1 + ln(max/min). The flat part
// keeps "nothing taken, the reading is off by a few grams" possible, so a
// small unexplained change can never force a removal onto the bill. On a
// two-cell shelf the object stands anywhere (the right cell takes a
// uniform share of it).
func (e *engine) object(w *shelfWork, m moments) (cand, bool) {
	o := e.opt
	g := w.delta - m.t
	c := cand{units: m.units, residG: 0}
	switch {
	case g > 0 && g <= o.ObjectMaxG:
		c.obj, c.objG, c.score = 1, g, e.lObj
	case g < 0 && -g <= o.ObjectMaxG:
		c.obj, c.objG, c.score = -1, -g, e.lObjGone
	default:
		return cand{}, false
	}
	c.score += -math.Log(math.Max(c.objG, o.ObjectMinG)) - e.lObjNorm
	if w.two {
		s2 := w.sigma*w.sigma/2 + o.DriftG*o.DriftG + m.vr + g*g/12 + nudgeP*w.nudgeVar
		rr := w.deltaR - m.r - g/2
		c.score += -0.5*rr*rr/s2 - 0.5*math.Log(2*math.Pi*s2)
	}
	return c, true
}

func toKC(items []sku, cnt []int) []kc {
	var out []kc
	for i, n := range cnt {
		if n > 0 {
			out = append(out, kc{items[i].g, n})
		}
	}
	slices.SortFunc(out, func(a, b kc) int { return a.g - b.g })
	return out
}

func overlaps(a, b []kc) bool {
	for _, x := range a {
		for _, y := range b {
			if x.g == y.g {
				return true
			}
		}
	}
	return false
}

func candKey(c cand) []int {
	k := make([]int, 0, 2*(len(c.rem)+len(c.add))+2)
	for _, x := range c.rem {
		k = append(k, x.g, x.n)
	}
	k = append(k, -1)
	for _, x := range c.add {
		k = append(k, x.g, x.n)
	}
	return append(k, int(c.obj))
}
