package world

import (
	"math"
	"math/rand/v2"
)

// The touch detector. While the door is open the firmware watches every
// shelf's weight; a shelf whose weight never left its before reading by
// TouchG for a moment is reported Still. A unit lifted or set down always
// moves a shelf by its weight, so a shelf the shopper worked on is seen,
// except when its net change is small and the work was one quick swap (a
// unit set down while its look-alike is lifted), or a light lean. A shelf
// nobody worked on can look touched too: a sleeve brushes it, a bag rests on
// it, or the whole cabinet is jolted (a slammed door, a shopper bumping the
// side) and no shelf looks still at all.
const (
	// TouchG is the detector's threshold in grams.
	TouchG = 10
	// SwapStillP is the chance that a shelf where units were lifted or set
	// down, with a net change below TouchG, looks still.
	SwapStillP = 0.05
	// LeanStillP is the chance that a shelf leaned on looks still.
	LeanStillP = 0.3
	// FalseTouchP is the chance that a shelf nobody worked on looks
	// touched.
	FalseTouchP = 0.1
	// JoltP is the share of sessions in which a jolt makes every shelf
	// look touched.
	JoltP = 0.05
)

// stillFlags draws what the touch detector reports for each shelf, from the
// shelves the shopper worked on (worked), leaned on (leaned), and the true
// loads before and after.
func stillFlags(rng *rand.Rand, worked, leaned []bool, before, after []load) []bool {
	out := make([]bool, len(worked))
	jolt := rng.Float64() < JoltP
	for i := range out {
		u := rng.Float64()
		switch {
		case jolt:
		case worked[i]:
			out[i] = math.Abs(after[i].total()-before[i].total()) < TouchG && u < SwapStillP
		case leaned[i]:
			out[i] = u < LeanStillP
		default:
			out[i] = u >= FalseTouchP
		}
	}
	return out
}
