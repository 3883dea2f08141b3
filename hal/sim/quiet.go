package sim

import (
	"math"
	"time"
)

// quietHW implements hal.Quiet for the cabinet (see Cabinet.Hush).
type quietHW struct{ c *Cabinet }

func (q quietHW) Hush() (<-chan struct{}, bool) { return q.c.Hush() }
func (q quietHW) Wake()                         { q.c.Wake() }

// quietFrac is the share of the noise σ by which the physics may still
// move a reading after a hush: a fifth, about half the uncertainty of the
// mean of a filter window of eight samples, so that what a hush holds is
// as good as a fresh window.
const quietFrac = 0.2

// settleBounces is how many bounce times after a door's last reed-switch
// edge its debounced level is sure to have settled (the debouncer needs
// two).
const settleBounces = 4

// Hush stops the scales' sampling while nothing in the cabinet changes
// (hal.Quiet): every Filter holds its window until the next change in the
// world — any door, load, lean, lock, power, temperature or fault method,
// or the firmware energising or releasing a lock — or Wake. It refuses (ok
// false) while the physics still moves the readings: a door or lock in
// motion, a shelf still ringing, creep or the cells' temperature still
// drifting by more than a fifth of the noise (quietFrac of Config.NoiseG;
// 0.01 g when the noise is off), a scale fault, or no power.
func (c *Cabinet) Hush() (ended <-chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hush != nil {
		return c.hush, true
	}
	if !c.quiescent(c.clock()) {
		return nil, false
	}
	c.hush = make(chan struct{})
	for _, s := range c.shelves {
		s.filter.Hold()
		if s.right != nil {
			s.right.Hold()
		}
	}
	if c.began != nil {
		close(c.began) // Run stops the Filters' goroutines
		c.began = nil
	}
	return c.hush, true
}

// Wake ends a hush (hal.Quiet): sampling resumes at once.
func (c *Cabinet) Wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir()
}

// Hushed reports whether the scales are held by a hush.
func (c *Cabinet) Hushed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hush != nil
}

// stir ends a hush, if any, because the world changes; c.mu is held.
func (c *Cabinet) stir() {
	if c.hush == nil {
		return
	}
	for _, s := range c.shelves {
		s.filter.Release()
		if s.right != nil {
			s.right.Release()
		}
	}
	close(c.hush)
	c.hush = nil
}

// quiescent reports whether nothing the hal devices observe moves at now
// beyond the noise (see Hush); c.mu is held.
func (c *Cabinet) quiescent(now time.Time) bool {
	if !c.powered {
		return false
	}
	for _, d := range c.doors {
		d.advanceLock(now, c.cfg.LockReleaseTime)
		if d.open || d.energised || !d.boltOut {
			return false
		}
		if n := len(d.edges); n > 0 && now.Sub(d.edges[n-1].at) < settleBounces*c.cfg.BounceTime {
			return false
		}
	}
	eps := quietFrac * c.cfg.NoiseG
	if eps <= 0 {
		eps = 0.01
	}
	ringTau := c.cfg.SettleTime / 4 // as grams: a ring is gone after 12 of these
	for _, s := range c.shelves {
		if s.fault != "" {
			return false
		}
		for _, v := range s.vibs {
			if ringTau > 0 && now.Sub(v.at) <= 12*ringTau {
				return false
			}
		}
		dT := math.Abs(s.cellTemp(now, c.cfg.CellTau) - s.airC) // drift still to come
		for _, cell := range s.cells {
			creep := c.cfg.CreepFrac * math.Abs(cell.creepPending) * decay(now.Sub(cell.creepAt), c.cfg.CreepTau)
			thermal := dT * (math.Abs(cell.zeroPerC) + c.cfg.SpanPerC*math.Abs(cell.loadG+cell.leanG))
			if creep+thermal > eps {
				return false
			}
		}
	}
	return true
}
