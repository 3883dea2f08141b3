package world

import (
	"math"
	"math/rand/v2"
)

// The touch detector. While the door is open the firmware watches every
// shelf's weight. A shelf whose weight never left its before reading by
// TouchG is reported Still; one whose weight never rose by TouchG above the
// lowest it had been is reported NeverRose (units may have been lifted from
// it, nothing was set down on it).
//
// A unit lifted or set down always moves a shelf by its weight, so a shelf
// the shopper worked on is seen, except when its net change is small and
// the work was one quick swap (SwapStillP), and a unit set down shows as a
// rise except when it went down in the same moment as something of its
// weight was lifted (SetDownUnseenP). The detector also sees more than
// happened: a hand resting on a shelf while taking from it looks like a
// rise (HandRestP), a lean presses a shelf down, a sleeve brushes a shelf
// nobody worked on (FalseTouchP), and a jolt (a slammed door, a shopper
// bumping the cabinet) leaves no shelf looking still or never-risen.
const (
	// TouchG is the detector's threshold in grams.
	TouchG = 10
	// SwapStillP is the chance that a shelf where units were lifted or set
	// down, with a net change below TouchG, looks still.
	SwapStillP = 0.05
	// SetDownUnseenP is the chance that a shelf where something was set
	// down shows no rise.
	SetDownUnseenP = 0.05
	// HandRestP is the chance that a shelf units were only lifted from
	// shows a rise.
	HandRestP = 0.2
	// LeanStillP is the chance that a shelf leaned on looks still; when it
	// does not, the lean shows as a rise.
	LeanStillP = 0.3
	// FalseTouchP is the chance that a shelf nobody worked on looks
	// touched; half of those touches show as a rise.
	FalseTouchP = 0.1
	// JoltP is the share of sessions in which a jolt makes every shelf
	// look touched and risen.
	JoltP = 0.05
)

// shelfWork is what a shopper did to one shelf, as the touch detector
// tells it apart.
type shelfWork int

const (
	idle    shelfWork = iota
	lifted            // units lifted from it, nothing set down
	setDown           // something set down on it (a put-back, a moved unit, an object)
	leaned            // leaned on, nothing lifted or set down
	numWork
)

// touchFlags is the detector's verdict on one shelf.
type touchFlags struct{ still, neverRose bool }

// drawTouch draws the detector's verdict on a shelf the shopper worked as
// w, whose true net change is small (below TouchG) or not.
func drawTouch(rng *rand.Rand, w shelfWork, small bool) touchFlags {
	u, v := rng.Float64(), rng.Float64()
	var f touchFlags
	switch w {
	case idle:
		f.still = u >= FalseTouchP
		f.neverRose = f.still || v < 0.5
	case lifted:
		f.still = small && u < SwapStillP
		f.neverRose = f.still || v >= HandRestP
	case setDown:
		f.still = small && u < SwapStillP
		f.neverRose = f.still || v < SetDownUnseenP
	case leaned:
		f.still = u < LeanStillP
		f.neverRose = f.still
	}
	return f
}

// touchP is the probability of the verdict f on a shelf worked as w
// (drawTouch's distribution, outside a jolt).
func touchP(f touchFlags, w shelfWork, small bool) float64 {
	pick := func(p float64, b bool) float64 {
		if b {
			return p
		}
		return 1 - p
	}
	var still, rise float64 // P(still); P(never rose | not still)
	switch w {
	case idle:
		still, rise = 1-FalseTouchP, 0.5
	case lifted, setDown:
		if small {
			still = SwapStillP
		}
		rise = 1 - HandRestP
		if w == setDown {
			rise = SetDownUnseenP
		}
	case leaned:
		still, rise = LeanStillP, 0
	}
	if f.still {
		return still
	}
	return (1 - still) * pick(rise, f.neverRose)
}

// touchFlagsOf draws every shelf's verdict: from what the shopper did to
// it and the true loads before and after, or, in a jolt, nothing.
func touchFlagsOf(rng *rand.Rand, work []shelfWork, before, after []load) (flags []touchFlags, jolt bool) {
	out := make([]touchFlags, len(work))
	if rng.Float64() < JoltP {
		return out, true
	}
	for i, w := range work {
		out[i] = drawTouch(rng, w, math.Abs(after[i].total()-before[i].total()) < TouchG)
	}
	return out, false
}

// The lift counter. The watch also counts a shelf's lifts: each time its
// weight holds a level below the lowest it has held (infer.Shelf.Lifts).
// Shoppers lift units one at a time or a few in one hand: light packs
// often two together, jars and bags rarely; a grab that follows the one
// before within the watch's hold time shows as one lift with it, and a
// unit dragged to the shelf's edge before it is lifted shows as two.
// A lean or a resting hand presses a shelf and is no lift; in a jolt the
// counts are not known.
const (
	// GrabLightP, GrabMidP and GrabHeavyP are the chances that a unit of
	// at most LightG, at most HeavyG or more goes up in the same grab as
	// the unit before it, of the same product. No standard pack's weight
	// is near either limit.
	GrabLightP = 0.35
	GrabMidP   = 0.15
	GrabHeavyP = 0.03
	LightG     = 300
	HeavyG     = 600
	// GrabMixP is the same chance for a unit of another product.
	GrabMixP = 0.1
	// MaxGrab is the most units one grab holds.
	MaxGrab = 3
	// LiftMergeP is the chance that a grab follows the one before too fast
	// to show as a lift of its own.
	LiftMergeP = 0.07
	// LiftDragP is the chance that a grab shows as two lifts.
	LiftDragP = 0.04
)

// countLifts draws the lifts the watch counts on a shelf from which the
// units us were lifted, in order.
func countLifts(rng *rand.Rand, us []unit) int {
	k, size := 0, 0
	for i, u := range us {
		if i > 0 && size < MaxGrab && rng.Float64() < grabP(us[i-1], u) {
			size++
			continue
		}
		size = 1
		if i > 0 && rng.Float64() < LiftMergeP {
			continue
		}
		k++
		if rng.Float64() < LiftDragP {
			k++
		}
	}
	return k
}

// grabP is the chance that unit u goes up in the same grab as prev.
func grabP(prev, u unit) float64 {
	switch {
	case prev.sku != u.sku:
		return GrabMixP
	}
	return grabSameP(u.g)
}

// grabSameP is the chance that a unit of weight g goes up in the same grab
// as the unit of its product before it.
func grabSameP(g float64) float64 {
	switch {
	case g <= LightG:
		return GrabLightP
	case g <= HeavyG:
		return GrabMidP
	}
	return GrabHeavyP
}
