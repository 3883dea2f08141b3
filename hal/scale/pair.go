package scale

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/bangfu/cabinet/hal"
)

// PairCalibration is the calibration of a Filter over a Pair: a Pair's
// counts are already calibrated grams, in centigrams (1 count = 10 mg).
//
// Centigrams, not milligrams: a Filter treats counts at a 24-bit amplifier's
// full scale (RawMax, RawMin) as saturation, so the unit sets the largest
// total a shelf may carry before it reads as overloaded. In centigrams that
// is ±83.8 kg, past any shelf; in milligrams it would be 8.4 kg, which a
// shelf of bottles exceeds. 10 mg is far below an HX711's noise.
var PairCalibration = Calibration{Offset: 0, CountsPerGram: 100}

// Pair is the raw device of a shelf carried by two load cells (a left and a
// right one): each ReadRaw reads one sample of each cell, converts each to
// grams with that cell's own calibration (offsets and counts per gram
// differ from cell to cell, so raw counts cannot be added) and returns the
// sum in centigrams, for a Filter with PairCalibration. The tare lives in
// the cells' offsets, so an empty shelf's total reads 0 g as a one-cell
// shelf's does, and the Filter judges, smooths and faults the total like
// any other scale.
//
// The two samples are paired in time: the left cell is read first, then
// the right one. Two chips on one shared clock line are converted together
// (hx711.Group), so the right channel's sample is the one clocked out with
// the left's. Chips on separate clocks are read one after the other, the
// right one's sample at most one conversion period later.
//
// The sum is never a half-weight: when either cell fails (not ready, stuck,
// unplugged) the total fails too, and when either is saturated the total
// is (RawMax or RawMin), so its Filter reports ErrNoData or ErrSaturated
// with hal.ErrFault.
//
// Right returns a view of the right cell alone, served from the same reads
// (a cell's samples are not read twice): a Filter over it with the right
// cell's calibration is hal.Shelf.Right. The view only gets samples while
// something (the total's Filter.Run) reads the Pair.
type Pair struct {
	left, right hal.RawScale
	lcal, rcal  Calibration

	mu   sync.Mutex
	seq  uint64        // pair reads so far
	rval int32         // the right cell's newest sample
	rerr error         // and its error
	wake chan struct{} // closed and replaced after every pair read
	rv   *pairRight
}

// NewPair returns the sum of left and right, calibrated with lcal and rcal.
func NewPair(left, right hal.RawScale, lcal, rcal Calibration) (*Pair, error) {
	if left == nil || right == nil {
		return nil, errors.New("scale: pair needs a left and a right cell")
	}
	if err := lcal.Validate(); err != nil {
		return nil, fmt.Errorf("scale: left cell: %w", err)
	}
	if err := rcal.Validate(); err != nil {
		return nil, fmt.Errorf("scale: right cell: %w", err)
	}
	p := &Pair{left: left, right: right, lcal: lcal, rcal: rcal, wake: make(chan struct{})}
	p.rv = &pairRight{p: p}
	return p, nil
}

// String names both cells.
func (p *Pair) String() string { return fmt.Sprintf("%s + %s", p.left, p.right) }

// Halt halts both cells.
func (p *Pair) Halt() error { return errors.Join(p.left.Halt(), p.right.Halt()) }

// Right returns the right cell's view (see Pair).
func (p *Pair) Right() hal.RawScale { return p.rv }

// ReadRaw reads one sample of each cell and returns their calibrated sum in
// centigrams (see Pair).
func (p *Pair) ReadRaw(ctx context.Context) (int32, error) {
	l, lerr := p.left.ReadRaw(ctx)
	if lerr != nil && ctx.Err() != nil {
		return 0, lerr
	}
	r, rerr := p.right.ReadRaw(ctx)
	if rerr != nil && ctx.Err() != nil {
		return 0, rerr
	}
	p.publish(r, rerr)
	switch {
	case lerr != nil && rerr != nil:
		return 0, fmt.Errorf("scale: %s: both cells failed: %w", p, errors.Join(lerr, rerr))
	case lerr != nil:
		return 0, fmt.Errorf("scale: %s: left cell: %w", p, lerr)
	case rerr != nil:
		return 0, fmt.Errorf("scale: %s: right cell: %w", p, rerr)
	}
	return p.sum(l, r), nil
}

// sum is the total of samples l and r in centigrams, at full scale when
// either is.
func (p *Pair) sum(l, r int32) int32 {
	switch {
	case l >= RawMax || r >= RawMax:
		return RawMax
	case l <= RawMin || r <= RawMin:
		return RawMin
	}
	cg := math.Round((p.lcal.Grams(float64(l)) + p.rcal.Grams(float64(r))) * PairCalibration.CountsPerGram)
	switch {
	case cg >= float64(RawMax):
		return RawMax
	case cg <= float64(RawMin):
		return RawMin
	}
	return int32(cg)
}

// publish hands the right cell's sample to its view.
func (p *Pair) publish(r int32, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.rval, p.rerr = r, err
	close(p.wake)
	p.wake = make(chan struct{})
}

// pairRight is the right cell's view of a Pair.
type pairRight struct {
	p    *Pair
	mu   sync.Mutex // one reader at a time
	seen uint64
}

// ReadRaw waits for the next pair read and returns its right sample (the
// newest one if this view fell behind).
func (v *pairRight) ReadRaw(ctx context.Context) (int32, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.p
	for {
		p.mu.Lock()
		if p.seq != v.seen {
			v.seen = p.seq
			r, err := p.rval, p.rerr
			p.mu.Unlock()
			return r, err
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (v *pairRight) String() string { return v.p.right.String() }

// Halt does nothing: the cell belongs to the Pair, which halts it.
func (v *pairRight) Halt() error { return nil }

var (
	_ hal.RawScale = (*Pair)(nil)
	_ hal.RawScale = (*pairRight)(nil)
)
