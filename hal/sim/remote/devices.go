package remote

import (
	"context"
	"fmt"

	"github.com/bangfu/cabinet/hal"
)

// lock is a door's lock in the simulator.
type lock struct {
	c    *Client
	door int
}

func (l *lock) Energise(ctx context.Context) error {
	_, err := l.c.call(ctx, l, request{Op: opLockEnergise, Door: l.door})
	return err
}

func (l *lock) Release(ctx context.Context) error {
	_, err := l.c.call(ctx, l, request{Op: opLockRelease, Door: l.door})
	return err
}

func (l *lock) Locked(ctx context.Context) (bool, error) {
	r, err := l.c.call(ctx, l, request{Op: opLockLocked, Door: l.door})
	return r.Bool, err
}

func (l *lock) String() string { return fmt.Sprintf("%s lock %d", l.c.layout.Name, l.door) }

// Halt releases the lock. When the simulator cannot be reached the lock
// is as safe as it gets: a device without the simulator has no power.
func (l *lock) Halt() error { return l.c.halt(l, request{Op: opLockHalt, Door: l.door}) }

// doorSensor is a door's debounced reed switch in the simulator.
type doorSensor struct {
	c    *Client
	door int
}

func (s *doorSensor) Closed(ctx context.Context) (bool, error) {
	r, err := s.c.call(ctx, s, request{Op: opDoorClosed, Door: s.door})
	return r.Bool, err
}

// Opened reads the simulated switch's latch (hal.DoorLatch).
func (s *doorSensor) Opened(ctx context.Context) (bool, error) {
	r, err := s.c.call(ctx, s, request{Op: opDoorOpened, Door: s.door})
	return r.Bool, err
}

func (s *doorSensor) String() string {
	return fmt.Sprintf("%s door sensor %d", s.c.layout.Name, s.door)
}

// Halt does nothing: a reed switch has no state to leave.
func (s *doorSensor) Halt() error { return nil }

// rawScale is a shelf's HX711 in the simulator — on a two-cell shelf the
// sum of both cells, or with right the right cell alone; the server paces
// reads at the chip's sample rate.
type rawScale struct {
	c     *Client
	shelf int
	right bool
}

func (r *rawScale) ReadRaw(ctx context.Context) (int32, error) {
	op := opScaleRead
	if r.right {
		op = opScaleReadRight
	}
	resp, err := r.c.call(ctx, r, request{Op: op, Shelf: r.shelf})
	return resp.Raw, err
}

func (r *rawScale) String() string {
	if r.right {
		return fmt.Sprintf("%s hx711 shelf %d right", r.c.layout.Name, r.shelf)
	}
	return fmt.Sprintf("%s hx711 shelf %d", r.c.layout.Name, r.shelf)
}

// Halt does nothing: the simulated chip draws no power.
func (r *rawScale) Halt() error { return nil }

type display struct{ c *Client }

func (d *display) Show(ctx context.Context, s hal.Screen) error {
	_, err := d.c.call(ctx, d, request{Op: opDisplayShow, Screen: &s})
	return err
}

func (d *display) String() string { return d.c.layout.Name + " display" }

// Halt blanks the display.
func (d *display) Halt() error { return d.c.halt(d, request{Op: opDisplayHalt}) }

type thermometer struct{ c *Client }

func (t *thermometer) Celsius(ctx context.Context) (float64, error) {
	r, err := t.c.call(ctx, t, request{Op: opThermoCelsius})
	return r.Celsius, err
}

func (t *thermometer) String() string { return t.c.layout.Name + " thermometer" }

type indicator struct{ c *Client }

func (i *indicator) Set(ctx context.Context, s hal.Signal) error {
	_, err := i.c.call(ctx, i, request{Op: opIndicatorSet, Signal: s})
	return err
}

func (i *indicator) String() string { return i.c.layout.Name + " indicator" }

// Halt turns the indicator off.
func (i *indicator) Halt() error { return i.c.halt(i, request{Op: opIndicatorHalt}) }

var (
	_ hal.Lock        = (*lock)(nil)
	_ hal.DoorSensor  = (*doorSensor)(nil)
	_ hal.RawScale    = (*rawScale)(nil)
	_ hal.Display     = (*display)(nil)
	_ hal.Thermometer = (*thermometer)(nil)
	_ hal.Indicator   = (*indicator)(nil)
)
