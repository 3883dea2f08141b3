package world

// The frontier's reading of the lift counts (touch.go, countLifts): the
// chance of a shelf's count given the units lifted from it, under the
// world's own grab, merge and drag process.

// liftKey names one question about a shelf's lifts: the units bought from
// it per product, and the unit lifted after them (a moved or put-back
// unit's product index; −1: none).
type liftKey struct {
	x    [maxShelfProducts]int8
	tail int8
}

// maxShelfProducts is the most products a shelf of the world holds.
const maxShelfProducts = 3

// liftsLik is P(shelf f's lift count | x bought from it, then tail), the
// units in any order alike (the shopper picks each unit's product at
// random). It is 1 when the count is not known, or when the shelf looks
// still: a still shelf's count is 0 whatever happened, and the flags'
// likelihood already weighs that.
func (f *fShelf) liftsLik(x []int, tail int) float64 {
	if !f.liftsKnown || f.still {
		return 1
	}
	var key liftKey
	n := 0
	for j, v := range x {
		key.x[j] = int8(v)
		n += v
	}
	key.tail = int8(tail)
	if p, ok := f.liftMemo[key]; ok {
		return p
	}
	var p float64
	if n == 0 && tail < 0 {
		p = boolP(f.lifts == 0)
	} else {
		memo := map[liftState]float64{}
		p = f.liftRest(memo, liftState{rem: key.x, last: -1, tail: key.tail, need: int8(f.lifts)})
	}
	if f.liftMemo == nil {
		f.liftMemo = map[liftKey]float64{}
	}
	f.liftMemo[key] = p
	return p
}

// liftState is a point in a shelf's lift sequence: the bought units not
// yet lifted, the product of the last unit lifted (−1: none yet), the size
// of its grab, the tail unit still to come (−1: none), and the lifts the
// rest must show.
type liftState struct {
	rem              [maxShelfProducts]int8
	last, size, tail int8
	need             int8
}

// liftRest is the chance that the units of s still to be lifted show
// exactly s.need lifts.
func (f *fShelf) liftRest(memo map[liftState]float64, s liftState) float64 {
	if s.need < 0 {
		return 0
	}
	if p, ok := memo[s]; ok {
		return p
	}
	left := 0
	for _, v := range s.rem {
		left += int(v)
	}
	var p float64
	switch {
	case left > 0:
		for j, v := range s.rem {
			if v == 0 {
				continue
			}
			next := s
			next.rem[j]--
			p += float64(v) / float64(left) * f.liftStep(memo, next, j)
		}
	case s.tail >= 0:
		next := s
		next.tail = -1
		p = f.liftStep(memo, next, int(s.tail))
	default:
		p = boolP(s.need == 0)
	}
	memo[s] = p
	return p
}

// liftStep lifts a unit of product u, then the rest of s (whose rem and
// tail already leave u out), as countLifts does.
func (f *fShelf) liftStep(memo map[liftState]float64, s liftState, u int) float64 {
	grab := func(size int8, lifts int8) float64 {
		next := s
		next.last, next.size, next.need = int8(u), size, s.need-lifts
		return f.liftRest(memo, next)
	}
	// A new grab: seen as one lift, or two when dragged.
	newGrab := func() float64 {
		return (1-LiftDragP)*grab(1, 1) + LiftDragP*grab(1, 2)
	}
	if s.last < 0 {
		return newGrab()
	}
	var p, pg float64
	if s.size < MaxGrab {
		pg = GrabMixP
		if int(s.last) == u {
			pg = grabSameP(f.prods[u].UnitG)
		}
		p += pg * grab(s.size+1, 0)
	}
	return p + (1-pg)*(LiftMergeP*grab(1, 0)+(1-LiftMergeP)*newGrab())
}

func boolP(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
