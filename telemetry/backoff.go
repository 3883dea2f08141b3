package telemetry

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/bangfu/cabinet/internal/clock"
)

// Backoff is exponential backoff with full jitter, so a fleet that lost its
// broker at the same moment does not reconnect in lockstep.
type Backoff struct {
	min, max time.Duration
	cur      time.Duration
	rnd      func() float64
}

// Bounds NewBackoff clamps to: a minimum of zero would never grow (the
// reconnect loop would hammer the broker), and keeping max ≤ 1<<62 keeps
// min + jitter inside int64.
const (
	backoffFloor   = time.Millisecond
	backoffCeiling = time.Duration(1 << 62)
)

// NewBackoff returns a backoff between min and max; rnd (a uniform [0,1)
// source) may be nil for math/rand/v2. min is raised to 1ms and max to
// min, so a misconfigured backoff still backs off.
func NewBackoff(min, max time.Duration, rnd func() float64) *Backoff {
	if rnd == nil {
		rnd = rand.Float64
	}
	min = clampDur(min, backoffFloor, backoffCeiling)
	max = clampDur(max, min, backoffCeiling)
	return &Backoff{min: min, max: max, rnd: rnd}
}

func clampDur(d, lo, hi time.Duration) time.Duration {
	switch {
	case d < lo:
		return lo
	case d > hi:
		return hi
	}
	return d
}

// Next returns the next wait: uniform in [min, cur], cur doubling up to max.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		if b.cur > b.max/2 { // compare before doubling: never overflows
			b.cur = b.max
		} else {
			b.cur *= 2
		}
	}
	return b.min + time.Duration(b.rnd()*float64(b.cur-b.min+1))
}

// Reset starts again from min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits Next() or until ctx ends; it reports whether ctx is still live.
func (b *Backoff) Sleep(ctx context.Context) bool {
	return clock.Sleep(ctx, b.Next()) == nil
}
