// Package clocktest is the one fake clock of the repository: an injected
// clock that tests move by hand, so time-dependent code is tested without
// sleeping. It is for tests only; the real context-aware sleep is
// internal/clock.
//
// A Clock serves the three shapes of injected time in the repository: a
// func() time.Time (Now), a clock with After (timers that fire when Advance
// reaches them; BlockUntilContext waits for the code under test to set
// them), and a clock with Sleep (which moves the clock itself, so polling
// loops cost no wall time; OnSleep acts at an exact sleep).
//
// It imports the standard library only; nothing else in the repository may
// be imported from here.
package clocktest

import (
	"context"
	"sync"
	"time"
)

// Clock is a manual clock, safe for concurrent use. The zero Clock stands
// at the zero time.
type Clock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []waiter
	changed chan struct{} // closed and replaced whenever waiters changes
	sleeps  int
	onSleep func(n int)
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

// New returns a clock standing at a fixed UTC instant.
func New() *Clock {
	return At(time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC))
}

// At returns a clock standing at t.
func At(t time.Time) *Clock {
	return &Clock{t: t}
}

// Now is the clock's time; pass it where code takes a func() time.Time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d, fires the timers of After that are
// due, and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.advance(d)
}

func (c *Clock) advance(d time.Duration) time.Time {
	c.t = c.t.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.t) {
			kept = append(kept, w)
			continue
		}
		w.c <- c.t // buffered: never blocks
	}
	if len(kept) != len(c.waiters) {
		clear(c.waiters[len(kept):])
		c.waiters = kept
		c.notify()
	}
	return c.t
}

func (c *Clock) notify() {
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

// After returns a channel that receives the clock's time once Advance has
// moved it d past now; at once if d <= 0.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.t.Add(d), c: ch})
	c.notify()
	return ch
}

// BlockUntilContext returns once exactly n timers of After are waiting, or
// with ctx's error when ctx ends first.
func (c *Clock) BlockUntilContext(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		got, changed := len(c.waiters), c.changed
		c.mu.Unlock()
		if got == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Sleep moves the clock forward by d at once (firing due timers) instead of
// waiting, then calls the OnSleep hook. It returns ctx.Err() if ctx has
// ended, before or after the hook; a sleep on an ended context does not
// move the clock.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.advance(d)
	c.sleeps++
	n, hook := c.sleeps, c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return ctx.Err()
}

// OnSleep sets a hook that Sleep calls, outside the clock's lock, with the
// number of the sleep (from 1); nil removes it.
func (c *Clock) OnSleep(hook func(n int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onSleep = hook
}
