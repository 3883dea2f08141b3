// Package lock drives a door lock through one GPIO output: a relay or MOSFET
// switching a solenoid bolt, a latch solenoid or a magnetic lock, with an
// optional bolt (feedback) switch. It implements hal.Lock.
//
// lock owns the coil's output level, the pulse timer and the feedback
// check. It must not resolve pins (the board package hands it periph pins;
// it never calls host.Init or gpioreg), decide when a door may open (the
// firmware does) or interpret a door switch (hal/door does).
//
// # Datasheet
//
// There is no chip: the lock is a coil behind a relay or transistor.
//
//   - Fail-secure solenoid bolts and latches are locked while unpowered:
//     "open" means the coil is energised. Most cabinet latches are rated for
//     short duty only (a few seconds at most), so they are driven in Pulse
//     mode; bolts rated for continuous duty can use Hold.
//   - Fail-safe magnetic locks are locked while powered: "open" means the
//     coil is released. Pulse mode then cuts the power for PulseTime.
//   - Opto-isolated relay boards commonly switch on when their input is
//     pulled low (Opts.ActiveLow).
//
// # Wiring
//
//	GPIO (3.3 V) ──► relay board IN  (or MOSFET gate via 100 Ω, 100 kΩ to GND)
//	12 V ──► relay COM;  relay NO ──► coil + ;  coil − ──► GND
//	flyback diode (1N4007) across the coil, cathode to +
//	bolt switch: GPIO ──► switch ──► GND, pull-up; Low = bolt engaged
//	             (Opts.FeedbackLockedLevel = gpio.Low, Opts.FeedbackPull = gpio.PullUp)
//
// # Power loss and SIGKILL
//
// When the process is killed (SIGKILL, a crash, a watchdog reset) no code
// runs, so nothing here can put the lock back: the GPIO keeps its last level
// until the kernel releases the line, and once the board resets, the relay
// board's own default (its pull resistor on IN) decides. Wire locks
// fail-secure with a relay board whose unpowered and floating state is
// "coil off", and the door stays locked whatever happens to the firmware.
// The firmware also releases every lock at start-up, so a lock left
// energised by a killed process is returned to its safe level as soon as the
// firmware runs again; New does the same for the lock it creates.
package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clock"
)

// Mode says how long the coil is driven when the lock is opened.
type Mode int

// Modes a lock can be driven in.
const (
	// Hold drives the coil for as long as the lock is open, from Energise to
	// Release.
	Hold Mode = iota
	// Pulse drives the coil for Opts.PulseTime, then drops it: a latch stays
	// open mechanically until the door closes, and its coil must not be held.
	Pulse
)

func (m Mode) String() string {
	switch m {
	case Hold:
		return "hold"
	case Pulse:
		return "pulse"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MaxPulseTime is the longest PulseTime New accepts. A longer pulse is not a
// pulse: it risks burning a short-duty latch coil, so such a lock belongs in
// Hold mode on a continuous-duty coil.
const MaxPulseTime = 5 * time.Second

// ErrFeedback is wrapped, together with hal.ErrFault, by Verify when the bolt
// switch disagrees with the commanded state after Opts.Settle: a jammed bolt,
// a door that was not closed, or a broken switch. It is what a lock_fault is
// built on.
var ErrFeedback = errors.New("lock: feedback disagrees with the commanded state")

// Opts configures a Dev. Zero durations take the values of DefaultOpts; the
// other fields are used as given, and New(…, nil) uses DefaultOpts.
type Opts struct {
	// ActiveLow says the coil is on when the output is low, as on most
	// opto-isolated relay boards.
	ActiveLow bool
	// Mode is Hold or Pulse.
	Mode Mode
	// PulseTime is how long Pulse mode drives the lock open (at most
	// MaxPulseTime). Unused in Hold mode.
	PulseTime time.Duration
	// FailSafe says the lock is locked while its coil is powered (a
	// magnetic lock), so opening it releases the coil. False is a
	// fail-secure lock: locked when unpowered, opened by energising.
	FailSafe bool
	// Feedback is the bolt switch, or nil when the lock has none.
	Feedback gpio.PinIn
	// FeedbackLockedLevel is the level Feedback reads while the bolt is
	// engaged. The zero value, gpio.Low, fits a switch to ground with a
	// pull-up.
	FeedbackLockedLevel gpio.Level
	// FeedbackPull is the pull resistor for Feedback. The zero value,
	// gpio.PullNoChange, keeps what the board configured (or an external
	// resistor).
	FeedbackPull gpio.Pull
	// Settle is how long after actuation Verify waits before it checks the
	// feedback: the bolt's travel plus switch bounce.
	Settle time.Duration
	// Logger receives failures that no caller can see (a pulse that could not
	// be ended).
	Logger *slog.Logger
}

// DefaultOpts are the values New starts from.
var DefaultOpts = Opts{
	Mode:      Hold,
	PulseTime: 500 * time.Millisecond,
	Settle:    300 * time.Millisecond,
}

// Dev is one lock. All methods are safe for concurrent use.
type Dev struct {
	name     string
	out      gpio.PinOut
	mode     Mode
	pulse    time.Duration
	safe     gpio.Level // the level that keeps the door locked
	feedback gpio.PinIn
	lockedAt gpio.Level
	settle   time.Duration
	log      *slog.Logger

	mu        sync.Mutex
	energised bool        // commanded open, from Energise until Release or Halt
	gen       uint64      // bumped by every command, so a stale pulse timer does nothing
	timer     *time.Timer // ends the current pulse; nil when none runs
}

// New returns the lock name driven through out, after driving out to the
// safe level (the door held locked) and configuring the feedback input.
// opts may be nil.
func New(name string, out gpio.PinOut, opts *Opts) (*Dev, error) {
	if out == nil {
		return nil, fmt.Errorf("lock: %s: nil output pin", name)
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
		if o.PulseTime == 0 {
			o.PulseTime = DefaultOpts.PulseTime
		}
		if o.Settle == 0 {
			o.Settle = DefaultOpts.Settle
		}
	}
	switch {
	case o.Mode != Hold && o.Mode != Pulse:
		return nil, fmt.Errorf("lock: %s: unknown mode %v", name, o.Mode)
	case o.PulseTime < 0 || o.PulseTime > MaxPulseTime:
		return nil, fmt.Errorf("lock: %s: pulse time %v outside 0…%v", name, o.PulseTime, MaxPulseTime)
	case o.Settle < 0:
		return nil, fmt.Errorf("lock: %s: negative settle time %v", name, o.Settle)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	coilOn := gpio.Level(!o.ActiveLow)
	safe := !coilOn // fail-secure: locked while unpowered
	if o.FailSafe {
		safe = coilOn // a maglock holds only while powered
	}
	d := &Dev{
		name:     name,
		out:      out,
		mode:     o.Mode,
		pulse:    o.PulseTime,
		safe:     safe,
		feedback: o.Feedback,
		lockedAt: o.FeedbackLockedLevel,
		settle:   o.Settle,
	}
	d.log = o.Logger.With("lock", d.String())
	// The safe level goes out first: whatever else fails, the door is held.
	if err := d.out.Out(d.safe); err != nil {
		return nil, fmt.Errorf("lock: %s: drive safe level: %w", name, err)
	}
	if d.feedback != nil {
		if err := d.feedback.In(o.FeedbackPull, gpio.NoEdge); err != nil {
			return nil, fmt.Errorf("lock: %s: feedback input %s: %w", name, d.feedback, err)
		}
	}
	return d, nil
}

// Energise opens the lock: in Hold mode until Release, in Pulse mode for
// PulseTime (the lock then stays open mechanically until the door closes).
// It does not wait for the pulse to end.
func (d *Dev) Energise(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lock: %s: energise: %w", d.name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopPulseLocked()
	if err := d.out.Out(!d.safe); err != nil {
		// The pin may be in either state now; try to leave the door held.
		_ = d.out.Out(d.safe) // the Out error above is the one to report
		d.energised = false
		return fmt.Errorf("lock: %s: energise: %w", d.name, err)
	}
	d.energised = true
	if d.mode == Pulse {
		gen := d.gen
		d.timer = time.AfterFunc(d.pulse, func() { d.endPulse(gen) })
	}
	return nil
}

// endPulse drops the coil back to the safe level when the pulse started by
// command gen is still the current one.
func (d *Dev) endPulse(gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen != d.gen {
		return // Release, Halt or a new Energise came first
	}
	d.timer = nil
	if err := d.out.Out(d.safe); err != nil {
		d.log.Error("lock: ending pulse failed; coil may still be driven", "err", err)
	}
}

// stopPulseLocked cancels a running pulse timer and invalidates one that is
// already firing. d.mu is held.
func (d *Dev) stopPulseLocked() {
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// Release returns the lock to its safe level; the bolt engages once the door
// is closed.
func (d *Dev) Release(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lock: %s: release: %w", d.name, err)
	}
	return d.toSafe("release")
}

// Halt returns the lock to its safe level, like Release, without a context.
// The lock stays usable.
func (d *Dev) Halt() error { return d.toSafe("halt") }

func (d *Dev) toSafe(op string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopPulseLocked()
	d.energised = false
	if err := d.out.Out(d.safe); err != nil {
		return fmt.Errorf("lock: %s: %s: %w", d.name, op, err)
	}
	return nil
}

// Locked reports whether the bolt is engaged. With a feedback switch it is
// the switch's level now; without one it is the commanded state: false from
// Energise until Release or Halt, also after a pulse has ended (the latch
// stays open until the door closes, which only a switch could tell).
func (d *Dev) Locked(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("lock: %s: locked: %w", d.name, err)
	}
	if d.feedback != nil {
		return d.feedback.Read() == d.lockedAt, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.energised, nil
}

// HasFeedback reports whether the lock has a bolt switch, so Locked and
// Verify report the bolt rather than the command.
func (d *Dev) HasFeedback() bool { return d.feedback != nil }

// Verify waits Opts.Settle after an actuation, then checks that the bolt
// switch reports wantLocked. A mismatch wraps ErrFeedback and hal.ErrFault.
// Without a feedback switch there is nothing to check and Verify returns nil
// at once. It returns ctx's error when ctx ends during the wait.
func (d *Dev) Verify(ctx context.Context, wantLocked bool) error {
	if d.feedback == nil {
		return nil
	}
	if err := clock.Sleep(ctx, d.settle); err != nil {
		return fmt.Errorf("lock: %s: verify: %w", d.name, err)
	}
	got := d.feedback.Read() == d.lockedAt
	if got != wantLocked {
		return fmt.Errorf("lock: %s: bolt switch %s reads %s %v after actuation, want %s: %w (%w)",
			d.name, d.feedback, state(got), d.settle, state(wantLocked), ErrFeedback, hal.ErrFault)
	}
	return nil
}

func state(locked bool) string {
	if locked {
		return "locked"
	}
	return "unlocked"
}

// String names the lock and its output pin.
func (d *Dev) String() string { return fmt.Sprintf("lock %s on %s", d.name, d.out) }

var _ hal.Lock = (*Dev)(nil)
