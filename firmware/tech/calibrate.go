package tech

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/internal/clock"
)

// Reasons Calibrate refuses a calibration.
var (
	// ErrNoisyTare means the empty shelf's counts spread too much.
	ErrNoisyTare = errors.New("tech: tare is noisy")
	// ErrUnsteady means a reference weight's counts spread too much.
	ErrUnsteady = errors.New("tech: reading not steady")
	// ErrNoSlope means the counts hardly changed with the weight: no load
	// cell, a broken wire, or the weight was not placed.
	ErrNoSlope = errors.New("tech: counts do not follow the weight")
	// ErrBadFit means a reference point is further from the fitted line
	// than MaxResidualG: a weight placed off the cell, touching the frame,
	// a wrong --ref, or a non-linear cell.
	ErrBadFit = errors.New("tech: reference points do not fit one line")
)

// CalibrateOpts tunes Calibrate. Zero fields take the values of
// DefaultCalibrateOpts.
type CalibrateOpts struct {
	// Samples is how many raw samples are averaged at each point.
	Samples int
	// Settle is how long after the technician confirms a step the shelf is
	// left to stop swinging before sampling.
	Settle time.Duration
	// MaxTareStdCounts refuses a tare whose raw σ exceeds it before any
	// weight is placed: a gross fault (floating input, loose wire). The
	// grams check, MaxNoiseG, follows once the factor is known.
	MaxTareStdCounts float64
	// MaxNoiseG is the largest σ, in grams, of the tare or of a reference
	// reading.
	MaxNoiseG float64
	// MaxResidualG is the largest distance of a reference point from the
	// fitted line, in grams.
	MaxResidualG float64
	// MinCountsPerGram is the smallest |counts per gram| accepted; an
	// HX711 at gain 128 gives tens to hundreds with a typical shelf cell.
	MinCountsPerGram float64
	// UnlockTimeout is how long the shelf's lock may take to report open.
	UnlockTimeout time.Duration
	// Out receives progress lines; nil discards them.
	Out io.Writer
	// Clock stamps the result; default time.Now.
	Clock func() time.Time
}

// DefaultCalibrateOpts are the values zero fields of CalibrateOpts fall
// back to.
var DefaultCalibrateOpts = CalibrateOpts{
	Samples:          20,
	Settle:           2 * time.Second,
	MaxTareStdCounts: 2000,
	MaxNoiseG:        2,
	MaxResidualG:     2,
	MinCountsPerGram: 1,
	UnlockTimeout:    3 * time.Second,
}

// maxRefGrams bounds a reference weight: beyond it the input is a typo.
const maxRefGrams = 200000

func (o *CalibrateOpts) resolve() CalibrateOpts {
	r := DefaultCalibrateOpts
	if o != nil {
		if o.Samples > 1 {
			r.Samples = o.Samples
		}
		if o.Settle > 0 {
			r.Settle = o.Settle
		}
		if o.MaxTareStdCounts > 0 {
			r.MaxTareStdCounts = o.MaxTareStdCounts
		}
		if o.MaxNoiseG > 0 {
			r.MaxNoiseG = o.MaxNoiseG
		}
		if o.MaxResidualG > 0 {
			r.MaxResidualG = o.MaxResidualG
		}
		if o.MinCountsPerGram > 0 {
			r.MinCountsPerGram = o.MinCountsPerGram
		}
		if o.UnlockTimeout > 0 {
			r.UnlockTimeout = o.UnlockTimeout
		}
		r.Out, r.Clock = o.Out, o.Clock
	}
	if r.Out == nil {
		r.Out = io.Discard
	}
	if r.Clock == nil {
		r.Clock = time.Now
	}
	return r
}

// Calibrate calibrates one shelf: it unlocks the shelf's door, tares the
// empty shelf (the mean of Samples raw counts, its spread checked), then
// has the technician place each reference weight in refs (grams, the total
// on the shelf; placed in ascending order) and fits counts per gram by
// least squares through the tare: k = Σ gᵢ·dᵢ / Σ gᵢ², dᵢ the counts above
// tare. It refuses a noisy tare (ErrNoisyTare), an unsteady reading
// (ErrUnsteady), a factor near zero (ErrNoSlope) and a point further than
// MaxResidualG from the line (ErrBadFit). The result is for the caller to
// store with ledger.SaveCalibration; its Counter is not set.
//
// With one reference the line passes through it exactly, so the residual
// cannot show a misplaced weight: use two or more.
//
// On a shelf carried by two load cells Calibrate calibrates the left one:
// see CalibrateCell.
func Calibrate(ctx context.Context, rig Rig, shelf int, p Prompter, refs []float64, o *CalibrateOpts) (ledger.StoredCalibration, error) {
	return CalibrateCell(ctx, rig, shelf, ledger.CellLeft, p, refs, o)
}

// CalibrateCell is Calibrate for one load cell of a shelf: CellLeft is a
// one-cell shelf's only cell. On a shelf carried by two cells (rig.RawRight
// has it) each cell is calibrated on its own, from its own amplifier's raw
// counts: the tare is that cell's share of the empty tray, and each
// reference weight is placed directly over that cell (at its end of the
// tray), so that the cell carries all of it and the other cell none. The
// result is for ledger.SaveCellCalibration with the same cell.
func CalibrateCell(ctx context.Context, rig Rig, shelf int, cell ledger.Cell, p Prompter, refs []float64, o *CalibrateOpts) (ledger.StoredCalibration, error) {
	opts := o.resolve()
	say := func(format string, a ...any) { fmt.Fprintf(opts.Out, format+"\n", a...) }
	var none ledger.StoredCalibration
	twoCell := rig.RawRight[shelf] != nil
	name := fmt.Sprintf("shelf %d", shelf) // what messages call the cell
	promptCell, note := ledger.Cell(""), ""
	if twoCell {
		name = fmt.Sprintf("shelf %d %s cell", shelf, cell)
		promptCell, note = cell, fmt.Sprintf(" (%s cell)", cell)
	}
	var raw hal.RawScale
	switch cell {
	case ledger.CellLeft:
		raw = rig.Raw[shelf]
	case ledger.CellRight:
		raw = rig.RawRight[shelf]
		if raw == nil && rig.Raw[shelf] != nil {
			return none, fmt.Errorf("tech: shelf %d has one load cell: it has no right cell to calibrate", shelf)
		}
	default:
		return none, fmt.Errorf("tech: shelf %d: unknown load cell %q (want left or right)", shelf, string(cell))
	}
	if raw == nil {
		return none, fmt.Errorf("tech: shelf %d: no raw scale in the rig", shelf)
	}
	if len(refs) == 0 {
		return none, errors.New("tech: no reference weights")
	}
	refs = slices.Clone(refs)
	for _, g := range refs {
		if !(g > 0 && g <= maxRefGrams) {
			return none, fmt.Errorf("tech: reference weight %v g outside (0, %d] g", g, maxRefGrams)
		}
	}
	slices.Sort(refs)
	doorNum := 0
	for _, s := range rig.Cabinet.Shelves {
		if s.Number == shelf {
			doorNum = s.Door
		}
	}
	var lock hal.Lock
	for _, d := range rig.Cabinet.Doors {
		if d.Number == doorNum {
			lock = d.Lock
		}
	}
	if lock != nil {
		if err := lock.Energise(ctx); err != nil {
			return none, fmt.Errorf("tech: unlock door %d: %w", doorNum, err)
		}
		defer func() {
			if err := release(ctx, lock); err != nil {
				say("warning: %v", err)
			}
		}()
		if err := waitUnlocked(ctx, lock, opts.UnlockTimeout); err != nil {
			return none, fmt.Errorf("tech: door %d: %w", doorNum, err)
		}
	}
	if err := p.Wait(ctx, Prompt{Kind: KindOpenDoor, Door: doorNum,
		Text: fmt.Sprintf("Door %d is unlocked: open it.", doorNum)}); err != nil {
		return none, err
	}
	yes, err := p.Ask(ctx, Prompt{Kind: KindEmptyShelf, Shelf: shelf, Door: doorNum, Cell: promptCell,
		Text: fmt.Sprintf("Is shelf %d empty (nothing on the tray) and still?", shelf)})
	if err != nil {
		return none, err
	}
	if !yes {
		return none, ErrAborted
	}
	tare, err := measure(ctx, raw, opts)
	if err != nil {
		return none, fmt.Errorf("tech: %s tare: %w", name, err)
	}
	say("tare: %.0f counts, σ %.1f counts (n=%d)", tare.mean, tare.std, tare.n)
	if tare.std > opts.MaxTareStdCounts {
		return none, fmt.Errorf("%w: σ %.0f counts above %.0f with shelf %d empty%s; check the load cell wiring",
			ErrNoisyTare, tare.std, opts.MaxTareStdCounts, shelf, note)
	}

	points := make([]ledger.CalPoint, len(refs))
	stds := make([]float64, len(refs))
	for i, g := range refs {
		text := fmt.Sprintf("Put reference weights totalling %g g in the middle of shelf %d. Are they on and still?", g, shelf)
		if twoCell {
			text = fmt.Sprintf("Put reference weights totalling %g g on shelf %d directly over its %s load cell (at the %s end of the tray, nothing over the other cell). Are they on and still?",
				g, shelf, cell, cell)
		}
		yes, err := p.Ask(ctx, Prompt{Kind: KindPlaceWeight, Shelf: shelf, Door: doorNum, Grams: g, Cell: promptCell, Text: text})
		if err != nil {
			return none, err
		}
		if !yes {
			return none, ErrAborted
		}
		m, err := measure(ctx, raw, opts)
		if err != nil {
			return none, fmt.Errorf("tech: %s at %g g: %w", name, g, err)
		}
		say("%g g: %.0f counts, σ %.1f counts (n=%d)", g, m.mean, m.std, m.n)
		points[i] = ledger.CalPoint{Grams: g, MeanRaw: m.mean}
		stds[i] = m.std
	}
	if err := p.Wait(ctx, Prompt{Kind: KindRemoveWeights, Shelf: shelf, Door: doorNum, Cell: promptCell,
		Text: fmt.Sprintf("Take the weights off shelf %d and close door %d.", shelf, doorNum)}); err != nil {
		return none, err
	}

	var sgd, sgg float64
	for _, pt := range points {
		sgd += pt.Grams * (pt.MeanRaw - tare.mean)
		sgg += pt.Grams * pt.Grams
	}
	k := sgd / sgg
	if math.IsNaN(k) || math.Abs(k) < opts.MinCountsPerGram {
		where := fmt.Sprintf("shelf %d", shelf)
		if twoCell {
			where = fmt.Sprintf("shelf %d over its %s cell", shelf, cell)
		}
		return none, fmt.Errorf("%w: %.3f counts per gram (need at least %g): is the load cell connected and the weight on %s?",
			ErrNoSlope, k, opts.MinCountsPerGram, where)
	}
	worst := 0.0
	var lines []string
	for i := range points {
		pt := &points[i]
		pt.ResidualG = (pt.MeanRaw-tare.mean)/k - pt.Grams
		worst = max(worst, math.Abs(pt.ResidualG))
		lines = append(lines, fmt.Sprintf("%g g reads %+.2f g", pt.Grams, pt.ResidualG))
	}
	say("fit: %.4f counts per gram; residuals: %s", k, strings.Join(lines, ", "))
	if tg := tare.std / math.Abs(k); tg > opts.MaxNoiseG {
		return none, fmt.Errorf("%w: σ %.2f g above %.2f g with shelf %d empty%s", ErrNoisyTare, tg, opts.MaxNoiseG, shelf, note)
	}
	for i, pt := range points {
		if sg := stds[i] / math.Abs(k); sg > opts.MaxNoiseG {
			return none, fmt.Errorf("%w: σ %.2f g above %.2f g at %g g on %s", ErrUnsteady, sg, opts.MaxNoiseG, pt.Grams, name)
		}
	}
	if worst > opts.MaxResidualG {
		return none, fmt.Errorf("%w: %s (limit ±%.2f g)", ErrBadFit, strings.Join(lines, ", "), opts.MaxResidualG)
	}
	cal := scale.Calibration{
		Offset:        int32(math.Round(min(max(tare.mean, float64(scale.RawMin)), float64(scale.RawMax)))),
		CountsPerGram: k,
	}
	if err := cal.Validate(); err != nil {
		return none, fmt.Errorf("tech: %w", err)
	}
	return ledger.StoredCalibration{
		Calibration:   cal,
		At:            opts.Clock().UTC(),
		Points:        points,
		TareStdCounts: tare.std,
	}, nil
}

// waitUnlocked polls the lock's feedback until it reports open.
func waitUnlocked(ctx context.Context, l hal.Lock, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		locked, err := l.Locked(ctx)
		if err == nil && !locked {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("lock feedback: %w", err)
			}
			return fmt.Errorf("lock still reports locked after %v", timeout)
		}
		if err := clock.Sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// measure waits Settle, then averages Samples raw counts.
func measure(ctx context.Context, raw hal.RawScale, o CalibrateOpts) (rawStats, error) {
	if err := clock.Sleep(ctx, o.Settle); err != nil {
		return rawStats{}, err
	}
	v := make([]int32, 0, o.Samples)
	for len(v) < o.Samples {
		x, err := raw.ReadRaw(ctx)
		if err != nil {
			return rawStats{}, fmt.Errorf("read %s: %w", raw, err)
		}
		if x >= scale.RawMax || x <= scale.RawMin {
			return rawStats{}, fmt.Errorf("%s at full scale (%d): overloaded or miswired: %w", raw, x, scale.ErrSaturated)
		}
		v = append(v, x)
	}
	return statsOf(v), nil
}
