package infer

import (
	"cmp"
	"math"
	"slices"
	"sort"
)

// Restock counting. A restock session is not a sale: nothing is charged, so
// the no-overcharge rule of Infer does not apply. What matters is a count the
// stock levels can trust. Per shelf the restocker may add and remove units of
// the shelf's own SKUs (a swap of a revoked product for its replacement is
// both), so a change is a signed integer per SKU. Among the explanations the
// weight cannot tell apart, the one moving the fewest units is reported (a
// restocker does not add six and take five when one will do), and the SKUs
// on which they disagree are reported as unsettled, so the caller forgets
// those levels rather than trust a guess.

// CountStatus is the verdict on one shelf's count.
type CountStatus string

// CountStatus values.
const (
	// CountExact: one explanation stands out; its changes are the count.
	CountExact CountStatus = "exact"
	// CountAmbiguous: other explanations are about as likely as the
	// reported one; the SKUs on which they disagree are listed in
	// Unsettled.
	CountAmbiguous CountStatus = "ambiguous"
	// CountUnexplained: no change of the shelf's SKUs fits the weight (a
	// foreign object, a product not in the planogram, a broken reading),
	// or the search was capped before finding one.
	CountUnexplained CountStatus = "unexplained"
)

// RestockShelf is one shelf's evidence of a restock session.
type RestockShelf struct {
	// Shelf holds the weights and the SKUs the planogram puts on the shelf,
	// sellable or not: revoked and delisted units still weigh what they weigh.
	// PriceFen is not used.
	Shelf
	// Have is the stock known before the session per SKU; a SKU missing from
	// it is unknown. A known level bounds removals: a shelf cannot lose units
	// it does not hold.
	Have map[string]int
}

// Change is a counted stock movement of one SKU on one shelf: Qty > 0 units
// added, Qty < 0 removed.
type Change struct {
	SKU string
	Qty int
}

// ShelfCount is the count of one shelf.
type ShelfCount struct {
	Shelf int
	// DeltaG is AfterG − BeforeG.
	DeltaG float64
	// ResidualG is DeltaG minus the reported explanation's nominal change
	// (DeltaG itself when the shelf is unexplained).
	ResidualG float64
	// Changes are the reported explanation's non-zero changes, sorted by
	// SKU; nil when nothing changed or the shelf is unexplained.
	Changes []Change
	Status  CountStatus
	// Units is Σ|Qty| of the reported explanation.
	Units int
	// Unsettled lists, sorted, the SKUs whose change a competing
	// explanation counts differently, and SKUs that cannot be weighed at
	// all: their levels after the session are not known. Every SKU of an
	// unexplained or capped shelf is listed.
	Unsettled []string
	// Alternatives counts the competing explanations (0 when exact).
	Alternatives int
	// EmptyBefore and EmptyAfter report a shelf that read as holding none
	// of its SKUs before or after the session (see CountRestock).
	EmptyBefore, EmptyAfter bool
	// Capped reports that the search hit its node cap: the shelf is then
	// ambiguous in every SKU, or unexplained when nothing was found.
	Capped bool
}

// CountOptions tune CountRestock. The zero value (or nil) means the
// defaults; a field left at zero or below takes its default (SwapMinLogL:
// zero or above).
type CountOptions struct {
	// K, CreepFrac and MinNoiseG are the weight model's, as in Options.
	K, CreepFrac, MinNoiseG float64
	// MaxUnits caps Σ|qty| of an explanation of one shelf (default 60).
	MaxUnits int
	// UntouchedG: a shelf whose change is within this many grams (or
	// within its noise allowance, whichever is more) was not touched
	// (default 0: the noise allowance alone).
	UntouchedG float64
	// MaxSwapUnits caps Σ|qty| of an explanation that both adds and
	// removes (default 24; see CountRestock).
	MaxSwapUnits int
	// SwapLogPrior and SwapUnitLogPrior are the log-prior cost of a swap
	// and of each of its units (defaults 3 and 0.3; see CountRestock).
	SwapLogPrior, SwapUnitLogPrior float64
	// SwapMinLogL is the least log-likelihood of an explanation that both
	// adds and removes (see CountRestock). Unlike the other fields it is
	// negative: zero or above takes the default, −9.2 ≈ ln 10⁻⁴.
	SwapMinLogL float64
	// AmbiguityLogL: an explanation whose score is at most this much below
	// the best competes (default 4.6 ≈ ln 100).
	AmbiguityLogL float64
}

// Defaults of CountOptions.
const (
	DefaultCountMaxUnits      = 60
	DefaultCountMaxSwapUnits  = 24
	DefaultCountSwapLogPrior  = 3.0
	DefaultCountSwapUnitPrior = 0.3
	DefaultCountSwapMinLogL   = -9.2
	DefaultCountAmbiguityLogL = 4.6
)

// maxCountNodes caps the search of one shelf. The search enumerates every
// SKU's change but the last, within MaxUnits, so it grows like
// MaxUnits^(SKUs−1): about 120 nodes for two SKUs and 60 units, 7,000 for
// three, 300,000 for four. Shelves of five or more SKUs are capped.
const maxCountNodes = 1 << 20

type countOpts struct {
	Options
	maxUnits    int
	untouchedG  float64
	maxSwap     int
	swapPrior   float64
	swapUnit    float64
	swapMinLogL float64
	ambLogL     float64
}

func (o *CountOptions) resolved() countOpts {
	var c CountOptions
	if o != nil {
		c = *o
	}
	r := countOpts{
		Options:  (&Options{K: c.K, CreepFrac: c.CreepFrac, MinNoiseG: c.MinNoiseG}).resolved(),
		maxUnits: DefaultCountMaxUnits, maxSwap: DefaultCountMaxSwapUnits,
		swapPrior: DefaultCountSwapLogPrior, swapUnit: DefaultCountSwapUnitPrior,
		swapMinLogL: DefaultCountSwapMinLogL, ambLogL: DefaultCountAmbiguityLogL,
	}
	if c.MaxUnits > 0 {
		r.maxUnits = c.MaxUnits
	}
	if c.UntouchedG > 0 {
		r.untouchedG = c.UntouchedG
	}
	if c.MaxSwapUnits > 0 {
		r.maxSwap = c.MaxSwapUnits
	}
	if c.SwapLogPrior > 0 {
		r.swapPrior = c.SwapLogPrior
	}
	if c.SwapUnitLogPrior > 0 {
		r.swapUnit = c.SwapUnitLogPrior
	}
	if c.SwapMinLogL < 0 {
		r.swapMinLogL = c.SwapMinLogL
	}
	if c.AmbiguityLogL > 0 {
		r.ambLogL = c.AmbiguityLogL
	}
	return r
}

// CountRestock counts each shelf's restock, independently, and returns the
// counts sorted by shelf number.
//
// The weight model is Infer's (Δ = AfterG − BeforeG, σ = max(NoiseG,
// MinNoiseG), K, CreepFrac), with one change: a unit's weight is taken as
// uniform within UnitG±TolG (variance TolG²/3), not as Infer's Gaussian
// with TolG at 3σ. A restock moves dozens of units; underestimating their
// summed spread turns doubt into false certainty.
//
// An explanation is a signed integer qᵢ per SKU of the shelf, Σ|qᵢ| ≤
// MaxUnits. It is consistent iff
//
//	|Δ − Σqᵢwᵢ| ≤ min(Σ|qᵢ|·TolG, K·√(Σ|qᵢ|·TolG²/3)) + K·σ + CreepFrac·|Δ|
//
// (Infer's hard tolerance, capped for many units by the spread of their
// sum: dozens of units all at the same limit do not happen). Removals of a
// SKU never exceed its known level (Have), and none are possible from a
// shelf that was empty before.
//
// An explanation that both adds and removes (a swap) must also move at most
// MaxSwapUnits units and have a log-likelihood of at least SwapMinLogL.
// Additions and removals cancel: nine 400 g units out and five 720 g in
// weigh nothing, so without limits a large enough swap explains any small
// change and no foreign object would ever be found. The default
// SwapMinLogL, ln 10⁻⁴, is the likelihood of a foreign object that could
// weigh anything over 10 kg at gram resolution: a swap must explain the
// change better than that. A bigger swap is counted in two sessions (take
// out, close, open, put in). Even so a weight that happens to match a small
// swap is counted as one; the residual in the evidence shows it.
//
// A shelf whose change is within K·σ + CreepFrac·|Δ| (or UntouchedG) of
// zero was not touched, and is counted so without looking further:
// otherwise an untouched shelf of 250 g and 500 g packs would always read
// as "perhaps two 250 g in and one 500 g out" and lose its levels.
//
// Each explanation scores its Gaussian log-likelihood (variance σ² +
// Σ|qᵢ|·TolG²/3), less, for a swap, SwapLogPrior and SwapUnitLogPrior per
// unit: restockers mostly fill or empty a shelf, and a swap whose additions
// and removals cancel to what a plain fill weighs is a coincidence, not a
// rival count. (Reading a swap as a plain fill or emptying never lowers
// the level of a SKU the swap removed below the truth: the weights then
// say fewer of it went or some came, so a revoked product is never counted
// away by it.) Explanations scoring at most AmbiguityLogL below the best
// are plausible; of those the one moving the fewest units is reported (then
// the best scoring, then the lexicographically smallest, SKUs in name
// order). Any other plausible explanation competes with it:
// the shelf is then CountAmbiguous and the SKUs on which they disagree are
// Unsettled. Weights alone cannot tell nine 400 g units from five 720 g
// ones, and fewest-units would silently pick the five; reporting the doubt
// is the point. A shelf with no consistent explanation is CountUnexplained.
// The search is capped (see maxCountNodes); a capped shelf is never
// reported exact.
//
// Empty shelves: a scale's zero is its empty tray (calibration), so a shelf
// reading within half of its lightest unit's lower limit of zero holds none
// of its SKUs; EmptyBefore and EmptyAfter report it, so that a shelf emptied
// by a restocker is counted to zero whatever was known before.
func CountRestock(shelves []RestockShelf, opt *CountOptions) []ShelfCount {
	o := opt.resolved()
	out := make([]ShelfCount, 0, len(shelves))
	for _, s := range shelves {
		out = append(out, countShelf(s, o))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Shelf < out[j].Shelf })
	return out
}

// countCand is one consistent explanation.
type countCand struct {
	q     []int // per SKU of the shelf, in name order
	units int
	resid float64
	score float64 // log-likelihood, less the swap prior
}

type counter struct {
	o     countOpts
	items []sku // weighable SKUs, sorted by name
	lo    []int // the most units of each that may be removed (≥ 0)
	delta float64
	sigma float64
	base  float64 // K·σ + CreepFrac·|Δ|
	// Suffix bounds for pruning: the heaviest unit and the widest
	// tolerance among items i.. .
	maxW, maxTol []float64
	nodes        int
	capped       bool
	q            []int
	found        []countCand
}

func countShelf(s RestockShelf, o countOpts) ShelfCount {
	res := ShelfCount{Shelf: s.Shelf.Shelf, DeltaG: s.AfterG - s.BeforeG}
	res.ResidualG = res.DeltaG

	// Dedupe by name, keep the weighable ones; the others cannot be
	// counted and so are never settled.
	byName := map[string]SKU{}
	for _, k := range s.SKUs {
		if _, dup := byName[k.SKU]; !dup {
			byName[k.SKU] = k
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	var unweighable []string
	c := &counter{o: o, delta: res.DeltaG}
	for _, n := range names {
		k := mkSKU(byName[n], len(c.items))
		if !k.valid() || math.IsInf(k.tol, 0) {
			unweighable = append(unweighable, n)
			continue
		}
		c.items = append(c.items, k)
	}

	if len(c.items) > 0 {
		lightest := math.Inf(1)
		for _, k := range c.items {
			lightest = math.Min(lightest, k.w-k.tol)
		}
		if emptyG := lightest / 2; emptyG > 0 {
			res.EmptyBefore = math.Abs(s.BeforeG) <= emptyG
			res.EmptyAfter = math.Abs(s.AfterG) <= emptyG
		}
	}

	c.sigma = math.Max(s.NoiseG, o.MinNoiseG)
	if math.IsNaN(c.sigma) {
		c.sigma = o.MinNoiseG
	}
	if math.IsNaN(c.delta) || math.IsInf(c.delta, 0) {
		res.Status, res.Unsettled = CountUnexplained, names
		return res // a broken reading explains nothing
	}
	c.base = o.K*c.sigma + o.CreepFrac*math.Abs(c.delta)

	n := len(c.items)
	c.lo = make([]int, n)
	for i, k := range c.items {
		have, known := s.Have[k.name]
		switch {
		case res.EmptyBefore:
			c.lo[i] = 0
		case known:
			c.lo[i] = min(max(have, 0), o.maxUnits)
		default:
			c.lo[i] = o.maxUnits
		}
	}
	c.maxW = make([]float64, n+1)
	c.maxTol = make([]float64, n+1)
	for i := n - 1; i >= 0; i-- {
		c.maxW[i] = math.Max(c.maxW[i+1], c.items[i].w)
		c.maxTol[i] = math.Max(c.maxTol[i+1], c.items[i].tol)
	}
	c.q = make([]int, n)
	if math.Abs(c.delta) <= math.Max(c.base, o.untouchedG) {
		// The scale's noise explains the change: the shelf was not
		// touched. Only a swap could say otherwise, and a swap that weighs
		// exactly nothing is not worth forgetting a shelf's levels over.
		res.ResidualG, res.Status = c.delta, CountExact
		res.Unsettled = unweighable
		return res
	}
	c.walk(0, o.maxUnits, 0, 0, 0)
	res.Capped = c.capped
	if len(c.found) == 0 {
		res.Status = CountUnexplained
		res.Unsettled = names
		return res
	}

	best := math.Inf(-1)
	for _, f := range c.found {
		best = math.Max(best, f.score)
	}
	var plausible []countCand
	for _, f := range c.found {
		if f.score >= best-o.ambLogL {
			plausible = append(plausible, f)
		}
	}
	// Fewest units, then best score, then the walk's (lexicographic)
	// order, which the stable sort keeps.
	slices.SortStableFunc(plausible, func(a, b countCand) int {
		if x := cmp.Compare(a.units, b.units); x != 0 {
			return x
		}
		return cmp.Compare(b.score, a.score)
	})
	chosen := plausible[0]
	res.ResidualG = chosen.resid
	res.Units = chosen.units
	for i, v := range chosen.q {
		if v != 0 {
			res.Changes = append(res.Changes, Change{SKU: c.items[i].name, Qty: v})
		}
	}
	unsettled := map[string]bool{}
	for _, u := range unweighable {
		unsettled[u] = true
	}
	for _, alt := range plausible[1:] {
		res.Alternatives++
		for i := range alt.q {
			if alt.q[i] != chosen.q[i] {
				unsettled[c.items[i].name] = true
			}
		}
	}
	if c.capped {
		// The search stopped early: nothing it did not reach is ruled out.
		for _, nm := range names {
			unsettled[nm] = true
		}
	}
	for nm := range unsettled {
		res.Unsettled = append(res.Unsettled, nm)
	}
	slices.Sort(res.Unsettled)
	res.Status = CountExact
	if res.Alternatives > 0 || c.capped {
		res.Status = CountAmbiguous
	}
	return res
}

// walk enumerates the changes of items i.. using at most left more units,
// given the nominal change m, the summed tolerance ts, the summed
// tolerance² ts2 of the items before i. The
// last item's change is solved for rather than enumerated.
func (c *counter) walk(i, left int, m, ts, ts2 float64) {
	if c.capped {
		return
	}
	if c.nodes++; c.nodes > maxCountNodes {
		c.capped = true
		return
	}
	n := len(c.items)
	if n == 0 {
		c.leaf(0, 0, 0) // only "nothing moved" can fit a shelf of nothing
		return
	}
	// Even moving every remaining unit of the heaviest remaining SKU at the
	// widest remaining tolerance cannot close the gap: prune.
	lf := float64(left)
	if math.Abs(c.delta-m)-lf*c.maxW[i] > ts+lf*c.maxTol[i]+c.base {
		return
	}
	k := c.items[i]
	lo, hi := -min(left, c.lo[i]), left
	if i == n-1 {
		// Tolerances are under half a unit (catalog validation; and the
		// slack is small against a unit), so only the counts next to the
		// exact quotient can fit.
		x := (c.delta - m) / k.w
		lo = max(lo, int(math.Floor(x))-1)
		hi = min(hi, int(math.Ceil(x))+1)
		for v := lo; v <= hi; v++ {
			a := float64(abs(v))
			c.q[i] = v
			c.leaf(m+float64(v)*k.w, ts+a*k.tol, ts2+a*k.tol*k.tol)
		}
		c.q[i] = 0
		return
	}
	for v := lo; v <= hi; v++ {
		a := float64(abs(v))
		c.q[i] = v
		c.walk(i+1, left-abs(v), m+float64(v)*k.w, ts+a*k.tol, ts2+a*k.tol*k.tol)
	}
	c.q[i] = 0
}

// leaf records the current vector if it is consistent.
func (c *counter) leaf(m, ts, ts2 float64) {
	units, adds, removes := 0, false, false
	for _, v := range c.q {
		units += abs(v)
		adds, removes = adds || v > 0, removes || v < 0
	}
	resid := c.delta - m
	if math.Abs(resid) > math.Min(ts, c.o.K*math.Sqrt(ts2/3))+c.base {
		return
	}
	v := c.sigma*c.sigma + ts2/3
	logL := -0.5*resid*resid/v - 0.5*math.Log(2*math.Pi*v)
	score := logL
	if adds && removes {
		if units > c.o.maxSwap || logL < c.o.swapMinLogL {
			return // a swap must be modest and likelier than a foreign object (see CountRestock)
		}
		score -= c.o.swapPrior + c.o.swapUnit*float64(units)
	}
	c.found = append(c.found, countCand{q: slices.Clone(c.q), units: units, resid: resid, score: score})
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
