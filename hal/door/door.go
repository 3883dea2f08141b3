// Package door reads a door's reed switch through one GPIO input and
// debounces it. It implements hal.DoorSensor.
//
// door owns the switch input: edge detection or its polling fallback, the
// debounce and the debounced state. It must not resolve pins (the board
// package hands it a periph pin; it never calls host.Init or gpioreg), drive
// the lock (hal/lock does) or decide what an open door means (the firmware
// does).
//
// # Datasheet
//
// There is no chip. A reed switch closes when the door's magnet is near and
// bounces for a few milliseconds when it opens or closes; a door that is
// slammed can rattle open and shut for tens of milliseconds. The kernel's
// GPIO character device (or sysfs on old kernels) reports edges; some lines
// (GPIO expanders, old sysfs setups) cannot, and are polled instead.
//
// # Wiring
//
//	GPIO ──► reed switch (normally open, closed by the magnet) ──► GND
//	pull-up: internal (Opts.Pull = gpio.PullUp) or 10 kΩ to 3.3 V
//	door closed ⇒ switch closed ⇒ Low (Opts.ClosedLevel = gpio.Low, the zero value)
//	long runs: 100 nF from GPIO to GND and a 1 kΩ series resistor against noise
//
// A broken wire then reads High, "open": a cut cable raises an alarm
// instead of hiding an open door.
package door

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/bangfu/cabinet/hal"
)

// ChangesBuffer is how many debounced changes Changes holds for a slow
// reader before the oldest is dropped.
const ChangesBuffer = 16

// edgeIdle bounds each wait for an edge, so Run notices the end of its
// context and re-reads the level in case an edge was lost.
const edgeIdle = 100 * time.Millisecond

// Opts configures a Dev. Zero durations take the values of DefaultOpts; the
// other fields are used as given, and New(…, nil) uses DefaultOpts.
type Opts struct {
	// ClosedLevel is the level the input reads while the door is closed.
	// The zero value, gpio.Low, fits a switch to ground with a pull-up.
	ClosedLevel gpio.Level
	// Pull is the input's pull resistor. The zero value, gpio.PullNoChange,
	// keeps what the board configured (or an external resistor).
	Pull gpio.Pull
	// Debounce is how long a new level must hold before it counts.
	Debounce time.Duration
	// Poll is the sampling interval when the input has no edge detection,
	// and the longest sampling step of a synchronous Closed.
	Poll time.Duration
	// Logger receives the choice of edges or polling, and debounced changes
	// at debug level.
	Logger *slog.Logger
}

// DefaultOpts are the values New starts from.
var DefaultOpts = Opts{
	Debounce: 50 * time.Millisecond,
	Poll:     20 * time.Millisecond,
}

// clock is where polling gets its time; tests inject a fake one.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Dev is one door switch. All methods are safe for concurrent use; Run is
// the only goroutine that waits for edges.
type Dev struct {
	name     string
	pin      gpio.PinIn
	closedAt gpio.Level
	debounce time.Duration
	poll     time.Duration
	edges    bool
	log      *slog.Logger
	clk      clock
	changes  chan bool

	mu     sync.Mutex
	run    *running // nil unless Run is running
	closed bool     // the debounced state, valid once run.ready is closed
	opened bool     // latched: the debounced state went open since Opened last ran
}

// running is one call of Run.
type running struct {
	ready chan struct{} // closed once Run knows the debounced state
	done  chan struct{} // closed when Run returns
}

// New returns the door switch name on pin, configured as an input with edge
// detection on both edges or, when the pin cannot detect edges, without.
// opts may be nil.
func New(name string, pin gpio.PinIn, opts *Opts) (*Dev, error) {
	if pin == nil {
		return nil, fmt.Errorf("door: %s: nil input pin", name)
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
		if o.Debounce == 0 {
			o.Debounce = DefaultOpts.Debounce
		}
		if o.Poll == 0 {
			o.Poll = DefaultOpts.Poll
		}
	}
	// Both must be positive: WaitForEdge(0) would wait forever on the GPIO
	// character device.
	if o.Debounce < 0 || o.Poll < 0 {
		return nil, fmt.Errorf("door: %s: negative debounce %v or poll %v", name, o.Debounce, o.Poll)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dev{
		name:     name,
		pin:      pin,
		closedAt: o.ClosedLevel,
		debounce: o.Debounce,
		poll:     o.Poll,
		clk:      realClock{},
		changes:  make(chan bool, ChangesBuffer),
	}
	d.log = o.Logger.With("door", d.String())
	if err := pin.In(o.Pull, gpio.BothEdges); err == nil {
		d.edges = true
	} else {
		if err2 := pin.In(o.Pull, gpio.NoEdge); err2 != nil {
			return nil, fmt.Errorf("door: %s: configure input %s: %w (with edges: %v)", name, pin, err2, err)
		}
		d.log.Info("door switch has no edge detection; polling", "err", err, "poll", d.poll)
	}
	return d, nil
}

// Opened reports whether the debounced state went open since the last
// call (hal.DoorLatch), and clears the latch: an opening shorter than the
// firmware's poll is still an opening.
func (d *Dev) Opened(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v := d.opened
	d.opened = false
	return v, nil
}

// Edges reports whether the switch is read through edge detection (true)
// or by polling every Opts.Poll (false).
func (d *Dev) Edges() bool { return d.edges }

// Changes delivers the debounced state (true = closed) each time it changes
// while Run runs. The first value of every Run is the state it found at
// start, so a reader needs no separate Closed call. The channel holds
// ChangesBuffer values and Run never blocks on it: when it is full the
// oldest value is dropped, so the newest value always is the current state
// and a reader that falls behind loses history, not the present. The channel
// is never closed; readers stop with their own context.
func (d *Dev) Changes() <-chan bool { return d.changes }

// Run watches the switch until ctx ends, then returns nil. It is the owner of
// the input's edges: it waits for an edge (or polls, see Edges), lets a new
// level count only once it has held for Opts.Debounce, keeps the debounced
// state for Closed and sends changes to Changes. Run may be called again
// after it returned, but not while it runs.
func (d *Dev) Run(ctx context.Context) error {
	r := &running{ready: make(chan struct{}), done: make(chan struct{})}
	d.mu.Lock()
	if d.run != nil {
		d.mu.Unlock()
		return fmt.Errorf("door: %s: Run already running", d.name)
	}
	d.run = r
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.run = nil
		d.mu.Unlock()
		close(r.done)
	}()

	var (
		state gpio.Level
		ok    bool
	)
	if d.edges {
		state, ok = d.quiet(ctx)
	} else {
		state, ok = d.settle(ctx)
	}
	if !ok {
		return nil
	}
	d.publish(state)
	close(r.ready)
	if d.edges {
		d.watchEdges(ctx, state)
	} else {
		d.watchPolls(ctx, state)
	}
	return nil
}

// watchEdges follows the debounced state through edges until ctx ends.
func (d *Dev) watchEdges(ctx context.Context, state gpio.Level) {
	for ctx.Err() == nil {
		// A quiet interval with the level unchanged is the common case; a
		// changed level without an edge means the edge was lost.
		if !d.pin.WaitForEdge(edgeIdle) && d.pin.Read() == state {
			continue
		}
		lvl, ok := d.quiet(ctx)
		if !ok {
			return
		}
		if lvl != state {
			state = lvl
			d.publish(state)
		}
	}
}

// quiet waits until no edge came for Debounce and returns the level then.
// It returns false when ctx ends first.
func (d *Dev) quiet(ctx context.Context) (gpio.Level, bool) {
	for ctx.Err() == nil {
		if !d.pin.WaitForEdge(d.debounce) {
			return d.pin.Read(), true
		}
	}
	return false, false
}

// watchPolls follows the debounced state by sampling every Poll until ctx
// ends.
func (d *Dev) watchPolls(ctx context.Context, state gpio.Level) {
	cand, since := state, d.clk.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.clk.After(d.poll):
		}
		lvl, now := d.pin.Read(), d.clk.Now()
		if lvl != cand {
			cand, since = lvl, now
		}
		if cand != state && now.Sub(since) >= d.debounce {
			state = cand
			d.publish(state)
		}
	}
}

// settle samples the input until its level has held for Debounce and
// returns that level. It returns false when ctx ends first.
func (d *Dev) settle(ctx context.Context) (gpio.Level, bool) {
	step := min(d.poll, d.debounce)
	cand, since := d.pin.Read(), d.clk.Now()
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-d.clk.After(step):
		}
		lvl, now := d.pin.Read(), d.clk.Now()
		if lvl != cand {
			cand, since = lvl, now
			continue
		}
		if now.Sub(since) >= d.debounce {
			return cand, true
		}
	}
}

// publish records the debounced level and offers it on Changes, dropping
// the oldest queued value when the reader is behind. Only Run calls it, so
// once a slot is freed the send cannot block.
func (d *Dev) publish(lvl gpio.Level) {
	closed := lvl == d.closedAt
	d.mu.Lock()
	d.closed = closed
	d.opened = d.opened || !closed
	d.mu.Unlock()
	d.log.Debug("door switch", "closed", closed)
	select {
	case d.changes <- closed:
	default:
		select {
		case <-d.changes:
		default: // the reader took one meanwhile
		}
		d.changes <- closed
	}
}

// Closed reports whether the door is closed. While Run runs it is Run's
// debounced state (waiting, bounded by ctx, for Run to establish it). Without
// Run — technician tools — it samples the input until the level has held for
// Opts.Debounce, bounded by ctx.
func (d *Dev) Closed(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("door: %s: %w", d.name, err)
	}
	d.mu.Lock()
	r := d.run
	d.mu.Unlock()
	if r != nil {
		select {
		case <-r.ready:
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.closed, nil
		case <-r.done: // Run ended before it knew; sample instead
		case <-ctx.Done():
			return false, fmt.Errorf("door: %s: %w", d.name, ctx.Err())
		}
	}
	lvl, ok := d.settle(ctx)
	if !ok {
		return false, fmt.Errorf("door: %s: switch not steady for %v: %w", d.name, d.debounce, ctx.Err())
	}
	return lvl == d.closedAt, nil
}

// String names the switch and its input pin.
func (d *Dev) String() string { return fmt.Sprintf("door %s on %s", d.name, d.pin) }

// Halt does nothing: an input has no unsafe state, and Run stops with its
// context.
func (d *Dev) Halt() error { return nil }

var _ hal.DoorSensor = (*Dev)(nil)
