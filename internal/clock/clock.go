// Package clock holds the one context-aware sleep of the repository (every
// driver, the technician's tools and the link's backoff wait through Sleep,
// so that a wait always ends with its context) and the Clock interface the
// device loop and the simulator take, so that tests can run them on one
// fake clock. The fake clock tests inject is internal/clocktest.
//
// It imports the standard library only; nothing else in the repository may
// be imported from here.
package clock

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever comes first. It returns
// ctx.Err() if ctx ended, else nil.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Clock is time as the firmware and the simulator see it: Real, or a
// test's fake (internal/clocktest.Clock satisfies it), so that one clock
// moves the device loop, the scale filters and the simulated hardware
// together.
type Clock interface {
	Now() time.Time
	// After sends the clock's time once d has passed.
	After(d time.Duration) <-chan time.Time
	// Sleep waits d or until ctx ends (see the package's Sleep).
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
var Real Clock = wall{}

type wall struct{}

func (wall) Now() time.Time                                   { return time.Now() }
func (wall) After(d time.Duration) <-chan time.Time           { return time.After(d) }
func (wall) Sleep(ctx context.Context, d time.Duration) error { return Sleep(ctx, d) }
