package world

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/bangfu/cabinet/firmware/infer"
)

// The frontier: the best any basket inference can do on this world with
// one load cell per shelf. Frontier computes the posterior over baskets by
// Bayes' rule under the world's own generative process — its class mix,
// its purchase process (units, shelves, SKUs), its move, object and lean
// processes, its miscounted books and its load-cell physics — rather than
// under infer's model. A decision rule applied to that posterior sets the
// bar infer.Infer is measured against: where the frontier cannot tell two
// baskets apart, no model can.
//
// What the frontier knows is what the world's designer knows about
// shoppers and load cells in general, not what a cabinet could not know:
// the planogram's nominal weights, tolerances and drift σ, and the
// distributions of fill bias, unit scatter, creep, leans and personal
// objects — not a product's own fill bias nor a unit's true weight.
//
// Its approximations, each small against the effects it measures:
//   - the weight of n units of a product is Gaussian with the world's mean
//     and variance (per-unit scatter plus a fill bias shared by the
//     product's units); the near-limit tail is folded into the variance;
//   - creep is Gaussian with the world's mean and variance of f·Δ;
//   - a shopper's SKU choice ignores lanes that run empty during the
//     session (stock bounds removals, but does not reweight the choice);
//   - a miscount moves the books of one SKU of a shelf by one unit either
//     way, as the world's ledger does, and is otherwise uniform;
//   - the touch detector (touch.go) judges a worked shelf's net change by
//     the measured delta, and a put-back may land on any shelf;
//   - a shelf's lift count is read with the world's own grab, merge and
//     drag process (frontier_lifts.go), the units bought in any order
//     alike and a moved or put-back unit after them; a put-back's unit is
//     of a product in proportion to the units the books leave;
//   - the touch evidence of a move's source is that of a shelf lifted from
//     (the world's move is drawn after the purchase, so the order of lifts
//     and set-downs does not matter to it).

// frontierMaxUnits caps the units one session removes: the world's largest
// purchase is MaxBig, and a move removes one more.
const frontierMaxUnits = MaxBig

// frontierSDs is the width, in σ, of a residual that still counts as
// consistent; beyond it a hypothesis weighs less than e⁻³² of one at zero.
const frontierSDs = 8

// unitVar is the variance of one unit's offset from its nominal weight as
// a fraction of TolG², without the fill bias: the normal scatter and the
// near-limit share, clipped at ±TolG.
var unitVar = func() float64 {
	const nearMS = (NearLimitLo*NearLimitLo + NearLimitLo + 1) / 3 // E[u²], u ~ U[lo, 1]
	return (1-NearLimitShare)*UnitSDFrac*UnitSDFrac + NearLimitShare*nearMS
}()

// biasVar is the variance of a product's fill bias as a fraction of TolG².
const biasVar = FillBiasFrac * FillBiasFrac / 3

// FrontierBasket is one basket and its posterior under the world's process.
type FrontierBasket struct {
	Taken     map[string]int
	PriceFen  int64
	Posterior float64
}

// fShelf is one shelf prepared for the frontier.
type fShelf struct {
	prods []Product
	books map[string]int
	d     float64 // measured delta
	cands []fCand
	// The watch's lift count (frontier_lifts.go): evidence when liftsKnown
	// and the shelf is not still.
	lifts             int
	liftsKnown, still bool
	liftMemo          map[liftKey]float64
}

// fCand is one removal vector of a shelf and its likelihoods.
type fCand struct {
	x        []int   // units removed per product of the shelf
	n        int     // Σx
	w        float64 // nominal grams removed
	v        float64 // variance of the removed units' weight
	base     float64 // variance of the delta: readings, drift, creep, units
	stockOK  float64 // P(the shelf's true stock allows x)
	l0       float64 // likelihood with nothing else on the shelf
	lLean    float64 // … with a lean's hysteresis
	lObj     float64 // … with a personal object left on it
	multi    float64 // Π_s 1/x_s! · m^(−n) · n!  (the SKU choice within the shelf)
	extraReq bool    // viable only with an extra event (object, lean, move)
}

// Frontier returns the posterior over baskets of session s on planogram p
// under the world's process, most probable first. s must be a one-cell
// session of p.
func (p Planogram) Frontier(s Session, sigma float64) []FrontierBasket {
	noiseVar := 2 * sigma * sigma / SamplesPerReading
	S := len(p.Shelves)
	shelves := make([]*fShelf, S)
	for i, sh := range p.Shelves {
		in := s.Shelves[i]
		f := &fShelf{prods: sh.Products, books: in.Stock, d: in.AfterG - in.BeforeG,
			lifts: in.Lifts, liftsKnown: in.LiftsKnown, still: in.Still}
		f.cands = p.candidates(f, noiseVar)
		shelves[i] = f
	}
	e := &frontierEval{p: p, shelves: shelves, noiseVar: noiseVar, post: map[string]*FrontierBasket{}, touch: newTouchLik(s.Shelves)}
	e.walk(0, make([]int, S), 0, 0)
	var out []FrontierBasket
	var z float64
	for _, b := range e.post {
		z += b.Posterior
	}
	for _, b := range e.post {
		if z > 0 {
			b.Posterior /= z
		}
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b FrontierBasket) int {
		if c := cmp.Compare(b.Posterior, a.Posterior); c != 0 {
			return c
		}
		return cmp.Compare(a.PriceFen, b.PriceFen)
	})
	return out
}

// candidates lists the removal vectors of shelf f that some process of the
// world can explain, with their likelihoods.
func (p Planogram) candidates(f *fShelf, noiseVar float64) []fCand {
	m := len(f.prods)
	var out []fCand
	x := make([]int, m)
	var rec func(k, n int)
	rec = func(k, n int) {
		if k == m {
			c := p.candidate(f, slices.Clone(x), n, noiseVar)
			if c.l0 > 0 || c.lLean > 0 || c.lObj > 0 || p.moveViable(f, c) {
				c.extraReq = c.l0 == 0
				out = append(out, c)
			}
			return
		}
		for v := 0; n+v <= frontierMaxUnits+1; v++ {
			if b, ok := f.books[f.prods[k].SKU.SKU]; ok && v > b+1 {
				break
			}
			x[k] = v
			rec(k+1, n+v)
		}
		x[k] = 0
	}
	rec(0, 0)
	return out
}

// candidate computes one removal vector's likelihoods on shelf f.
func (p Planogram) candidate(f *fShelf, x []int, n int, noiseVar float64) fCand {
	c := fCand{x: x, n: n, multi: 1}
	m := float64(len(f.prods))
	for k, q := range f.prods {
		c.w += float64(x[k]) * q.UnitG
		t2 := q.TolG * q.TolG
		c.v += float64(x[k])*unitVar*t2 + float64(x[k]*x[k])*biasVar*t2
		c.multi /= math.Gamma(float64(x[k]) + 1)
	}
	c.multi *= math.Gamma(float64(n)+1) * math.Pow(m, -float64(n))
	c.base = noiseVar + p.DriftG*p.DriftG + creepVar(c.w) + c.v
	c.stockOK = stockAllows(f, x)
	r := f.d + c.w*(1-meanCreep) // what is left to explain
	sd := math.Sqrt(c.base)
	if math.Abs(r) <= frontierSDs*sd {
		c.l0 = gauss(r, c.base)
	}
	if math.Abs(r) <= MaxLeanG+frontierSDs*sd {
		c.lLean = leanLik(r, sd)
	}
	lo, hi := objectRange()
	if r >= lo-frontierSDs*sd && r <= hi+frontierSDs*sd {
		c.lObj = objectLik(r, sd)
	}
	return c
}

// moveViable reports whether a unit moved out of shelf f (one of its own
// products) or onto it (any product of the cabinet) could explain c's
// residual.
func (p Planogram) moveViable(f *fShelf, c fCand) bool {
	r := f.d + c.w*(1-meanCreep)
	fits := func(q Product, sign float64) bool {
		v := c.base + (unitVar+biasVar)*q.TolG*q.TolG
		return math.Abs(r-sign*q.UnitG) <= frontierSDs*math.Sqrt(v)
	}
	for _, q := range f.prods {
		if fits(q, -1) {
			return true
		}
	}
	for _, sh := range p.Shelves {
		for _, q := range sh.Products {
			if fits(q, 1) {
				return true
			}
		}
	}
	return false
}

// meanCreep is the world's mean creep fraction f (uniform on [0, MaxCreepFrac]).
const meanCreep = MaxCreepFrac / 2

func creepVar(w float64) float64 { return w * w * MaxCreepFrac * MaxCreepFrac / 12 }

func gauss(r, v float64) float64 { return math.Exp(-r*r/(2*v)) / math.Sqrt(2*math.Pi*v) }

// phi is the standard normal CDF.
func phi(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// uniformConv is the density at r of U[lo, hi] plus N(0, sd²).
func uniformConv(r, lo, hi, sd float64) float64 {
	return (phi((r-lo)/sd) - phi((r-hi)/sd)) / (hi - lo)
}

// leanLik is the density of a lean's hysteresis (±U[MinLeanG, MaxLeanG])
// plus noise at residual r.
func leanLik(r, sd float64) float64 {
	return 0.5*uniformConv(r, MinLeanG, MaxLeanG, sd) + 0.5*uniformConv(r, -MaxLeanG, -MinLeanG, sd)
}

// objectLik is the density of a personal object's weight plus noise at r.
func objectLik(r, sd float64) float64 {
	var l float64
	for _, k := range objectKinds {
		l += uniformConv(r, k.lo, k.hi, sd) / float64(len(objectKinds))
	}
	return l
}

// stockAllows is the probability that the shelf's true stock holds x,
// given the books: the books are right with 1−MiscountShelfP; otherwise one
// SKU's books are one off either way.
func stockAllows(f *fShelf, x []int) float64 {
	fits := func(k, off int) bool {
		for j, q := range f.prods {
			b, ok := f.books[q.SKU.SKU]
			if !ok {
				continue
			}
			if j == k {
				b += off
			}
			if x[j] > b {
				return false
			}
		}
		return true
	}
	var pr float64
	if fits(-1, 0) {
		pr += 1 - MiscountShelfP
	}
	m := float64(len(f.prods))
	for k := range f.prods {
		for _, off := range []int{-1, 1} { // true = books − (books − true)
			if fits(k, off) {
				pr += MiscountShelfP / m / 2
			}
		}
	}
	return pr
}

// frontierEval enumerates removal vectors across shelves.
type frontierEval struct {
	p        Planogram
	shelves  []*fShelf
	noiseVar float64
	post     map[string]*FrontierBasket
	touch    touchLik
}

// touchLik is the touch detector's likelihood of the session's flags
// (touch.go): per shelf and per kind of work on it, outside a jolt.
type touchLik struct {
	p [][numWork]float64
	// jolt is the flags' likelihood under a jolt: JoltP when no shelf
	// looks still or never-risen, else 0.
	jolt float64
}

func newTouchLik(shelves []infer.Shelf) touchLik {
	t := touchLik{jolt: JoltP}
	for _, in := range shelves {
		f := touchFlags{still: in.Still, neverRose: in.NeverRose}
		if f.still || f.neverRose || in.LiftsKnown { // a jolt leaves no count either
			t.jolt = 0
		}
		small := math.Abs(in.AfterG-in.BeforeG) < TouchG
		var p [numWork]float64
		for w := range numWork {
			p[w] = touchP(f, w, small)
		}
		t.p = append(t.p, p)
	}
	return t
}

// noShelf is an index that names no shelf, for lik's second override.
const noShelf = -1

// lik is the flags' likelihood, jolt included, when every shelf that loses
// units under cs was lifted from and the others were left alone, except
// that shelf i also had work wi and shelf j work wj (noShelf: none). A
// set-down outranks a lift, which outranks a lean.
func (t touchLik) lik(cs []*fCand, i int, wi shelfWork, j int, wj shelfWork) float64 {
	l := 1.0
	for k, c := range cs {
		w := idle
		if c.n > 0 {
			w = lifted
		}
		for _, o := range [...]struct {
			at int
			w  shelfWork
		}{{i, wi}, {j, wj}} {
			if o.at == k && (w == idle || o.w == setDown) {
				w = o.w
			}
		}
		l *= t.p[k][w]
	}
	return t.jolt + (1-JoltP)*l
}

// walk picks a candidate for shelf i onward; n counts units removed so far
// and extra the shelves that need an extra event (at most two: a move's
// source and destination).
func (e *frontierEval) walk(i int, pick []int, n, extra int) {
	if i == len(e.shelves) {
		e.leaf(pick)
		return
	}
	for ci, c := range e.shelves[i].cands {
		if n+c.n > frontierMaxUnits+1 {
			continue
		}
		ex := extra
		if c.extraReq {
			ex++
		}
		if ex > 2 {
			continue
		}
		pick[i] = ci
		e.walk(i+1, pick, n+c.n, ex)
	}
}

// classP is a class's share of sessions.
func classP(c Class) float64 { return float64(classPct[c]) / 100 }

// leaf adds one combination of removal vectors: its weight under every
// class, summed into the posterior of the basket it buys.
func (e *frontierEval) leaf(pick []int) {
	S := len(e.shelves)
	cs := make([]*fCand, S)
	n, k := 0, 0
	p0 := 1.0
	for i, sh := range e.shelves {
		c := &sh.cands[pick[i]]
		cs[i] = c
		n += c.n
		if c.n > 0 {
			k++
		}
		p0 *= c.l0 * c.stockOK
	}
	var w float64
	t := e.touch
	// The lift counts when only the purchase lifted units, and with shelf
	// j's count read as if one more unit (a put-back) followed.
	lifts := e.liftsLik(cs, noShelf, -1)
	tb := t.lik(cs, noShelf, idle, noShelf, idle) * lifts
	// Purchases alone: ordinary (and put-backs, which leave one cell's
	// reading unchanged but set a unit down on a shelf), big, nothing.
	if n <= frontierMaxUnits {
		pOrd := purchaseP(Ordinary, n, k, S, cs)
		pBig := purchaseP(Big, n, k, S, cs)
		var back float64
		for j := range cs {
			back += t.lik(cs, j, setDown, noShelf, idle) / float64(S) * e.putBackLifts(cs, j)
		}
		w += p0 * ((classP(Ordinary)*pOrd+classP(Big)*pBig)*tb + classP(PutBack)*pOrd*back)
		if n == 0 {
			w += p0 * classP(Nothing) * tb
		}
		// An ordinary purchase plus a lean or an object on one shelf.
		if pOrd > 0 {
			var lean, obj float64
			for j, c := range cs {
				rest := 1.0
				for i, o := range cs {
					if i != j {
						rest *= o.l0 * o.stockOK
					}
				}
				lean += rest * c.lLean * c.stockOK * t.lik(cs, j, leaned, noShelf, idle) * lifts
				obj += rest * c.lObj * c.stockOK * t.lik(cs, j, setDown, noShelf, idle) * lifts
			}
			w += pOrd / float64(S) * (classP(Lean)*lean + classP(Object)*obj)
		}
	}
	// An ordinary purchase plus one unit moved from shelf a to shelf b:
	// a loses x_a and the moved unit, b gains it and loses x_b.
	w += e.moves(cs, n, k)
	if w <= 0 {
		return
	}
	taken := map[string]int{}
	var fen int64
	for i, c := range cs {
		for j, q := range e.shelves[i].prods {
			if c.x[j] > 0 {
				taken[q.SKU.SKU] += c.x[j]
				fen += int64(c.x[j]) * q.PriceFen
			}
		}
	}
	key := basketKey(taken)
	b := e.post[key]
	if b == nil {
		b = &FrontierBasket{Taken: taken, PriceFen: fen}
		if len(taken) == 0 {
			b.Taken = nil
		}
		e.post[key] = b
	}
	b.Posterior += w
}

// moves is the weight of the combination cs under the move class.
func (e *frontierEval) moves(cs []*fCand, n, k int) float64 {
	S := len(e.shelves)
	if S < 2 || n > frontierMaxUnits {
		return 0
	}
	pOrd := purchaseP(Ordinary, n, k, S, cs)
	if pOrd == 0 {
		return 0
	}
	var total float64
	for a, ca := range cs {
		sa := e.shelves[a]
		left := 0
		for j, q := range sa.prods {
			left += max(sa.books[q.SKU.SKU]-ca.x[j], 0)
		}
		if left == 0 {
			continue
		}
		for j, q := range sa.prods {
			units := max(sa.books[q.SKU.SKU]-ca.x[j], 0)
			if units == 0 {
				continue
			}
			pUnit := float64(units) / float64(left)
			t2 := q.TolG * q.TolG
			vu := unitVar*t2 + biasVar*t2 // the moved unit's weight variance
			for b, cb := range cs {
				if b == a {
					continue
				}
				sb := e.shelves[b]
				rest := 1.0
				for i, o := range cs {
					if i != a && i != b {
						rest *= o.l0 * o.stockOK
					}
				}
				if rest == 0 {
					continue
				}
				// Residuals once the nominal moved unit is accounted for.
				wa := ca.w + q.UnitG
				ra := sa.d + wa*(1-meanCreep)
				rb := sb.d + cb.w*(1-meanCreep) - q.UnitG*(1-meanCreep)
				va := e.noiseVar + e.p.DriftG*e.p.DriftG + creepVar(wa) + ca.v + vu
				vb := e.noiseVar + e.p.DriftG*e.p.DriftG + creepVar(cb.w-q.UnitG) + cb.v + vu
				l := bivariate(ra, rb, va, vb, -vu)
				if l == 0 {
					continue
				}
				xa := slices.Clone(ca.x)
				xa[j]++
				touch := e.touch.lik(cs, a, lifted, b, setDown) * e.liftsLik(cs, a, j)
				total += rest * stockAllows(sa, xa) * cb.stockOK * l * touch *
					pUnit / float64(S) / float64(S-1) * pOrd
			}
		}
	}
	return classP(Move) * total
}

// liftsLik is the lift counts' likelihood when every shelf lifted what
// cs buys from it and shelf a (noShelf: none) also its product j after.
func (e *frontierEval) liftsLik(cs []*fCand, a, j int) float64 {
	l := 1.0
	for i, c := range cs {
		tail := -1
		if i == a {
			tail = j
		}
		l *= e.shelves[i].liftsLik(c.x, tail)
		if l == 0 {
			return 0
		}
	}
	return l
}

// putBackLifts is the lift counts' likelihood when shelf j also had a
// unit lifted and put back, of its products in proportion to the units
// the books leave on it.
func (e *frontierEval) putBackLifts(cs []*fCand, j int) float64 {
	sj := e.shelves[j]
	left := 0
	for k, q := range sj.prods {
		left += max(sj.books[q.SKU.SKU]-cs[j].x[k], 0)
	}
	if left == 0 {
		return 0
	}
	var l float64
	for k, q := range sj.prods {
		if u := max(sj.books[q.SKU.SKU]-cs[j].x[k], 0); u > 0 {
			l += float64(u) / float64(left) * e.liftsLik(cs, j, k)
		}
	}
	return l
}

// bivariate is the density at (x, y) of a zero-mean bivariate normal with
// variances vx, vy and covariance c.
func bivariate(x, y, vx, vy, c float64) float64 {
	det := vx*vy - c*c
	if det <= 0 {
		return 0
	}
	q := (vy*x*x - 2*c*x*y + vx*y*y) / det
	if q > 2*frontierSDs*frontierSDs {
		return 0
	}
	return math.Exp(-q/2) / (2 * math.Pi * math.Sqrt(det))
}

// purchaseP is the probability that a purchase of class c (Ordinary or
// Big) removes exactly the vectors cs: n units from the k shelves with
// units, chosen as the world's shopper chooses them (a random set of k
// shelves, one unit from each, the rest spread evenly over them, each unit
// a random SKU of its shelf).
func purchaseP(c Class, n, k, S int, cs []*fCand) float64 {
	pn := purchaseSizeP(c, n, k)
	if pn == 0 || k == 0 || k > S {
		return 0
	}
	// The set of k shelves, uniform.
	p := pn / binom(S, k)
	// The n−k units beyond one per shelf, multinomial over the k shelves.
	p *= math.Gamma(float64(n-k)+1) * math.Pow(float64(k), -float64(n-k))
	for _, c := range cs {
		if c.n == 0 {
			continue
		}
		p /= math.Gamma(float64(c.n - 1 + 1))
		// c.multi = n_j!/Πx! · m^−n_j: the SKUs within the shelf.
		p *= c.multi
	}
	return p
}

// purchaseSizeP is P(n units from k shelves) for a purchase of class c.
func purchaseSizeP(c Class, n, k int) float64 {
	switch c {
	case Ordinary:
		if n < 1 || n > len(ordinaryUnitWeights) {
			return 0
		}
		var sum float64
		for _, w := range ordinaryUnitWeights {
			sum += w
		}
		pn := ordinaryUnitWeights[n-1] / sum
		switch {
		case n == 1 && k == 1:
			return pn
		case n > 1 && k == 1:
			return pn * (1 - TwoShelfPct/100.0)
		case n > 1 && k == 2:
			return pn * TwoShelfPct / 100
		}
		return 0
	case Big:
		if n < MinBig || n > MaxBig || k < 1 || k > MaxBigShelves {
			return 0
		}
		return 1 / float64(MaxBig-MinBig+1) / MaxBigShelves
	}
	return 0
}

func binom(n, k int) float64 {
	r := 1.0
	for i := range k {
		r = r * float64(n-i) / float64(i+1)
	}
	return r
}

func basketKey(taken map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(taken)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(string(rune('0' + taken[k])))
		b.WriteByte(';')
	}
	return b.String()
}

// FrontierDecide applies a decision rule to a frontier posterior: the most
// probable basket is exact when its posterior is at least conf and, unless
// revenueFirst, no cheaper basket holds delta or more; otherwise the
// cheapest basket holding delta or more is charged, flagged. The answer is
// an infer.Result so that it is scored like one.
func FrontierDecide(post []FrontierBasket, conf, delta float64, revenueFirst bool) infer.Result {
	if len(post) == 0 {
		return infer.Result{Status: infer.StatusAmbiguous}
	}
	best := post[0]
	charged := best
	exact := best.Posterior >= conf
	for _, b := range post {
		if b.Posterior >= delta && b.PriceFen < charged.PriceFen {
			if !revenueFirst {
				exact = false
			}
			if !exact {
				charged = b
			}
		}
	}
	r := infer.Result{Status: infer.StatusAmbiguous, PriceFen: charged.PriceFen, Posterior: charged.Posterior}
	if exact {
		charged = best
		r.Status, r.PriceFen, r.Posterior = infer.StatusExact, best.PriceFen, best.Posterior
		if len(best.Taken) == 0 {
			r.Status = infer.StatusEmpty
		}
	}
	for _, k := range slices.Sorted(maps.Keys(charged.Taken)) {
		r.Lines = append(r.Lines, infer.Line{SKU: k, Qty: charged.Taken[k]})
	}
	for _, b := range post {
		if len(r.Alternatives) == 3 {
			break
		}
		if basketKey(b.Taken) == basketKey(charged.Taken) {
			continue
		}
		a := infer.Alternative{PriceFen: b.PriceFen, Posterior: b.Posterior}
		for _, k := range slices.Sorted(maps.Keys(b.Taken)) {
			a.Lines = append(a.Lines, infer.Line{SKU: k, Qty: b.Taken[k]})
		}
		r.Alternatives = append(r.Alternatives, a)
	}
	return r
}
