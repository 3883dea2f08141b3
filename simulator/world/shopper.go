package world

import "math/rand/v2"

// Class is what a shopper does in a session.
type Class int

// Shopper behaviour classes.
const (
	// Ordinary: 1–3 units in total from 1–2 shelves.
	Ordinary Class = iota
	// PutBack: ordinary, plus one unit lifted and put back on its own
	// shelf (on a two-cell shelf it lands elsewhere within its lane).
	PutBack
	// Move: ordinary, plus one unit moved onto a different shelf (not
	// bought).
	Move
	// Object: ordinary, plus a personal item left on a shelf.
	Object
	// Lean: ordinary, and the shopper leaned on or rested a bag on a shelf,
	// which leaves a small hysteresis offset on its after reading.
	Lean
	// Big: 4–8 units from 1–3 shelves.
	Big
	// Nothing: the door opens and closes; nothing is taken.
	Nothing
	// NumClasses is the number of classes.
	NumClasses
)

// The behaviour mix, in percent of sessions (they sum to 100). These are
// the world's assumptions about shoppers of an unattended cabinet: most
// buy one to three things; a few per hundred bulk-buy, put a unit back,
// lean on a shelf, take nothing, move a unit or forget their keys.
const (
	OrdinaryPct = 80
	PutBackPct  = 5
	MovePct     = 3
	ObjectPct   = 2
	LeanPct     = 3
	BigPct      = 4
	NothingPct  = 3
)

// classPct is the mix by class.
var classPct = [NumClasses]int{OrdinaryPct, PutBackPct, MovePct, ObjectPct, LeanPct, BigPct, NothingPct}

var classNames = [NumClasses]string{"ordinary", "put-back", "move", "object", "lean", "big", "nothing"}

// String is the class's name as the report prints it.
func (c Class) String() string {
	if c < 0 || c >= NumClasses {
		return "unknown"
	}
	return classNames[c]
}

// Purchase sizes.
const (
	// TwoShelfPct is the share of ordinary purchases of two or more units
	// that take from two shelves rather than one.
	TwoShelfPct = 30
	// MinBig and MaxBig bound a big purchase's units; it takes from 1 to
	// MaxBigShelves shelves.
	MinBig        = 4
	MaxBig        = 8
	MaxBigShelves = 3
)

// ordinaryUnitWeights are the relative frequencies of 1, 2 and 3 units in
// an ordinary purchase: one item is the commonest basket.
var ordinaryUnitWeights = []float64{50, 30, 20}

// Personal objects left on a shelf, with their weight ranges in grams;
// each kind is equally likely.
var objectKinds = []struct {
	name   string
	lo, hi float64
}{
	{"keys", 20, 120},
	{"phone", 150, 250},
	{"bottle", 350, 650},
}

// Hysteresis a lean leaves on a shelf's after reading: |offset| uniform in
// [MinLeanG, MaxLeanG], either sign.
const (
	MinLeanG = 0.5
	MaxLeanG = 3
)

// drawClass picks a session's class from the mix.
func drawClass(rng *rand.Rand) Class {
	r := rng.IntN(100)
	for c, pct := range classPct {
		if r < pct {
			return Class(c)
		}
		r -= pct
	}
	return Ordinary
}

// shopper acts on the cabinet's true state.
type shopper struct {
	rng    *rand.Rand
	plan   Planogram
	state  []*trayState
	bought []bought
	// work is what the shopper did to each shelf, as the touch detector
	// tells it apart (touch.go).
	work []shelfWork
	// lifted is what the shopper lifted from each shelf, in order: units
	// bought, moved or put back (the lift counter's input, touch.go).
	lifted [][]unit
}

func newShopper(rng *rand.Rand, plan Planogram, state []*trayState) *shopper {
	return &shopper{rng: rng, plan: plan, state: state, work: make([]shelfWork, len(state)), lifted: make([][]unit, len(state))}
}

// did records work w on shelf i: a set-down outranks a lift, which
// outranks a lean.
func (s *shopper) did(i int, w shelfWork) {
	if s.work[i] == idle || s.work[i] == leaned || w == setDown {
		s.work[i] = w
	}
}

// bought is one unit paid for: taken from a shelf and not put back.
type bought struct {
	shelf int // index into plan.Shelves
	sku   string
}

// act plays the class on the state.
func (s *shopper) act(c Class) {
	switch c {
	case Ordinary:
		s.ordinary()
	case PutBack:
		s.ordinary()
		s.putBack()
	case Move:
		s.ordinary()
		s.move()
	case Object:
		s.ordinary()
		s.leaveObject()
	case Lean:
		s.ordinary()
		s.lean()
	case Big:
		s.big()
	}
}

// ordinary takes 1–3 units, from two shelves in TwoShelfPct of the
// purchases of more than one unit.
func (s *shopper) ordinary() {
	n := 1 + pickWeighted(s.rng, ordinaryUnitWeights)
	k := 1
	if n > 1 && s.rng.IntN(100) < TwoShelfPct {
		k = 2
	}
	s.buy(n, k)
}

// big takes MinBig..MaxBig units from 1..MaxBigShelves shelves.
func (s *shopper) big() {
	n := MinBig + s.rng.IntN(MaxBig-MinBig+1)
	s.buy(n, 1+s.rng.IntN(MaxBigShelves))
}

// buy takes n units from k shelves (each chosen shelf gives at least one
// unit while it has stock); each unit is a random SKU of its shelf,
// bounded by stock.
func (s *shopper) buy(n, k int) {
	shelves := s.rng.Perm(len(s.state))[:min(k, len(s.state))]
	for i := range n {
		si := shelves[s.rng.IntN(len(shelves))]
		if i < len(shelves) {
			si = shelves[i]
		}
		if u, ok := s.takeUnit(si); ok {
			s.did(si, lifted)
			s.lifted[si] = append(s.lifted[si], u)
			s.bought = append(s.bought, bought{shelf: si, sku: u.sku})
		}
	}
}

// takeUnit removes one unit of a random SKU of shelf si: the shopper
// reaches for a product, and for another of the shelf's products when that
// lane is empty.
func (s *shopper) takeUnit(si int) (unit, bool) {
	t := s.state[si]
	prods := s.plan.Shelves[si].Products
	want := prods[s.rng.IntN(len(prods))].SKU.SKU
	if t.count(want) == 0 {
		var left []string
		for _, p := range prods {
			if t.count(p.SKU.SKU) > 0 {
				left = append(left, p.SKU.SKU)
			}
		}
		if len(left) == 0 {
			return unit{}, false
		}
		want = left[s.rng.IntN(len(left))]
	}
	return t.remove(s.rng, want), true
}

// putBack lifts one unit of a random shelf and puts it back in its own
// lane, at a new position within the lane.
func (s *shopper) putBack() {
	si, ok := s.shelfWithGoods()
	if !ok {
		return
	}
	t := s.state[si]
	s.did(si, setDown)
	u := t.removeAny(s.rng)
	s.lifted[si] = append(s.lifted[si], u)
	u.x = t.lanePos(s.rng, u.sku)
	t.units = append(t.units, u)
}

// move carries one unit of a random shelf onto another shelf, where it is
// put down anywhere.
func (s *shopper) move() {
	if len(s.state) < 2 {
		return
	}
	from, ok := s.shelfWithGoods()
	if !ok {
		return
	}
	to := s.rng.IntN(len(s.state) - 1)
	if to >= from {
		to++
	}
	s.did(from, lifted)
	s.did(to, setDown)
	u := s.state[from].removeAny(s.rng)
	s.lifted[from] = append(s.lifted[from], u)
	u.x = s.rng.Float64()
	u.moved = true
	s.state[to].units = append(s.state[to].units, u)
}

// leaveObject puts a personal item anywhere on a random shelf.
func (s *shopper) leaveObject() {
	k := objectKinds[s.rng.IntN(len(objectKinds))]
	g := k.lo + (k.hi-k.lo)*s.rng.Float64()
	i := s.rng.IntN(len(s.state))
	s.did(i, setDown)
	t := s.state[i]
	t.units = append(t.units, unit{g: g, x: s.rng.Float64()})
}

// lean leaves a hysteresis offset on a random shelf, at a random point
// along it.
func (s *shopper) lean() {
	i := s.rng.IntN(len(s.state))
	if s.work[i] == idle {
		s.did(i, leaned)
	}
	t := s.state[i]
	g := MinLeanG + (MaxLeanG-MinLeanG)*s.rng.Float64()
	if s.rng.IntN(2) == 0 {
		g = -g
	}
	t.hyst = unit{g: g, x: s.rng.Float64()}
}

// shelfWithGoods picks a random shelf that holds at least one unit of its
// own products.
func (s *shopper) shelfWithGoods() (int, bool) {
	var ok []int
	for i, t := range s.state {
		if t.goodsCount() > 0 {
			ok = append(ok, i)
		}
	}
	if len(ok) == 0 {
		return 0, false
	}
	return ok[s.rng.IntN(len(ok))], true
}
