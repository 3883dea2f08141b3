// Package infer turns the weight changes of a cabinet's shelves into the
// basket a shopper took: which certified products, how many, from which
// shelf, and how sure the evidence is. It carries the product's
// no-overcharge rule: the basket charged is the cheapest one the evidence
// cannot rule out (given the scales' noise within K σ and units within
// their tolerance; the caller prices anything that may not be sold at 0).
//
// infer owns the weight model (unit weights with hard tolerances, Gaussian
// scale noise, creep), the search over candidate baskets, the choice between
// them and the planogram lint that tells in advance which products on a shelf
// cannot be told apart.
//
// It is pure: no I/O, no clock, no logging, no randomness, standard library
// only. It must not import anything from the repository (in particular not
// telemetry, payment, hal or the simulator); callers translate catalog and
// planogram entries into SKU and Shelf values and turn a Result into a sale
// and its alarms.
package infer

import (
	"math"
	"slices"
	"sort"
)

// SKU is one product as the scales see it.
type SKU struct {
	// SKU is the catalog identifier, e.g. "NM-0001".
	SKU string
	// UnitG is the nominal weight of one unit in grams.
	UnitG float64
	// TolG is the hard spec limit: every unit weighs within UnitG±TolG.
	TolG float64
	// PriceFen is the unit price in fen.
	PriceFen int64
	// Lane is where the SKU's lane sits along a shelf carried by two load
	// cells: 0 over the left cell, 1 over the right, 0.5 in the middle.
	// Only read for a TwoCell shelf's own SKUs.
	Lane float64
}

// Shelf is one shelf's evidence for a session.
type Shelf struct {
	// Shelf is the shelf number from the planogram.
	Shelf int
	// SKUs are the products the planogram puts on this shelf; only these
	// can be removed from it.
	SKUs []SKU
	// BeforeG and AfterG are the settled readings before the door opened
	// and after it closed.
	BeforeG, AfterG float64
	// NoiseG is σ of the measured delta: the scale noise of the two settled
	// averages combined. On a TwoCell shelf it is σ of the total's delta
	// (each cell's delta then has σ NoiseG/√2).
	NoiseG float64
	// Stock is the units of each SKU on the shelf before the session as the
	// cabinet's books say (restock counts less sales). A SKU missing from it,
	// or a nil map, is unknown: its removals are not bounded by stock.
	Stock map[string]int
	// TwoCell marks a shelf carried by a left and a right load cell.
	// BeforeG and AfterG are then the sums of both cells, and RightBeforeG
	// and RightAfterG the right cell's readings; the SKUs' Lane positions
	// turn the shift of the centre of mass into evidence.
	TwoCell                   bool
	RightBeforeG, RightAfterG float64
}

// Options are the model's parameters: the weight model, the prior over
// what shoppers do, and the decision rule. The zero value (or a nil
// *Options) means the defaults; a field left at zero takes its default. A
// probability set below zero switches its hypothesis off.
type Options struct {
	// Weight model.

	// K is the σ multiplier of the hard consistency test: a hypothesis whose
	// residual exceeds K·σ plus the units' summed tolerance (and creep) is
	// ruled out whatever its prior (default 4.5).
	K float64
	// CreepFrac is load-cell creep as a fraction of |Δ|, both in the hard
	// test and as a σ in the likelihood (default 0.001).
	CreepFrac float64
	// MinNoiseG is a floor on NoiseG (default 0.3).
	MinNoiseG float64
	// UnitSpread is σ of one unit's weight as a fraction of its TolG
	// (default 0.5: fill and pack scatter fills the tolerance band, and
	// the Gaussian must not be surer than the packer).
	UnitSpread float64
	// DriftG is σ of the zero drift of a load cell between the reading
	// before the door opened and the one after it closed (temperature,
	// a door left open in a fridge; default 0.5).
	DriftG float64

	// Prior over what a shopper does.

	// TouchP is the chance that a shopper takes from a given shelf
	// (default 0.3).
	TouchP float64
	// TakeMean is the mean number of units taken from a shelf that is
	// touched; the count is geometric, so 5 × 100 g is far less likely than
	// 1 × 500 g (default 1.6).
	TakeMean float64
	// MoveP is the chance of one unit moved from one shelf onto another in
	// a session; each further moved unit costs the same factor again
	// (default 0.02).
	MoveP float64
	// ObjectP is the chance that a shelf ends the session with an unknown
	// object on it (keys, a phone, a bottle; default 0.005); its weight has
	// a log-uniform prior on [ObjectMinG, ObjectMaxG].
	ObjectP float64
	// ObjectGoneP is the chance that an unknown object that was on a
	// shelf leaves with the shopper (default 0.0002).
	ObjectGoneP float64
	// ObjectMinG and ObjectMaxG bound an unknown object's weight (defaults
	// 3 and 5000).
	ObjectMinG, ObjectMaxG float64
	// MiscountP is the chance, per unit, that a shelf holds a unit more than
	// its Stock says (default 0.002). Removals beyond Stock are scored with
	// it; when the best explanation needs them the result reports a
	// StockMismatch and the evidence is judged without the bound.
	MiscountP float64

	// Search caps.

	// MaxItems caps units removed from one shelf when its stock is unknown
	// (default 30).
	MaxItems int
	// MaxAdds caps units moved onto one shelf (default 2).
	MaxAdds int

	// Decision.

	// Confidence is c: a basket is exact only if its posterior, counting
	// only hypotheses without a move or an unknown object, is at least c
	// (default 0.99).
	Confidence float64
	// CheaperBound is δ: in the shopper-safe default a basket is exact only
	// if the baskets cheaper than it hold less than δ of the posterior
	// together; an ambiguous sale charges the cheapest basket whose
	// posterior is at least δ (default 1e-4).
	CheaperBound float64
	// RevenueFirst drops the CheaperBound condition from exactness: an
	// operator's documented choice to charge more sales exactly at the
	// price of a few overcharges (see README, Benchmarks).
	RevenueFirst bool
	// Alternatives is how many other baskets Result.Alternatives carries
	// (default 3).
	Alternatives int
}

// Defaults of Options.
const (
	DefaultK            = 4.5
	DefaultCreepFrac    = 0.001
	DefaultMinNoiseG    = 0.3
	DefaultUnitSpread   = 0.5
	DefaultDriftG       = 0.5
	DefaultTouchP       = 0.3
	DefaultTakeMean     = 1.6
	DefaultMoveP        = 0.02
	DefaultObjectP      = 0.005
	DefaultObjectGoneP  = 0.0002
	DefaultObjectMinG   = 3
	DefaultObjectMaxG   = 5000
	DefaultMiscountP    = 0.002
	DefaultMaxItems     = 30
	DefaultMaxAdds      = 2
	DefaultConfidence   = 0.99
	DefaultCheaperBound = 1e-4
	DefaultAlternatives = 3
)

func (o *Options) resolved() Options {
	r := Options{K: DefaultK, CreepFrac: DefaultCreepFrac, MinNoiseG: DefaultMinNoiseG,
		UnitSpread: DefaultUnitSpread, DriftG: DefaultDriftG,
		TouchP: DefaultTouchP, TakeMean: DefaultTakeMean, MoveP: DefaultMoveP,
		ObjectP: DefaultObjectP, ObjectGoneP: DefaultObjectGoneP,
		ObjectMinG: DefaultObjectMinG, ObjectMaxG: DefaultObjectMaxG, MiscountP: DefaultMiscountP,
		MaxItems: DefaultMaxItems, MaxAdds: DefaultMaxAdds,
		Confidence: DefaultConfidence, CheaperBound: DefaultCheaperBound, Alternatives: DefaultAlternatives}
	if o == nil {
		return r
	}
	set := func(dst *float64, v float64) {
		if v != 0 && !math.IsNaN(v) {
			*dst = v
		}
	}
	set(&r.K, o.K)
	set(&r.CreepFrac, o.CreepFrac)
	set(&r.MinNoiseG, o.MinNoiseG)
	set(&r.UnitSpread, o.UnitSpread)
	set(&r.DriftG, o.DriftG)
	set(&r.TouchP, o.TouchP)
	set(&r.TakeMean, o.TakeMean)
	set(&r.MoveP, o.MoveP)
	set(&r.ObjectP, o.ObjectP)
	set(&r.ObjectGoneP, o.ObjectGoneP)
	set(&r.ObjectMinG, o.ObjectMinG)
	set(&r.ObjectMaxG, o.ObjectMaxG)
	set(&r.MiscountP, o.MiscountP)
	set(&r.Confidence, o.Confidence)
	set(&r.CheaperBound, o.CheaperBound)
	if o.MaxItems > 0 {
		r.MaxItems = o.MaxItems
	}
	if o.MaxAdds > 0 {
		r.MaxAdds = o.MaxAdds
	}
	if o.Alternatives > 0 {
		r.Alternatives = o.Alternatives
	}
	r.RevenueFirst = o.RevenueFirst
	return r
}

// Line is one charged line: Qty > 0 units of SKU taken from Shelf.
type Line struct {
	Shelf int
	SKU   string
	Qty   int
}

// Status is the verdict on a basket; the values match the sale statuses of
// the platform contract.
type Status string

// Status values.
const (
	// StatusExact: exactly one basket is consistent with the evidence.
	StatusExact Status = "exact"
	// StatusAmbiguous: several baskets are consistent, or a shelf's change
	// matches nothing; the cheapest consistent basket is charged and the
	// sale is flagged for review.
	StatusAmbiguous Status = "ambiguous"
	// StatusEmpty: the evidence has one reading and nothing is charged.
	StatusEmpty Status = "empty"
)

// ShelfResult is the chosen explanation of one shelf.
type ShelfResult struct {
	Shelf int
	// DeltaG is AfterG − BeforeG.
	DeltaG float64
	// ResidualG is DeltaG minus the chosen explanation's nominal change
	// (DeltaG itself when the shelf is unexplained).
	ResidualG float64
	// Removed and Added are the units of the chosen explanation (nil when
	// none). Added units may be of any cabinet SKU.
	Removed, Added map[string]int
	// Explained is false when no candidate fits the shelf's change.
	Explained bool
	// Candidates counts the shelf's explanations that take part in some
	// consistent basket under the model's rules (pure first, mixed only
	// when no pure one fits); move rescues are not counted.
	Candidates int
}

// Result is the inferred basket of one session.
type Result struct {
	Status Status
	// Lines are the charged units, sorted by shelf then SKU.
	Lines []Line
	// Shelves are the per-shelf explanations, sorted by shelf.
	Shelves []ShelfResult
	// Unexplained lists the shelves whose change matches nothing; the
	// firmware raises unknown_object for them. Nothing is charged for them.
	Unexplained []int
	// Returned counts, per SKU, units that appeared on a shelf in the chosen
	// basket: moved from another shelf or put back. They are never charged
	// (nil when none).
	Returned map[string]int
	// MarginLogL is the log-likelihood of the charged basket minus that of
	// the most likely other consistent basket: +Inf when there is no other,
	// negative when a less likely but cheaper basket was charged, 0 when the
	// search was capped (see Infer).
	MarginLogL float64
	// PriceFen is the charged basket's price from the SKUs' PriceFen.
	PriceFen int64
	// Posterior is the charged basket's posterior probability.
	Posterior float64
	// Alternatives are the most probable other baskets, most probable
	// first, for a reviewer to settle a flagged sale (at most
	// Options.Alternatives; nil when there is none).
	Alternatives []Alternative
	// StockMismatch lists the shelves and SKUs where the most probable
	// explanation removes more units than Stock says were there; the
	// evidence was then judged without the stock bound.
	StockMismatch []StockMismatch
}

// Alternative is a basket the evidence leaves possible besides the charged one.
type Alternative struct {
	// Lines are the units this basket charges, sorted by shelf then SKU.
	Lines []Line
	// PriceFen is its price from the SKUs' PriceFen.
	PriceFen int64
	// Posterior is its posterior probability.
	Posterior float64
	// Moved and Object report that its most probable explanation needs a
	// unit moved between shelves or an unknown object.
	Moved, Object bool
}

// StockMismatch is a shelf's SKU whose removals exceed its known stock.
type StockMismatch struct {
	Shelf   int
	SKU     string
	Stock   int
	Removed int
}

// sku is a SKU prepared for the search.
type sku struct {
	name   string
	w, tol float64
	tol2   float64 // (TolG/3)², the variance one unit adds to the likelihood
	g      int     // index in engine.names
}

// kc is a count of one SKU, by global index.
type kc struct{ g, n int }

// cand is one consistent explanation of one shelf.
type cand struct {
	rem, add []kc // sorted by g
	units    int
	residG   float64
	logL     float64
	// moved marks a mixed explanation: its added units stand for units
	// moved from other shelves, so a basket using it must remove at least as
	// many units of each added SKU elsewhere.
	moved bool
	// rescue marks a mixed explanation from the move rescue round, used
	// only to lower the charge (see Infer).
	rescue bool
}

// Caps on the search. They bound time and memory on a cabinet board; when one
// is hit the result falls back to a floor basket that is provably no dearer
// than any consistent basket (see floorBasket), so a cap can undercharge but
// never overcharge.
const (
	// maxShelfCands caps stored explanations per shelf.
	maxShelfCands = 4096
	// maxCombos caps the cartesian product enumerated for ranking.
	maxCombos = 1 << 16
	// maxRescueNodes caps the branch-and-bound over move rescues.
	maxRescueNodes = 1 << 18
)

// The move rescue's limits (see Infer). Measured on the demo cabinet
// (simulator/demo, 200,000 sessions, 5 % with a moved unit): without the
// rescue about 1 session in 1,000 was overcharged, all of them sessions with
// a move; the rescue without a gate left no overcharge but gave away 6–7 %
// of revenue to far-fetched "moves"; with the gate below 1 overcharge in
// 200,000 remained (a 5σ noise reading, outside the model) at a cost of
// about 1.5 % of revenue.
const (
	// rescueMaxMoves is how many units a rescue may assume were moved from
	// one shelf onto another in one session.
	rescueMaxMoves = 1
	// rescueGateLogL: a rescue basket may be at most this much less likely
	// (log-likelihood, ≈ ln 10⁴) than the most likely model basket. The
	// likelihood's (TolG/3)² per unit understates the spread of units that
	// sit anywhere within tolerance, so the gate is wide on purpose.
	rescueGateLogL = 9.2
)

type engine struct {
	opt     Options
	names   []string // global index → SKU
	gidx    map[string]int
	price   []int64
	addable []sku // every cabinet and shelf SKU, in global order
}

type shelfWork struct {
	in          Shelf
	delta       float64
	sigma, base float64
	own         []sku
	occam       []cand
	rescue      []cand
	mixedRound  bool // occam came from the mixed round
	unexplained bool
	overflow    bool
	minRem      []int // per global SKU, over occam ∪ rescue
	maxAdd      []int
}

// Infer explains the shelves' weight changes and chooses the basket to
// charge. cabinet lists every SKU that may be added to a shelf (items moved
// or put back); shelf SKUs are added to it when missing. Shelves are handled
// in shelf-number order whatever the caller's order.
//
// The model, per shelf (Δ = AfterG − BeforeG, σ = max(NoiseG, MinNoiseG)):
// a candidate removes rᵢ ≥ 0 units of the shelf's own SKUs and adds aⱼ ≥ 0
// units of other SKUs; it is consistent iff
//
//	|Δ − (Σaⱼwⱼ − Σrᵢwᵢ)| ≤ Σ(rᵢ+aⱼ)·TolG + K·σ + CreepFrac·|Δ|
//
// and is ranked by a Gaussian likelihood of variance σ² + Σunits·(TolG/3)².
// Pure explanations come first: the empty one; removals only (at most
// MaxItems units) when Δ < 0; additions only of any cabinet SKU (at most
// MaxAdds per SKU, 2×MaxAdds in all) when Δ > 0. Only when no pure one fits
// are mixed ones tried: removals plus 1..MaxAdds units of SKUs stocked on
// other shelves, which stand for units moved within the session and so must
// be matched by removals of those SKUs on other shelves in the same basket.
// A shelf with no consistent candidate (or whose mixed candidates match no
// removal) is unexplained: it charges nothing and is listed in Unexplained.
//
// Across shelves every matched combination of per-shelf candidates is a
// basket; per SKU, charged = max(0, removed − added), and added units are
// Returned. Charged units are attributed to the shelves they were removed
// from, lowest shelf first. One basket gives StatusExact (StatusEmpty when it
// charges nothing); several, or an unexplained shelf, give StatusAmbiguous,
// and the cheapest basket is charged (ties: the most likely, then the first
// in a deterministic order).
//
// Move rescue: the pure-first rule alone breaks the no-overcharge guarantee
// when a shopper takes from a shelf and also puts there a unit from another
// shelf, and the net change happens to fit a pure explanation of dearer
// goods. So each explained shelf also gets rescue candidates (its own
// removals plus one unit from another shelf). A basket that uses them is
// charged instead, as ambiguous, if it is matched, assumes at most one moved
// unit, is strictly cheaper than the model's choice and is at most 9.2
// log-likelihood units less likely than the model's most likely basket.
// Rescues never make a charge dearer and do not count towards exactness.
//
// Caps: if a shelf has more than 4,096 candidates, the baskets number more
// than 65,536, or the rescue search exceeds 262,144 nodes, Infer charges
// instead the per-SKU floor max(0, Σ fewest removals − Σ most additions)
// over all candidates of pure shelves, which no consistent basket undercuts,
// with StatusAmbiguous and MarginLogL 0.
func Infer(shelves []Shelf, cabinet []SKU, opt *Options) Result {
	o := opt.resolved()
	e := newEngine(shelves, cabinet, o)

	work := make([]*shelfWork, len(shelves))
	for i, s := range shelves {
		work[i] = &shelfWork{in: s}
	}
	// Stable sort so that the output, and every tie-break, follows shelf
	// numbers rather than the caller's order.
	sort.SliceStable(work, func(i, j int) bool { return work[i].in.Shelf < work[j].in.Shelf })
	for i, w := range work {
		w.own = e.prepare(w.in.SKUs)
		var elsewhere []sku
		seen := map[int]bool{}
		for _, s := range w.own {
			seen[s.g] = true // an own SKU moved here just nets against removals
		}
		for j, other := range work {
			if j == i {
				continue
			}
			for _, s := range e.prepare(other.in.SKUs) {
				if !seen[s.g] {
					seen[s.g] = true
					elsewhere = append(elsewhere, e.addable[s.g])
				}
			}
		}
		slices.SortFunc(elsewhere, func(a, b sku) int { return a.g - b.g })
		e.explain(w, elsewhere)
	}
	return e.choose(work)
}

func newEngine(shelves []Shelf, cabinet []SKU, o Options) *engine {
	e := &engine{opt: o, gidx: map[string]int{}}
	add := func(s SKU) {
		if _, ok := e.gidx[s.SKU]; ok {
			return
		}
		g := len(e.names)
		e.gidx[s.SKU] = g
		e.names = append(e.names, s.SKU)
		e.price = append(e.price, s.PriceFen)
		e.addable = append(e.addable, mkSKU(s, g))
	}
	for _, s := range cabinet {
		add(s)
	}
	for _, sh := range shelves {
		for _, s := range sh.SKUs {
			add(s)
		}
	}
	return e
}

func mkSKU(s SKU, g int) sku {
	tol := math.Max(s.TolG, 0)
	return sku{name: s.SKU, w: s.UnitG, tol: tol, tol2: (tol / 3) * (tol / 3), g: g}
}

// valid reports whether a SKU can be counted by weight at all.
func (s sku) valid() bool { return s.w > 0 && !math.IsInf(s.w, 0) && !math.IsNaN(s.w+s.tol) }

// prepare dedupes a shelf's SKUs and drops those that cannot be weighed.
// The shelf's own weights are used for removals (the planogram entry is what
// is on that shelf); the cabinet's for additions.
func (e *engine) prepare(list []SKU) []sku {
	var out []sku
	seen := map[int]bool{}
	for _, s := range list {
		g := e.gidx[s.SKU]
		if seen[g] {
			continue
		}
		seen[g] = true
		if k := mkSKU(s, g); k.valid() {
			out = append(out, k)
		}
	}
	return out
}

func (e *engine) explain(w *shelfWork, elsewhere []sku) {
	o := e.opt
	w.delta = w.in.AfterG - w.in.BeforeG
	w.sigma = math.Max(w.in.NoiseG, o.MinNoiseG)
	if math.IsNaN(w.sigma) {
		w.sigma = o.MinNoiseG
	}
	w.base = o.K*w.sigma + o.CreepFrac*math.Abs(w.delta)
	n := len(e.names)
	w.minRem = make([]int, n)
	for i := range w.minRem {
		w.minRem[i] = math.MaxInt
	}
	w.maxAdd = make([]int, n)
	if math.IsNaN(w.delta) || math.IsInf(w.delta, 0) {
		return // a broken reading explains nothing
	}

	addable := make([]sku, 0, len(e.addable))
	for _, s := range e.addable {
		if s.valid() {
			addable = append(addable, s)
		}
	}

	// Pure explanations.
	if math.Abs(w.delta) <= w.base {
		e.keep(w, &w.occam, cand{}, 0, 0)
	}
	switch {
	case w.delta < 0:
		e.search(w.own, -w.delta, w.base, o.MaxItems, o.MaxItems, func(cnt []int, m, tol2 float64) {
			e.keep(w, &w.occam, cand{rem: toKC(w.own, cnt)}, -m, tol2)
		})
	case w.delta > 0:
		e.search(addable, w.delta, w.base, o.MaxAdds, 2*o.MaxAdds, func(cnt []int, m, tol2 float64) {
			e.keep(w, &w.occam, cand{add: toKC(addable, cnt)}, m, tol2)
		})
	}
	if len(w.occam) == 0 {
		// Mixed explanations add only SKUs stocked on other shelves: an
		// addition there must be a unit moved within this session (see
		// tally.matched). Allowing any cabinet SKU unmatched would let a
		// large removal plus a few additions absorb any foreign object
		// within the summed tolerances.
		w.mixedRound = true
		e.mixed(w, elsewhere, o.MaxAdds, &w.occam, false)
		// The rescue round would find a subset of these again.
		return
	}
	e.mixed(w, elsewhere, min(o.MaxAdds, rescueMaxMoves), &w.rescue, true)
}

// mixed enumerates explanations with at least one removal of an own SKU and
// 1..maxAdds additions drawn from adds.
func (e *engine) mixed(w *shelfWork, adds []sku, maxAdds int, into *[]cand, rescue bool) {
	o := e.opt
	if len(adds) == 0 || len(w.own) == 0 {
		return
	}
	cnt := make([]int, len(adds))
	var walk func(i, units int, wsum, tsum, t2sum float64)
	walk = func(i, units int, wsum, tsum, t2sum float64) {
		if i == len(adds) {
			if units == 0 {
				return
			}
			added := toKC(adds, cnt)
			// Removals must make up Σaw − Δ, with the additions' tolerance
			// widening the window.
			target := wsum - w.delta
			e.search(w.own, target, w.base+tsum, o.MaxItems, o.MaxItems, func(rc []int, m, tol2 float64) {
				rem := toKC(w.own, rc)
				if overlaps(rem, added) {
					return // removing and adding one SKU on one shelf is the same as neither
				}
				e.keep(w, into, cand{rem: rem, add: added, moved: true, rescue: rescue}, wsum-m, t2sum+tol2)
			})
			return
		}
		for n := 0; n <= maxAdds-units; n++ {
			cnt[i] = n
			walk(i+1, units+n, wsum+float64(n)*adds[i].w, tsum+float64(n)*adds[i].tol, t2sum+float64(n)*adds[i].tol2)
		}
		cnt[i] = 0
	}
	walk(0, 0, 0, 0, 0)
}

// keep records a consistent explanation with nominal change pred and summed
// per-unit variance tol2, updating the shelf's floors even past the cap.
func (e *engine) keep(w *shelfWork, into *[]cand, c cand, pred, tol2 float64) {
	for _, r := range c.rem {
		c.units += r.n
	}
	for _, a := range c.add {
		c.units += a.n
	}
	c.residG = w.delta - pred
	v := w.sigma*w.sigma + tol2
	c.logL = -0.5*c.residG*c.residG/v - 0.5*math.Log(2*math.Pi*v)

	// Floors: the fewest units of each SKU this shelf can have lost and the
	// most it can have gained, over every explanation.
	removed := make(map[int]int, len(c.rem))
	for _, r := range c.rem {
		removed[r.g] = r.n
	}
	for g := range w.minRem {
		w.minRem[g] = min(w.minRem[g], removed[g])
	}
	for _, a := range c.add {
		w.maxAdd[a.g] = max(w.maxAdd[a.g], a.n)
	}
	if len(w.occam)+len(w.rescue) >= maxShelfCands {
		w.overflow = true
		return
	}
	*into = append(*into, c)
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

// search enumerates count vectors n over items (nᵢ ≤ perItem, 1 ≤ Σn ≤
// maxUnits) whose weight M = Σnᵢwᵢ satisfies |M − target| ≤ slack + Σnᵢ·tolᵢ,
// and calls fn with the counts, M and Σnᵢ·(tolᵢ/3)². The bounds on both
// sides prune by weight, so a shelf of a few SKUs costs little even when
// MaxItems is large.
func (e *engine) search(items []sku, target, slack float64, perItem, maxUnits int, fn func(cnt []int, m, tol2 float64)) {
	if len(items) == 0 || maxUnits <= 0 {
		return
	}
	// Heaviest first: the bounds bite soonest.
	order := slices.Clone(items)
	slices.SortStableFunc(order, func(a, b sku) int {
		switch {
		case a.w > b.w:
			return -1
		case a.w < b.w:
			return 1
		}
		return a.g - b.g
	})
	lim := min(perItem, maxUnits)
	k := len(order)
	// posSuf[i]: the most weight (plus tolerance) items i.. can still add;
	// negSuf[i]: how far items i.. can pull M−Σtol down (only SKUs lighter
	// than their own tolerance can).
	posSuf := make([]float64, k+1)
	negSuf := make([]float64, k+1)
	for i := k - 1; i >= 0; i-- {
		posSuf[i] = posSuf[i+1] + float64(lim)*(order[i].w+order[i].tol)
		negSuf[i] = negSuf[i+1] + float64(lim)*math.Min(0, order[i].w-order[i].tol)
	}
	cnt := make([]int, k)
	out := make([]int, len(items))
	pos := make(map[int]int, len(items))
	for i, it := range items {
		pos[it.g] = i
	}
	var dfs func(i, units int, m, tsum, t2 float64)
	dfs = func(i, units int, m, tsum, t2 float64) {
		if i == k {
			if units > 0 && math.Abs(m-target) <= slack+tsum {
				for j := range out {
					out[j] = 0
				}
				for j, n := range cnt {
					out[pos[order[j].g]] = n
				}
				fn(out, m, t2)
			}
			return
		}
		if m+tsum+posSuf[i] < target-slack {
			return
		}
		if m-tsum+negSuf[i] > target+slack {
			return
		}
		it := order[i]
		for n := 0; n <= lim && units+n <= maxUnits; n++ {
			nf := float64(n)
			mm, tt := m+nf*it.w, tsum+nf*it.tol
			if mm-tt+negSuf[i+1] > target+slack {
				if it.w > it.tol {
					break // heavier from here on
				}
				continue
			}
			cnt[i] = n
			dfs(i+1, units+n, mm, tt, t2+nf*it.tol2)
		}
		cnt[i] = 0
	}
	dfs(0, 0, 0, 0, 0)
}
