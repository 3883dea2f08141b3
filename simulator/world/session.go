package world

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/bangfu/cabinet/firmware/infer"
)

// Session is one shopping session: what infer.Infer is given and the
// truth it is judged against.
type Session struct {
	// Class is what the shopper did.
	Class Class
	// Shelves are Infer's evidence, one per shelf in shelf order.
	Shelves []infer.Shelf
	// Cabinet is every SKU of the cabinet, as the firmware passes it.
	Cabinet []infer.SKU
	// Taken are the units really bought per SKU (nil when none); a unit
	// moved or put back is not bought.
	Taken map[string]int
	// Lines are the bought units by shelf, sorted by shelf then SKU.
	Lines []infer.Line
	// TrueFen is the price of the bought units.
	TrueFen int64
	// Prices are the unit prices in fen of the cabinet's SKUs.
	Prices map[string]int64
	// Miscounted reports that the stock books of some shelf are off by a
	// unit in this session.
	Miscounted bool
}

// MiscountShelfP is the chance that a shelf's books are off by one unit
// of one SKU (a miscounted restock), either way.
const MiscountShelfP = 0.02

// unit is something on a tray: a unit of a product (sku set) or a
// personal object (sku empty), at position x along the shelf (0 over the
// left cell, 1 over the right).
type unit struct {
	sku   string
	g, x  float64
	moved bool // carried here from another shelf
}

// trayState is what really stands on one shelf.
type trayState struct {
	plan  ShelfPlan
	units []unit
	// hyst is the lean's hysteresis: g grams on the after reading, at x.
	hyst unit
}

// Session draws one session on the planogram at load-cell noise sigma
// (σ of one sample, in grams), on shelves with one load cell or two. The
// shopper's behaviour and the units' true weights come from rng before
// any reading does, so the same seed gives the same shopping on one cell
// and on two.
func (p Planogram) Session(rng *rand.Rand, sigma float64, twoCell bool) Session {
	state := p.stock(rng)
	books, miscounted := ledger(rng, state)
	before := loadsOf(state)
	s := Session{Class: drawClass(rng), Cabinet: p.Cabinet(), Prices: p.Prices, Miscounted: miscounted}
	sh := newShopper(rng, p, state)
	sh.act(s.Class)
	after := loadsOf(state)
	touch, jolt := touchFlagsOf(rng, sh.work, before, after)
	for i := range p.Shelves {
		in := p.shelfInput(rng, i, before[i], after[i], state[i].hyst, books[i], sigma, twoCell)
		in.Still, in.NeverRose, in.Rose = touch[i].still, touch[i].neverRose, !touch[i].neverRose
		s.Shelves = append(s.Shelves, in)
	}
	// Drawn last, so that adding the counter left every earlier draw, and
	// so the shopping and the readings, as they were.
	if !jolt {
		for i := range s.Shelves {
			in := &s.Shelves[i]
			in.LiftsKnown = true
			if !in.Still {
				in.Lifts = countLifts(rng, sh.lifted[i])
			}
		}
	}
	s.setTruth(sh.bought, p)
	return s
}

// setTruth fills Taken, Lines and TrueFen from the bought units.
func (s *Session) setTruth(bs []bought, p Planogram) {
	byLine := map[infer.Line]int{}
	for _, b := range bs {
		if s.Taken == nil {
			s.Taken = map[string]int{}
		}
		s.Taken[b.sku]++
		s.TrueFen += p.Prices[b.sku]
		byLine[infer.Line{Shelf: p.Shelves[b.shelf].Shelf, SKU: b.sku}]++
	}
	for l, n := range byLine {
		l.Qty = n
		s.Lines = append(s.Lines, l)
	}
	slices.SortFunc(s.Lines, compareLines)
}

func compareLines(a, b infer.Line) int {
	if c := cmp.Compare(a.Shelf, b.Shelf); c != 0 {
		return c
	}
	return cmp.Compare(a.SKU, b.SKU)
}

// stock fills every shelf with MinStock..MaxStock units of each of its
// products, each unit with its true weight and position in its lane.
func (p Planogram) stock(rng *rand.Rand) []*trayState {
	out := make([]*trayState, len(p.Shelves))
	for i, sh := range p.Shelves {
		t := &trayState{plan: sh}
		for _, q := range sh.Products {
			for range MinStock + rng.IntN(MaxStock-MinStock+1) {
				t.units = append(t.units, unit{sku: q.SKU.SKU, g: q.DrawUnitG(rng), x: t.lanePos(rng, q.SKU.SKU)})
			}
		}
		out[i] = t
	}
	return out
}

// ledger is the cabinet's books before the session: the true counts,
// except that on a share MiscountShelfP of shelves one SKU is off by one;
// miscounted reports whether any is.
func ledger(rng *rand.Rand, state []*trayState) (out []map[string]int, miscounted bool) {
	out = make([]map[string]int, len(state))
	for i, t := range state {
		books := map[string]int{}
		for _, q := range t.plan.Products {
			books[q.SKU.SKU] = t.count(q.SKU.SKU)
		}
		if rng.Float64() < MiscountShelfP {
			sku := t.plan.Products[rng.IntN(len(t.plan.Products))].SKU.SKU
			n := max(0, books[sku]+2*rng.IntN(2)-1)
			miscounted = miscounted || n != books[sku]
			books[sku] = n
		}
		out[i] = books
	}
	return out, miscounted
}

// count is the units of the shelf's own product sku on the tray.
func (t *trayState) count(sku string) int {
	n := 0
	for _, u := range t.units {
		if u.sku == sku && !u.moved {
			n++
		}
	}
	return n
}

// goodsCount is the units of the shelf's own products on the tray.
func (t *trayState) goodsCount() int {
	n := 0
	for _, u := range t.units {
		if u.sku != "" && !u.moved {
			n++
		}
	}
	return n
}

// remove takes a random unit of the shelf's own product sku off the tray;
// the caller has checked that there is one.
func (t *trayState) remove(rng *rand.Rand, sku string) unit {
	var idx []int
	for i, u := range t.units {
		if u.sku == sku && !u.moved {
			idx = append(idx, i)
		}
	}
	return t.removeAt(idx[rng.IntN(len(idx))])
}

// removeAny takes a random unit of the shelf's own products off the tray;
// the caller has checked that there is one.
func (t *trayState) removeAny(rng *rand.Rand) unit {
	var idx []int
	for i, u := range t.units {
		if u.sku != "" && !u.moved {
			idx = append(idx, i)
		}
	}
	return t.removeAt(idx[rng.IntN(len(idx))])
}

func (t *trayState) removeAt(i int) unit {
	u := t.units[i]
	t.units = slices.Delete(t.units, i, i+1)
	return u
}

// LaneJitter is how far a unit may stand from its lane's centre, as a
// fraction of the lane's width 1/n: uniform in ±LaneJitter/n.
const LaneJitter = 0.3

// lanePos draws where a unit of the shelf's product sku stands: its lane
// centre plus a uniform jitter.
func (t *trayState) lanePos(rng *rand.Rand, sku string) float64 {
	n := len(t.plan.Products)
	i := slices.IndexFunc(t.plan.Products, func(p Product) bool { return p.SKU.SKU == sku })
	return laneOf(i, n) + (2*rng.Float64()-1)*LaneJitter/float64(n)
}
