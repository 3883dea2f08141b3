package world

import (
	"math"
	"math/rand/v2"

	"github.com/bangfu/cabinet/firmware/infer"
)

// Load cells.
const (
	// SamplesPerReading is how many samples a settled reading averages.
	SamplesPerReading = 10
	// MaxCreepFrac bounds creep: the after reading lags the load change Δ
	// by f·Δ, f uniform in [0, MaxCreepFrac] per cell and session (the
	// anelastic part of the change has not yet come through when the
	// reading settles).
	MaxCreepFrac = 0.002
)

// load is the goods' weight on a shelf's left and right cell (the tray
// not included).
type load struct{ left, right float64 }

func (l load) total() float64 { return l.left + l.right }

// loadsOf is each tray's goods load: a unit of weight w at x loads the
// left cell by w(1−x) and the right by w·x.
func loadsOf(state []*trayState) []load {
	out := make([]load, len(state))
	for i, t := range state {
		for _, u := range t.units {
			out[i].left += u.g * (1 - u.x)
			out[i].right += u.g * u.x
		}
	}
	return out
}

// NoiseG is σ of a shelf's measured delta as the firmware computes it
// from the per-sample σ: two settled means of SamplesPerReading samples;
// on a two-cell shelf, σ of the two cells' summed delta.
func NoiseG(sigma float64, twoCell bool) float64 {
	sd := sigma * math.Sqrt(2.0/SamplesPerReading)
	if twoCell {
		sd *= math.Sqrt2
	}
	return sd
}

// shelfInput is shelf i's evidence for Infer: its readings before and
// after the session, on one cell or two, and the books' stock.
func (p Planogram) shelfInput(rng *rand.Rand, i int, before, after load, hyst unit, books map[string]int, sigma float64, twoCell bool) infer.Shelf {
	sh := p.Shelves[i]
	in := infer.Shelf{
		Shelf:  sh.Shelf,
		SKUs:   skusOf(sh.Products, twoCell),
		NoiseG: NoiseG(sigma, twoCell),
		Stock:  books,
	}
	if !twoCell {
		c := cell{before: sh.TrayG + before.total(), after: sh.TrayG + after.total(), hystG: hyst.g}
		in.BeforeG, in.AfterG = c.read(rng, sigma, p.DriftG)
		return in
	}
	// The tray stands centred: half its weight on each cell.
	l := cell{before: sh.TrayG/2 + before.left, after: sh.TrayG/2 + after.left, hystG: hyst.g * (1 - hyst.x)}
	r := cell{before: sh.TrayG/2 + before.right, after: sh.TrayG/2 + after.right, hystG: hyst.g * hyst.x}
	lb, la := l.read(rng, sigma, p.DriftG)
	rb, ra := r.read(rng, sigma, p.DriftG)
	in.TwoCell = true
	in.BeforeG, in.AfterG = lb+rb, la+ra
	in.RightBeforeG, in.RightAfterG = rb, ra
	return in
}

// cell is one load cell's true load before and after a session, and the
// hysteresis a lean left on it.
type cell struct{ before, after, hystG float64 }

// read returns the cell's settled readings before and after the session:
// noise on both; zero drift, creep and hysteresis on the after reading.
func (c cell) read(rng *rand.Rand, sigma, driftG float64) (before, after float64) {
	f := MaxCreepFrac * rng.Float64()
	before = settle(rng, c.before, sigma)
	after = settle(rng, c.after, sigma)
	after += rng.NormFloat64()*driftG - f*(c.after-c.before) + c.hystG
	return before, after
}

// settle is a settled reading: the mean of SamplesPerReading samples of
// the true load with Gaussian noise σ.
func settle(rng *rand.Rand, trueG, sigma float64) float64 {
	var sum float64
	for range SamplesPerReading {
		sum += trueG + rng.NormFloat64()*sigma
	}
	return sum / SamplesPerReading
}
