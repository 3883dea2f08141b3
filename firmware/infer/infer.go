// Package infer turns the weight changes of a cabinet's shelves into the
// basket a shopper took: which certified products, how many, from which
// shelf, and how sure the evidence is. It ranks candidate baskets by
// posterior probability (a weight likelihood times a prior over what
// shoppers do), reports a sale exact only when the evidence is sure, and
// otherwise charges the cheapest basket the evidence leaves plausible: the
// shopper is never charged more than the weights support. docs/inference.md
// explains the model, its parameters and how they were measured.
//
// infer owns the weight model, the search over hypotheses, the decision,
// restock counting (restock.go) and the planogram lint (lint.go: the
// within-shelf check and Predict, the predicted exact rate of a planogram).
//
// It is pure: no I/O, no clock, no logging; Predict's randomness is seeded
// by its caller. Standard library only. It must not import anything from
// the repository (in particular not telemetry, payment, hal or the
// simulator); callers translate catalog and planogram entries into SKU and
// Shelf values and turn a Result into a sale and its alarms.
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
	// Still reports that the shelf was watched throughout the session and
	// its weight never left the before reading by the firmware's touch
	// threshold (a sustained change, not a passing jolt): no unit was
	// lifted from it or set down on it, unless in one quick two-handed swap
	// (see Options.StillMissP). False means touched, or not known (a restart
	// in the session): no evidence either way.
	Still bool
	// NeverRose reports that the shelf was watched throughout the session
	// and its weight never rose by the touch threshold above the lowest it
	// had been: units were lifted from it, but nothing was set down on it
	// (no unit moved onto it, no object left on it; see
	// Options.RiseMissP). Still implies it. False: no evidence.
	NeverRose bool
	// Rose reports that the shelf was watched throughout the session and
	// its weight did rise by the touch threshold above the lowest it had
	// been: something was set down on it (a unit put back or moved onto it,
	// an object left on it), or a hand or a bag pressed on it (see
	// Options.RiseFalseP). It excludes NeverRose. When every shelf of the
	// session rose, the cabinet was jolted and Rose is no evidence.
	Rose bool
	// Lifts is how many separate lifts the watch saw on the shelf: each
	// time its weight held a level below the lowest it had held before
	// by the touch threshold (a unit, or a handful of units, taken up),
	// counted only when LiftsKnown. Two units lifted one after the other
	// are two lifts; five units cannot be one or two lifts unless the
	// shopper grabbed several at once (see Options.GrabP). It is evidence
	// only on a shelf that is not Still.
	Lifts int
	// LiftsKnown reports that the shelf was watched throughout the
	// session, so that Lifts is a count, not an unknown. A negative Lifts
	// is no evidence; a count no explanation makes likely weighs every
	// explanation alike (the watch may miscount).
	LiftsKnown bool
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
	// a door left open in a fridge; default 1.0).
	DriftG float64

	// Prior over what a shopper does.

	// TouchedShelves is the mean number of shelves a shopper takes from;
	// each shelf is touched with TouchedShelves ÷ shelves (default 1.3).
	TouchedShelves float64
	// TakeMean is the mean number of units taken from a shelf that is
	// touched by an ordinary shopper; the count is geometric, so 5 × 100 g
	// is far less likely than 1 × 500 g (default 1.5).
	TakeMean float64
	// BulkP is the share of touched shelves that a bulk buyer empties by
	// more, with a geometric count of mean BulkMean (defaults 0.08 and 5):
	// the tail that keeps a ten-unit purchase possible.
	BulkP, BulkMean float64
	// MoveP is the chance of one unit moved from one shelf onto another in
	// a session, landing on any other shelf alike; each further moved unit
	// costs the same factor again (default 0.02).
	MoveP float64
	// ObjectP is the chance that a shelf ends the session with an unknown
	// object on it (keys, a phone, a bottle; default 0.002: about 1 % of sessions over a six-shelf cabinet); its weight has
	// a log-uniform prior on [ObjectMinG, ObjectMaxG].
	ObjectP float64
	// ObjectGoneP is the chance that an unknown object that was on a
	// shelf leaves with the shopper (default 1e-5: an object must have been left there first).
	ObjectGoneP float64
	// ObjectMinG and ObjectMaxG shape an unknown object's weight prior
	// (defaults 3 and 5000 g): flat below ObjectMinG (a lean's hysteresis,
	// crumbs), log-uniform up to ObjectMaxG, nothing above.
	ObjectMinG, ObjectMaxG float64
	// MiscountP is the chance, per unit, that a shelf holds a unit more than
	// its Stock says (default 0.002). Removals beyond Stock are scored with
	// it; when the best explanation needs them the result reports a
	// StockMismatch and the evidence is judged without the bound.
	MiscountP float64
	// StillMissP is the chance that a shelf where units were lifted or set
	// down still looks Still: a unit put down while its look-alike was
	// lifted in the same moment, so the weight never stayed off by the touch
	// threshold. Every hypothesis that takes units from, moves units onto or
	// leaves an object on a Still shelf is scored with it (default 0.1).
	StillMissP float64
	// RiseMissP is the chance that a shelf where something was set down
	// shows no rise: it was set down in the same moment as units of at
	// least its weight were lifted. Every hypothesis that moves units onto,
	// or leaves an object on, a NeverRose shelf that is not Still is scored
	// with it (default 0.1).
	RiseMissP float64
	// RiseFalseP is the chance that a shelf shows a rise although nothing
	// was set down on it: a hand resting on it while taking, a lean, a
	// brushing sleeve, a unit lifted and put straight back. Every
	// hypothesis that sets nothing down on a Rose shelf (no unit moved onto
	// it, no object left) is scored with it (default 0.3).
	RiseFalseP float64
	// GrabP is the chance that a unit lifted from a shelf goes up in the
	// same grab as the unit before it (two packets in one hand), so the
	// watch sees one lift for both (default 0.3).
	GrabP float64
	// LiftHideP is the chance that the first grab from a shelf does not
	// show as a lift: something of its weight was set down on the shelf
	// in the same moment (default 0.01).
	LiftHideP float64
	// LiftMissP is the chance that a later grab does not show as a lift
	// of its own: it followed the one before too fast for the watch to see
	// the level between (default 0.1).
	LiftMissP float64
	// LiftExtraP is the chance of each lift the watch sees beyond the
	// grabs: a unit dragged to the edge before it was lifted, so the
	// weight fell in two steps (default 0.05).
	LiftExtraP float64
	// RisePutBackP is the share of rises on a shelf where nothing else was
	// set down that are a unit lifted and put back, which adds a lift; the
	// rest are a hand pressing on the shelf (default 0.2).
	RisePutBackP float64

	// Search caps.

	// MaxItems caps units removed from one shelf when its stock is unknown
	// (default 30).
	MaxItems int
	// MaxAdds caps units moved onto one shelf (default 2).
	MaxAdds int

	// Decision.

	// Confidence is c: a basket is exact only if its posterior, counting
	// only hypotheses without a move or an unknown object, is at least c
	// (default 0.995: chosen on the accuracy benchmark so that sales
	// reported exact are right at least 99.95 % of the time; see
	// docs/inference.md).
	Confidence float64
	// CheaperBound is δ: a basket whose posterior is at least δ is
	// plausible. In the shopper-safe default a basket is exact only if no
	// cheaper basket is plausible; an ambiguous sale charges the cheapest
	// plausible basket (default 1e-4).
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
	DefaultK              = 4.5
	DefaultCreepFrac      = 0.001
	DefaultMinNoiseG      = 0.3
	DefaultUnitSpread     = 0.5
	DefaultDriftG         = 1.0
	DefaultTouchedShelves = 1.3
	DefaultTakeMean       = 1.5
	DefaultBulkP          = 0.08
	DefaultBulkMean       = 5
	DefaultMoveP          = 0.02
	DefaultObjectP        = 0.002
	DefaultObjectGoneP    = 1e-5
	DefaultObjectMinG     = 10
	DefaultObjectMaxG     = 5000
	DefaultMiscountP      = 0.002
	DefaultStillMissP     = 0.1
	DefaultRiseMissP      = 0.1
	DefaultRiseFalseP     = 0.3
	DefaultGrabP          = 0.3
	DefaultLiftHideP      = 0.01
	DefaultLiftMissP      = 0.1
	DefaultLiftExtraP     = 0.05
	DefaultRisePutBackP   = 0.2
	DefaultMaxItems       = 30
	DefaultMaxAdds        = 2
	DefaultConfidence     = 0.995
	DefaultCheaperBound   = 1e-4
	DefaultAlternatives   = 3
)

func (o *Options) resolved() Options {
	r := Options{K: DefaultK, CreepFrac: DefaultCreepFrac, MinNoiseG: DefaultMinNoiseG,
		UnitSpread: DefaultUnitSpread, DriftG: DefaultDriftG,
		TouchedShelves: DefaultTouchedShelves, TakeMean: DefaultTakeMean, BulkP: DefaultBulkP, BulkMean: DefaultBulkMean, MoveP: DefaultMoveP,
		ObjectP: DefaultObjectP, ObjectGoneP: DefaultObjectGoneP,
		ObjectMinG: DefaultObjectMinG, ObjectMaxG: DefaultObjectMaxG, MiscountP: DefaultMiscountP, StillMissP: DefaultStillMissP, RiseMissP: DefaultRiseMissP, RiseFalseP: DefaultRiseFalseP,
		GrabP: DefaultGrabP, LiftHideP: DefaultLiftHideP, LiftMissP: DefaultLiftMissP, LiftExtraP: DefaultLiftExtraP, RisePutBackP: DefaultRisePutBackP,
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
	set(&r.TouchedShelves, o.TouchedShelves)
	set(&r.TakeMean, o.TakeMean)
	set(&r.BulkP, o.BulkP)
	set(&r.BulkMean, o.BulkMean)
	set(&r.MoveP, o.MoveP)
	set(&r.ObjectP, o.ObjectP)
	set(&r.ObjectGoneP, o.ObjectGoneP)
	set(&r.ObjectMinG, o.ObjectMinG)
	set(&r.ObjectMaxG, o.ObjectMaxG)
	set(&r.MiscountP, o.MiscountP)
	set(&r.StillMissP, o.StillMissP)
	set(&r.RiseMissP, o.RiseMissP)
	set(&r.RiseFalseP, o.RiseFalseP)
	set(&r.GrabP, o.GrabP)
	set(&r.LiftHideP, o.LiftHideP)
	set(&r.LiftMissP, o.LiftMissP)
	set(&r.LiftExtraP, o.LiftExtraP)
	set(&r.RisePutBackP, o.RisePutBackP)
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
	// StatusExact: one basket is sure enough by the decision rule (see
	// Infer) and charged.
	StatusExact Status = "exact"
	// StatusAmbiguous: no basket is sure enough, or one needs a move or an
	// unknown object; the cheapest plausible basket is charged and the
	// sale is flagged for review.
	StatusAmbiguous Status = "ambiguous"
	// StatusEmpty: exact, and nothing was taken.
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
	// Explained is false when the chosen hypothesis needs an unknown object
	// on the shelf, or its readings could not be used.
	Explained bool
	// ObjectG is the chosen hypothesis's unknown object: its weight left on
	// the shelf (> 0) or taken from it (< 0); 0 when none.
	ObjectG float64
	// Candidates counts the shelf's hypotheses that were kept for the search.
	Candidates int
}

// Result is the inferred basket of one session.
type Result struct {
	Status Status
	// Lines are the charged units, sorted by shelf then SKU.
	Lines []Line
	// Shelves are the per-shelf explanations, sorted by shelf.
	Shelves []ShelfResult
	// Unexplained lists the shelves whose charged explanation needs an
	// unknown object (or whose readings could not be used); the firmware
	// raises unknown_object for them. An object is never charged.
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
	lane   float64
	g      int // index in engine.names
}

// kc is a count of one SKU, by global index.
type kc struct{ g, n int }

func mkSKU(s SKU, g int) sku {
	lane := s.Lane
	if math.IsNaN(lane) || lane < 0 {
		lane = 0
	}
	return sku{name: s.SKU, w: s.UnitG, tol: math.Max(s.TolG, 0), lane: math.Min(lane, 1), g: g}
}

// valid reports whether a SKU can be counted by weight at all.
func (s sku) valid() bool { return s.w > 0 && !math.IsInf(s.w, 0) && !math.IsNaN(s.w+s.tol) }

// Infer explains the shelves' weight changes and chooses the basket to
// charge. cabinet lists every SKU that may be moved onto a shelf; shelf
// SKUs are added to it when missing. Shelves are handled in shelf-number
// order whatever the caller's order, and the result is deterministic.
//
// # The model
//
// A hypothesis explains each shelf by units of its own SKUs removed, units
// of SKUs stocked on other shelves added (moved within the session: every
// added unit must be matched by a removal of that SKU elsewhere), and at
// most one unknown object left on it or taken from it. Its score is
//
//	log P(hypothesis | weights) = Σ shelves [log prior + log likelihood] + const
//
// The likelihood is Gaussian in the residual Δ − (added − removed) with
// variance σ² + DriftG² + (CreepFrac·Δ)² + Σ units·(UnitSpread·TolG)²; a
// residual beyond K·σ plus the units' summed tolerance rules the
// hypothesis out. On a TwoCell shelf the right cell's change is a second,
// correlated observation: a unit in lane x moves it by x·w, so the shift of
// the centre of mass says which lane the weight left from. An unknown object
// takes up the residual, with a log-uniform prior over its weight.
//
// The prior per shelf: untouched with probability 1 − TouchedShelves ÷
// shelves; otherwise n ≥
// 1 units removed, geometric with mean TakeMean or, for a share BulkP of
// shoppers, BulkMean, spread evenly over the
// shelf's SKUs; each unit beyond the shelf's known Stock costs MiscountP;
// each moved unit MoveP, its source shelf and SKU chosen alike among the
// cabinet's and its destination among the other shelves (a moved unit is
// not bought, so it leaves its shelf's purchase count); an object left
// ObjectP, one taken away ObjectGoneP.
//
// # The decision
//
// Hypotheses within a wide margin of the best (ln 10⁶) are enumerated and
// normalised; those charging the same units per SKU form one basket. Let B*
// be the most probable basket. It is exact when the part of its posterior
// that needs no move and no unknown object is at least Confidence and,
// unless RevenueFirst, no basket cheaper than B* holds CheaperBound or more
// (B* is then the cheapest plausible basket). Otherwise the sale is ambiguous and the cheapest basket with
// posterior at least CheaperBound is charged: an unmatched change or an
// unlikely explanation is never used to charge more. An exact basket that
// charges nothing is StatusEmpty. Shelves whose charged explanation needs an
// unknown object are listed in Unexplained.
//
// Stock: a shelf cannot lose units it does not hold, except by a miscount.
// When the most probable hypothesis needs more units than Stock gives, the
// result lists them in StockMismatch and the weights are judged again
// without any stock bound, so a wrong count never stops a sale being
// charged.
//
// Caps: per shelf at most 4,096 hypotheses are kept, and the search over
// their combinations stops after 262,144 nodes; then Infer charges the
// per-SKU floor max(0, Σ fewest removals − Σ most additions) over every kept
// hypothesis, which no hypothesis undercuts, as ambiguous with MarginLogL 0.
func Infer(shelves []Shelf, cabinet []SKU, opt *Options) Result {
	o := opt.resolved()
	r, clean := infer(shelves, cabinet, o, true)
	if len(r.StockMismatch) == 0 && clean {
		return r // the weights agree with the books
	}
	// The books' bound pushed the best reading past the stock, or onto a
	// move or an unknown object: do the weights alone say more units left
	// than the books hold?
	free, freeClean := infer(shelves, cabinet, o, false)
	if len(free.StockMismatch) > 0 && (freeClean || len(r.StockMismatch) > 0) {
		return free
	}
	r.StockMismatch = nil
	return r
}

// joltedShelves reports that every shelf of a session of two or more rose:
// a jolt of the whole cabinet (a slammed door, a bump), not goods set down
// everywhere, so no shelf's Rose is evidence.
func joltedShelves(shelves []Shelf) bool {
	if len(shelves) < 2 {
		return false
	}
	for _, s := range shelves {
		if !s.Rose {
			return false
		}
	}
	return true
}

// infer runs the model once, with removals beyond the known stock scored
// by MiscountP (bounded) or not bounded at all. clean reports that the most
// probable hypothesis needs no move and no unknown object; the result's
// StockMismatch lists where it removes more than the known stock.
func infer(shelves []Shelf, cabinet []SKU, o Options, bounded bool) (Result, bool) {
	e := newEngine(shelves, cabinet, o, bounded)
	work := make([]*shelfWork, len(shelves))
	jolt := joltedShelves(shelves)
	for i, s := range shelves {
		if jolt || s.NeverRose {
			s.Rose = false
		}
		work[i] = &shelfWork{in: s}
	}
	// Stable sort so that the output, and every tie-break, follows shelf
	// numbers rather than the caller's order.
	sort.SliceStable(work, func(i, j int) bool { return work[i].in.Shelf < work[j].in.Shelf })
	for i, w := range work {
		var elsewhere []sku
		seen := map[int]bool{}
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
	r := e.choose(work)
	return r, e.mapClean
}

type engine struct {
	opt      Options
	bounded  bool     // removals beyond Stock cost MiscountP (else stock is ignored)
	mapClean bool     // set by choose: the most probable hypothesis has no move or object
	names    []string // global index → SKU
	gidx     map[string]int
	price    []int64
	addable  []sku // every cabinet and shelf SKU, in global order
	// log-prior constants
	lTouch, lUntouched               float64
	lCount                           []float64 // log P(n units | touched), n = 1..len−1
	lMove, lObj, lObjGone, lMiscount float64
	lStillMiss, lRiseMiss            float64 // log StillMissP, log RiseMissP
	lRiseFalse                       float64 // log RiseFalseP
	lObjNorm                         float64 // log Z of the object weight prior (see object)
	lDest                            float64 // log of the shelves a moved unit may land on
	lShelves                         float64 // log of the shelves a moved unit may come from
}

func newEngine(shelves []Shelf, cabinet []SKU, o Options, bounded bool) *engine {
	e := &engine{opt: o, bounded: bounded, gidx: map[string]int{}}
	add := func(s SKU) {
		if _, ok := e.gidx[s.SKU]; ok {
			return
		}
		g := len(e.names)
		e.gidx[s.SKU] = g
		e.names = append(e.names, s.SKU)
		e.price = append(e.price, max(s.PriceFen, 0))
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
	logp := func(p float64) float64 {
		if p <= 0 {
			return math.Inf(-1)
		}
		return math.Log(min(p, 1))
	}
	e.lCount = countPrior(o)
	e.lMove = logp(o.MoveP)
	e.lObj, e.lObjGone = logp(o.ObjectP), logp(o.ObjectGoneP)
	e.lMiscount = logp(o.MiscountP)
	e.lStillMiss, e.lRiseMiss = logp(o.StillMissP), logp(o.RiseMissP)
	e.lRiseFalse = logp(o.RiseFalseP)
	lo, hi := max(o.ObjectMinG, 0.1), o.ObjectMaxG
	if !(hi > lo) {
		hi = lo * 10
	}
	e.opt.ObjectMinG, e.opt.ObjectMaxG = lo, hi
	e.lObjNorm = math.Log(1 + math.Log(hi/lo))
	n := 0
	for _, sh := range shelves {
		if len(sh.SKUs) > 0 {
			n++
		}
	}
	// A moved unit lands on one of the other shelves, each alike.
	e.lDest = math.Log(float64(max(n-1, 1)))
	e.lShelves = math.Log(float64(max(n, 1)))
	// A shopper takes from TouchedShelves shelves on average, whatever
	// the cabinet's size.
	touch := min(max(o.TouchedShelves/float64(max(n, 1)), 1e-9), 0.9)
	e.lTouch, e.lUntouched = math.Log(touch), math.Log(1-touch)
	return e
}

// countPrior tabulates log P(n | touched) for n = 1..maxCount: a mixture
// of two geometric counts (ordinary and bulk), cut where it falls below
// shelfLogP under its peak or at MaxItems units.
func countPrior(o Options) []float64 {
	geo := func(mean float64, n int) float64 {
		q := 1 - 1/max(mean, 1.0001)
		return (1 - q) * math.Pow(q, float64(n-1))
	}
	bulk := min(max(o.BulkP, 0), 1)
	out := []float64{math.Inf(-1)}
	for n := 1; n <= max(o.MaxItems, 1); n++ {
		l := math.Log((1-bulk)*geo(o.TakeMean, n) + bulk*geo(o.BulkMean, n))
		if n > 1 && l < out[1]-shelfLogP {
			break
		}
		out = append(out, l)
	}
	return out
}

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
