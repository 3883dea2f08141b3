// Package clocktest is an injected clock that tests move by hand, so
// time-dependent code is tested without sleeping. It is for tests only.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a manual clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock standing at a fixed UTC instant.
func New() *Clock {
	return &Clock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}
}

// Now is the clock's time; pass it where code takes a func() time.Time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}
