package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bangfu/cabinet/hal"
)

// live fails when ctx has ended or the cabinet has no power; c.mu is held.
func (c *Cabinet) live(ctx context.Context, dev fmt.Stringer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sim: %s: %w", dev, err)
	}
	if !c.powered {
		return fmt.Errorf("sim: %s: no power: %w", dev, hal.ErrClosed)
	}
	return nil
}

// lock is a door's fail-secure lock with bolt feedback.
type lock struct {
	c *Cabinet
	d *door
}

// Energise pulls the bolt; it is out of the way LockReleaseTime later,
// unless the lock is jammed.
func (l *lock) Energise(ctx context.Context) error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if err := l.c.live(ctx, l); err != nil {
		return err
	}
	if !l.d.energised {
		l.c.stir()
	}
	l.d.energise(l.c.clock(), l.c.cfg.LockReleaseTime)
	return nil
}

// Release lets the bolt go; it extends at once if the door is closed, or
// when the door closes.
func (l *lock) Release(ctx context.Context) error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if err := l.c.live(ctx, l); err != nil {
		return err
	}
	if l.d.energised {
		l.c.stir()
	}
	l.d.release(l.c.clock(), l.c.cfg.LockReleaseTime)
	return nil
}

// Locked reports the bolt's true position, jammed or not.
func (l *lock) Locked(ctx context.Context) (bool, error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if err := l.c.live(ctx, l); err != nil {
		return false, err
	}
	l.d.advanceLock(l.c.clock(), l.c.cfg.LockReleaseTime)
	return l.d.boltOut, nil
}

func (l *lock) String() string { return fmt.Sprintf("%s lock %d", l.c.cfg.Name, l.d.num) }

// Halt releases the lock, its safe state.
func (l *lock) Halt() error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.d.release(l.c.clock(), l.c.cfg.LockReleaseTime)
	return nil
}

// doorSensor debounces a door's reed switch the way a GPIO driver with edge
// interrupts would: it consumes the switch's timestamped edges and reports a
// level only once it has held for stableFor (twice the bounce time).
// Cabinet.mu guards its fields.
type doorSensor struct {
	c         *Cabinet
	d         *door
	stableFor time.Duration

	cursor    uint64 // seq of the newest edge consumed
	stable    bool   // the debounced level reported
	opened    bool   // latched: the debounced level went open since Opened last ran
	cand      bool   // the raw level since candSince
	candSince time.Time
}

// Closed reports the debounced door state.
func (s *doorSensor) Closed(ctx context.Context) (bool, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if err := s.c.live(ctx, s); err != nil {
		return false, err
	}
	s.catchUp(s.c.clock())
	return s.stable, nil
}

// catchUp feeds the edges up to now through the debouncer.
func (s *doorSensor) catchUp(now time.Time) {
	d := s.d
	if s.cursor < d.baseSeq {
		// The sensor was not read for longer than the edge log reaches back
		// (hundreds of door moves): restart from the oldest level known.
		s.cursor = d.baseSeq
		s.stable, s.cand, s.candSince = d.baseLevel, d.baseLevel, d.baseAt
	}
	for _, e := range d.edges {
		if e.seq <= s.cursor {
			continue
		}
		if e.at.After(now) {
			break
		}
		s.settle(e.at)
		if e.closed != s.cand {
			s.cand, s.candSince = e.closed, e.at
		}
		s.cursor = e.seq
	}
	s.settle(now)
}

// settle commits the candidate level if it has held for stableFor at t.
func (s *doorSensor) settle(t time.Time) {
	if s.cand != s.stable && t.Sub(s.candSince) >= s.stableFor {
		s.stable = s.cand
		s.opened = s.opened || !s.stable
	}
}

// Opened reports whether the debounced level went open since the last call
// (hal.DoorLatch), and clears the latch.
func (s *doorSensor) Opened(ctx context.Context) (bool, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if err := s.c.live(ctx, s); err != nil {
		return false, err
	}
	s.catchUp(s.c.clock())
	v := s.opened
	s.opened = false
	return v, nil
}

func (s *doorSensor) String() string { return fmt.Sprintf("%s door sensor %d", s.c.cfg.Name, s.d.num) }

// Halt does nothing: a reed switch has no state to leave.
func (s *doorSensor) Halt() error { return nil }

// rawScale is a shelf's HX711: one sample per sample period of real time.
// On a two-cell shelf it reads the sum of both cells, or with right the
// right cell alone; the two of a shelf read through the cabinet's run
// Sampler, so they pair up.
type rawScale struct {
	c     *Cabinet
	s     *shelf
	right bool
	pace  Pacer
}

// ReadRaw waits for the next sample period and returns the sample.
func (r *rawScale) ReadRaw(ctx context.Context) (int32, error) {
	if err := r.pace.Wait(ctx, r.c.period, r.c.cfg.Clock, r.c.cfg.After); err != nil {
		return 0, fmt.Errorf("sim: %s: %w", r, err)
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.c.sample(r.s, r.c.run, r.right)
}

// Pacer paces a sampled device at one sample per period: the HX711s here
// and the socket backend's server. The zero Pacer is ready to use; it is
// safe for concurrent use.
type Pacer struct {
	mu   sync.Mutex
	next time.Time // when the next sample is due
}

// Wait blocks until the next sample is due on the clock now/after (or ctx
// ends, returning its error). After an idle spell, or a clock that went
// back, it starts afresh rather than catching up in a burst.
func (p *Pacer) Wait(ctx context.Context, period time.Duration, now func() time.Time, after func(time.Duration) <-chan time.Time) error {
	p.mu.Lock()
	t := now()
	if p.next.IsZero() || t.Sub(p.next) > period || p.next.Sub(t) > period {
		p.next = t
	}
	p.next = p.next.Add(period)
	wait := p.next.Sub(t)
	p.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-after(wait):
		return nil
	}
}

func (r *rawScale) String() string {
	if r.right {
		return fmt.Sprintf("%s hx711 shelf %d right", r.c.cfg.Name, r.s.num)
	}
	return fmt.Sprintf("%s hx711 shelf %d", r.c.cfg.Name, r.s.num)
}

// Halt does nothing: the simulated chip draws no power.
func (r *rawScale) Halt() error { return nil }

// display records the screen shown.
type display struct{ c *Cabinet }

// Show records s; DisplayPNG and Snapshot show it.
func (d *display) Show(ctx context.Context, s hal.Screen) error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	if err := d.c.live(ctx, d); err != nil {
		return err
	}
	d.c.screen = s
	return nil
}

func (d *display) String() string { return d.c.cfg.Name + " display" }

// Halt blanks the display.
func (d *display) Halt() error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	d.c.screen = hal.Screen{}
	return nil
}

// thermometer reads the set temperature with a little noise.
type thermometer struct{ c *Cabinet }

// Celsius returns the air temperature.
func (t *thermometer) Celsius(ctx context.Context) (float64, error) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if err := t.c.live(ctx, t); err != nil {
		return 0, err
	}
	return t.c.tempC + t.c.thermo.NormFloat64()*thermoNoiseC, nil
}

func (t *thermometer) String() string { return t.c.cfg.Name + " thermometer" }

// indicator records the signal shown.
type indicator struct{ c *Cabinet }

// Set records s; Snapshot shows it.
func (i *indicator) Set(ctx context.Context, s hal.Signal) error {
	i.c.mu.Lock()
	defer i.c.mu.Unlock()
	if err := i.c.live(ctx, i); err != nil {
		return err
	}
	i.c.signal = s
	return nil
}

func (i *indicator) String() string { return i.c.cfg.Name + " indicator" }

// Halt turns the indicator off.
func (i *indicator) Halt() error {
	i.c.mu.Lock()
	defer i.c.mu.Unlock()
	i.c.signal = hal.SignalOff
	return nil
}

var (
	_ hal.Lock        = (*lock)(nil)
	_ hal.DoorSensor  = (*doorSensor)(nil)
	_ hal.RawScale    = (*rawScale)(nil)
	_ hal.Display     = (*display)(nil)
	_ hal.Thermometer = (*thermometer)(nil)
	_ hal.Indicator   = (*indicator)(nil)
)
