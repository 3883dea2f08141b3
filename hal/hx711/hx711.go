// Package hx711 reads HX711 24-bit load-cell ADCs by bit-banging their clock
// (PD_SCK) and data (DOUT) lines over periph.io GPIO pins. Several chips may
// share one clock line, one data pin each; they are read together as a Group,
// and each chip is a hal.RawScale view of it. A single chip is a group of one.
//
// hx711 owns the wire protocol: waiting for data-ready, the clock pulses and
// their timing, channel and gain selection, power-down, and throwing away the
// conversions the protocol makes untrustworthy. It produces raw counts only:
// tare, calibration, filtering, the settled judgement and the saturation rule
// belong to hal/scale, which wraps any hal.RawScale. It never initialises the
// host (host.Init) or looks pins up by name (gpioreg): the application owns the
// pins and hands them in.
//
// # Datasheet
//
// Avia Semiconductor, "HX711 24-Bit Analog-to-Digital Converter (ADC) for
// Weigh Scales", https://cdn.sparkfun.com/datasheets/Sensors/ForceFlex/hx711_english.pdf.
// The parts this driver relies on:
//
//   - DOUT high means a conversion is in progress, DOUT low means data is
//     ready. The clock must not pulse before DOUT is low.
//   - Each PD_SCK rising edge shifts out the next bit, MSB first, valid 0.1 µs
//     after the edge and held until the next rising edge: 24 bits of two's
//     complement, 0x7FFFFF and 0x800000 at full scale.
//   - 25, 26 or 27 pulses in all select channel A gain 128, channel B gain 32
//     or channel A gain 64 for the NEXT conversion; the conversion being read
//     keeps the selection made when it started.
//   - PD_SCK high time is 0.2…50 µs. High for more than 60 µs powers the chip
//     down; low again powers it up, resets it to channel A gain 128 and
//     restarts conversions (output settling 400 ms at 10 samples/s).
//   - 10 samples/s with RATE low, 80 with RATE high.
//
// # Wiring
//
//	HX711   host / cell
//	VCC     3.3 V (digital supply: the logic levels the host sees)
//	VDD     3.3 V or 5 V (analog supply; 5 V gives the full input range)
//	GND     ground
//	DT      a GPIO input, with pull-up (DOUT)
//	SCK     a GPIO output (PD_SCK); may be shared by several HX711s
//	E+ E−   load cell excitation (red, black)
//	A+ A−   load cell signal (white, green; swap them if counts fall with load)
//	RATE    low for 10 samples/s (the default on most boards), high for 80
//
// The data pin is set to pull-up so that an unplugged or dead chip reads high
// and times out with ErrNotReady instead of reading 0, a plausible weight.
//
// # Conventions
//
// Saturation is not an error here. 0x7FFFFF and 0x800000 come back as the
// values 8388607 and −8388608 with a nil error, because scale.Filter drops a
// sample that comes with an error and owns the saturation rule
// (scale.RawMax, scale.RawMin, scale.ErrSaturated): it must see the value to
// judge it. This package therefore exports no ErrSaturated.
//
// −1 (all ones) is what a data line stuck high, or a chip that vanished
// during a read, shifts out; a real load cell can also read −1. A channel that
// reads −1 is read once more; a second −1 fails with ErrStuck (and
// hal.ErrFault).
//
// Each clock-high phase is measured with a monotonic clock. If one lasted
// longer than Opts.MaxClockHigh (the goroutine was preempted), the chips may
// or may not have powered down, so the read is abandoned, the chips are power
// cycled into a known state, and the read fails with ErrTiming. The read is
// not retried inside ReadRaw: the next one has to wait for the chips to settle
// anyway, and scale.Filter already retries.
//
// A gain change, Reset, PowerUp, New and a timing failure leave the chips'
// next conversion at a gain that is not (or not known to be) Opts.Gain, so
// the next read clocks one conversion out, drops it, and returns the one
// after.
package hx711

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clock"
)

// Gain selects the input channel and the amplifier gain. Its value is the
// number of clock pulses after the 24 data bits that select it.
type Gain uint8

// Gains the HX711 offers. The full-scale input is for a 5 V analog supply.
const (
	A128 Gain = 1 // channel A, gain 128, ±20 mV: 25 pulses
	B32  Gain = 2 // channel B, gain 32, ±80 mV: 26 pulses
	A64  Gain = 3 // channel A, gain 64, ±40 mV: 27 pulses
)

// String returns the gain as ParseGain accepts it.
func (g Gain) String() string {
	switch g {
	case A128:
		return "A128"
	case B32:
		return "B32"
	case A64:
		return "A64"
	}
	return fmt.Sprintf("Gain(%d)", uint8(g))
}

// ParseGain parses "A128", "B32" or "A64" (any case).
func ParseGain(s string) (Gain, error) {
	for _, g := range []Gain{A128, B32, A64} {
		if strings.EqualFold(s, g.String()) {
			return g, nil
		}
	}
	return 0, fmt.Errorf("hx711: unknown gain %q (want A128, B32 or A64)", s)
}

func (g Gain) valid() bool { return g >= A128 && g <= A64 }

// pulses is the number of clock pulses a read that selects g takes.
func (g Gain) pulses() int { return dataBits + int(g) }

const (
	dataBits = 24

	// PowerDownTime is how long a clock-high phase may last before the chip
	// powers down.
	PowerDownTime = 60 * time.Microsecond
	// powerDownHold is how long PowerDown holds the clock high: well past
	// PowerDownTime, so that a PowerUp right after it really cycles the chip.
	powerDownHold = 100 * time.Microsecond
	// maxClockHigh is the largest Opts.MaxClockHigh: the datasheet's 50 µs,
	// which leaves 10 µs before power-down for the clock reads around it.
	maxClockHigh = 50 * time.Microsecond
	// minClockHigh is the smallest Opts.MaxClockHigh: below it a GPIO write on
	// a Linux board (a few µs through the character device) fails every read.
	minClockHigh = 10 * time.Microsecond
	// minPollInterval keeps the ready wait from spinning a core the rest of
	// the firmware shares.
	minPollInterval = 50 * time.Microsecond
)

// Errors the reads wrap. ErrNotReady and ErrStuck come with hal.ErrFault,
// ErrPoweredDown with hal.ErrClosed.
var (
	// ErrNotReady means DOUT stayed high for Opts.ReadyTimeout: the chip is
	// missing, unplugged, unpowered or dead.
	ErrNotReady = errors.New("hx711: data not ready")
	// ErrStuck means a channel read −1 (all ones) twice in a row: its data
	// line is stuck high or the chip keeps dropping out during reads.
	ErrStuck = errors.New("hx711: data line stuck high")
	// ErrTiming means a clock-high phase outlasted Opts.MaxClockHigh (the
	// goroutine was preempted). The read was abandoned and the chips reset.
	// It is the host's hiccup, not the chip's: no hal.ErrFault.
	ErrTiming = errors.New("hx711: clock held high too long")
	// ErrPoweredDown means the chips were powered down (PowerDown or Halt);
	// PowerUp brings them back.
	ErrPoweredDown = errors.New("hx711: powered down")
)

// Clock is the time source of a Group: the monotonic clock that times each
// clock-high phase and the ready timeout, and the sleep between ready polls.
// Tests inject a fake; nil in Opts means the system clock.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends; it returns ctx.Err() if ctx ended.
	Sleep(ctx context.Context, d time.Duration) error
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error { return clock.Sleep(ctx, d) }

// Opts configures a Group. Zero fields take the values of DefaultOpts; values
// outside the safe ranges below are clamped (and logged), negative durations
// are refused.
type Opts struct {
	// Gain is the channel and gain of every chip of the group (they share the
	// clock, so they share the pulse count).
	Gain Gain
	// ReadyTimeout is how long a read waits for every DOUT to go low before
	// failing with ErrNotReady. At least PollInterval.
	ReadyTimeout time.Duration
	// PollInterval is the sleep between two looks at the data lines while
	// waiting. 50 µs … ReadyTimeout.
	PollInterval time.Duration
	// MaxClockHigh is the longest clock-high phase a read accepts before it
	// fails with ErrTiming. 10 µs … 50 µs: the chip powers down after 60.
	MaxClockHigh time.Duration
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Logger receives the construction-time warnings (clamped options).
	// Nothing is logged while clocking.
	Logger *slog.Logger
}

// DefaultOpts are the values zero fields of Opts fall back to. ReadyTimeout
// is five conversions at 10 samples/s, enough for the 400 ms output settling
// after a power-up or reset.
var DefaultOpts = Opts{
	Gain:         A128,
	ReadyTimeout: 500 * time.Millisecond,
	PollInterval: time.Millisecond,
	MaxClockHigh: maxClockHigh,
}

// settle fills defaults into o and clamps unsafe values; it returns what it
// clamped, for the log.
func (o *Opts) settle() ([]string, error) {
	if o.ReadyTimeout < 0 || o.PollInterval < 0 || o.MaxClockHigh < 0 {
		return nil, errors.New("hx711: negative durations in options")
	}
	if o.Gain == 0 {
		o.Gain = DefaultOpts.Gain
	}
	if !o.Gain.valid() {
		return nil, fmt.Errorf("hx711: invalid gain %v", o.Gain)
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = DefaultOpts.ReadyTimeout
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultOpts.PollInterval
	}
	if o.MaxClockHigh == 0 {
		o.MaxClockHigh = DefaultOpts.MaxClockHigh
	}
	var clamped []string
	clamp := func(name string, v *time.Duration, lo, hi time.Duration) {
		was := *v
		*v = max(lo, min(hi, *v))
		if *v != was {
			clamped = append(clamped, fmt.Sprintf("%s %v → %v", name, was, *v))
		}
	}
	clamp("MaxClockHigh", &o.MaxClockHigh, minClockHigh, maxClockHigh)
	clamp("PollInterval", &o.PollInterval, minPollInterval, max(minPollInterval, o.ReadyTimeout))
	clamp("ReadyTimeout", &o.ReadyTimeout, o.PollInterval, o.ReadyTimeout)
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return clamped, nil
}

// Group is one or more HX711s on a shared clock line, read together: one
// conversion is clocked out of every chip at once, one bit per pulse from
// each data pin. All methods are safe for concurrent use; one read runs at a
// time, so concurrent readers never clock the line over each other.
//
// A group waits until every chip has data ready: one dead chip stops the
// whole group (ErrNotReady names its pin), because pulsing the shared clock
// for the others would clock the dead one before its data-ready.
type Group struct {
	name         string
	clk          gpio.PinOut
	data         []gpio.PinIn
	clock        Clock
	readyTimeout time.Duration
	poll         time.Duration
	maxHigh      time.Duration
	chans        []*channel

	// sem is the group's lock: a one-slot semaphore rather than a mutex so
	// that a reader waiting for another's conversion can give up with its
	// context. Everything below is guarded by it.
	sem     chan struct{}
	gain    Gain
	discard int // conversions to clock out and drop before the next value
	down    bool
	words   []uint32 // bits of the conversion being clocked out, per chip
	vals    []int32  // values of the newest sample, per chip
	again   []int32  // values of the re-read after a −1
	errs    []error  // per-chip errors of the newest sample
}

// NewGroup returns a group of HX711s sharing the clock line clk, one data pin
// each, in channel order. It sets every data pin to input with pull-up and
// the clock low (powered up). opts may be nil.
func NewGroup(clk gpio.PinOut, data []gpio.PinIn, opts *Opts) (*Group, error) {
	if clk == nil {
		return nil, errors.New("hx711: nil clock pin")
	}
	if len(data) == 0 {
		return nil, errors.New("hx711: no data pins")
	}
	seen := make(map[string]bool, len(data))
	for i, d := range data {
		if d == nil {
			return nil, fmt.Errorf("hx711: data pin %d is nil", i)
		}
		if n := d.Name(); n != "" {
			if seen[n] || n == clk.Name() {
				return nil, fmt.Errorf("hx711: pin %s used twice", n)
			}
			seen[n] = true
		}
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	clamped, err := o.settle()
	if err != nil {
		return nil, err
	}
	g := &Group{
		clk:          clk,
		data:         slices.Clone(data),
		clock:        o.Clock,
		readyTimeout: o.ReadyTimeout,
		poll:         o.PollInterval,
		maxHigh:      o.MaxClockHigh,
		sem:          make(chan struct{}, 1),
		gain:         o.Gain,
		// The chips' selection is whatever the last program or a power-up
		// left: drop one conversion to put Opts.Gain in force.
		discard: 1,
		words:   make([]uint32, len(data)),
		vals:    make([]int32, len(data)),
		again:   make([]int32, len(data)),
		errs:    make([]error, len(data)),
	}
	names := make([]string, len(data))
	for i, d := range data {
		names[i] = d.Name()
	}
	g.name = fmt.Sprintf("hx711(clk %s, data %s)", clk.Name(), strings.Join(names, " "))
	for i := range data {
		g.chans = append(g.chans, &channel{g: g, i: i,
			name: fmt.Sprintf("hx711(clk %s, data %s)", clk.Name(), names[i])})
	}
	for _, c := range clamped {
		o.Logger.Warn("hx711 option clamped", "hx711", g.name, "option", c)
	}
	for i, d := range g.data {
		// Pull-up: a missing chip must read "not ready", not 0 counts.
		if err := d.In(gpio.PullUp, gpio.NoEdge); err != nil {
			return nil, fmt.Errorf("%s: data pin %s: %w", g.chans[i], d.Name(), err)
		}
	}
	if err := clk.Out(gpio.Low); err != nil {
		return nil, fmt.Errorf("%s: clock pin: %w", g, err)
	}
	return g, nil
}

// String names the group by its pins.
func (g *Group) String() string { return g.name }

// Len returns the number of chips in the group.
func (g *Group) Len() int { return len(g.data) }

// Channel returns chip i's view of the group (0 ≤ i < Len; it panics
// otherwise). Its ReadRaw returns the chip's sample from a group read: the
// first channel to ask clocks a conversion out of every chip, and the others
// get their part of it from a cache (each sample at most once per channel,
// and only while it is still the chip's newest conversion) instead of
// clocking the line again. Halting a channel closes the view; when every
// channel is halted the group powers down.
func (g *Group) Channel(i int) hal.RawScale { return g.chans[i] }

func (g *Group) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case g.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lockWait takes the lock without a context, for the short no-context
// commands (SetGain, PowerDown…); they may wait for a read in progress.
func (g *Group) lockWait() { g.sem <- struct{}{} }

func (g *Group) unlock() { <-g.sem }

// ReadAll waits until every chip has data ready, clocks one conversion out of
// all of them and returns one value per chip. If only some chips failed (see
// ErrStuck) it returns every value and an error naming the failed ones. The
// sample is also offered to the channel views.
func (g *Group) ReadAll(ctx context.Context) ([]int32, error) {
	if err := g.lock(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", g, err)
	}
	defer g.unlock()
	if err := g.sampleShared(ctx); err != nil {
		return nil, err
	}
	return slices.Clone(g.vals), errors.Join(g.errs...)
}

// SetGain selects the channel and gain of every chip. The conversion already
// under way keeps the old one, so the next read drops one conversion.
func (g *Group) SetGain(gain Gain) error {
	if !gain.valid() {
		return fmt.Errorf("%s: invalid gain %v", g, gain)
	}
	g.lockWait()
	defer g.unlock()
	if gain == g.gain {
		return nil
	}
	g.gain = gain
	g.discard = 1
	g.dropShared()
	return nil
}

// PowerDown holds the clock high past PowerDownTime: the chips power down and
// reads fail with ErrPoweredDown until PowerUp.
func (g *Group) PowerDown() error {
	g.lockWait()
	defer g.unlock()
	return g.powerDown()
}

// PowerUp sets the clock low: the chips reset to channel A gain 128 and start
// converting (the next read drops one conversion). It also reopens halted
// channel views.
func (g *Group) PowerUp() error {
	g.lockWait()
	defer g.unlock()
	for _, c := range g.chans {
		c.closed = false
	}
	return g.powerUp()
}

// Reset power-cycles the chips (down, then up) and leaves them powered up and
// converting; the next read drops one conversion.
func (g *Group) Reset() error {
	g.lockWait()
	defer g.unlock()
	return g.powerCycle()
}

// Halt powers the chips down (see PowerDown).
func (g *Group) Halt() error { return g.PowerDown() }

// powerDown holds the clock high for powerDownHold, timed with the group's
// clock; the lock is held.
func (g *Group) powerDown() error {
	if g.down {
		return nil
	}
	g.dropShared()
	if err := g.clk.Out(gpio.High); err != nil {
		g.discard = 1
		return fmt.Errorf("%s: power down: clock pin: %w", g, err)
	}
	// From after Out returns: the pin is high by then at the latest.
	start := g.clock.Now()
	g.down = true
	for {
		held := g.clock.Now().Sub(start)
		if held >= powerDownHold {
			return nil
		}
		if err := g.clock.Sleep(context.Background(), powerDownHold-held); err != nil {
			return fmt.Errorf("%s: power down: %w", g, err)
		}
	}
}

// powerUp sets the clock low; the lock is held.
func (g *Group) powerUp() error {
	if !g.down {
		return nil
	}
	g.dropShared()
	g.discard = 1 // the chips wake up at channel A gain 128
	if err := g.clk.Out(gpio.Low); err != nil {
		return fmt.Errorf("%s: power up: clock pin: %w", g, err)
	}
	g.down = false
	return nil
}

func (g *Group) powerCycle() error {
	if err := g.powerDown(); err != nil {
		return err
	}
	return g.powerUp()
}

// sampleShared takes a sample and offers it to the channel views. A device
// error is offered too, so that N channels waiting for one dead group don't
// each wait ReadyTimeout in turn; an error caused by ctx is the caller's own.
// The lock is held.
func (g *Group) sampleShared(ctx context.Context) error {
	err := g.sample(ctx)
	if err != nil && ctx.Err() != nil {
		return err
	}
	for i, c := range g.chans {
		c.fresh = true
		if err != nil {
			c.val, c.err = 0, err
		} else {
			c.val, c.err = g.vals[i], g.errs[i]
		}
	}
	return err
}

// dropShared withdraws the samples offered to the channel views; the lock is
// held.
func (g *Group) dropShared() {
	for _, c := range g.chans {
		c.fresh = false
	}
}

// sample fills g.vals and g.errs with a trustworthy sample: it drops the
// conversions g.discard asks for and re-reads once for a −1. The lock is
// held.
func (g *Group) sample(ctx context.Context) error {
	if g.down {
		return fmt.Errorf("%s: %w: %w", g, ErrPoweredDown, hal.ErrClosed)
	}
	for g.discard > 0 {
		if err := g.convert(ctx, g.vals); err != nil {
			return err
		}
		g.discard--
	}
	if err := g.convert(ctx, g.vals); err != nil {
		return err
	}
	suspect := false
	for i, v := range g.vals {
		g.errs[i] = nil
		suspect = suspect || v == -1
	}
	if !suspect {
		return nil
	}
	if err := g.convert(ctx, g.again); err != nil {
		return err
	}
	// A channel that read −1 takes its re-read; the others keep their first
	// value, so each channel behaves as if read alone.
	for i, v := range g.vals {
		if v != -1 {
			continue
		}
		if g.again[i] != -1 {
			g.vals[i] = g.again[i]
			continue
		}
		g.errs[i] = fmt.Errorf("%s: %w: two conversions in a row read −1: %w", g.chans[i], ErrStuck, hal.ErrFault)
	}
	return nil
}

// convert waits until every chip has data ready and clocks one conversion out
// of all of them, selecting g.gain for the next one; dst gets the
// sign-extended values. The lock is held.
func (g *Group) convert(ctx context.Context, dst []int32) error {
	if err := g.waitReady(ctx); err != nil {
		return err
	}
	// Keep the goroutine on one OS thread and the loop free of allocations,
	// logging and branches out, so that a high phase is two GPIO writes.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clear(g.words)
	n := g.gain.pulses()
	for p := range n {
		t0 := g.clock.Now()
		if err := g.clk.Out(gpio.High); err != nil {
			return g.pinFailed(err)
		}
		err := g.clk.Out(gpio.Low)
		high := g.clock.Now().Sub(t0)
		if err != nil {
			return g.pinFailed(err)
		}
		if high > g.maxHigh {
			return g.overrun(p+1, high)
		}
		if p < dataBits {
			// Sampled after the falling edge: the bit holds until the next
			// rising edge, and reading N pins stays out of the high phase.
			for i, d := range g.data {
				g.words[i] <<= 1
				if d.Read() == gpio.High {
					g.words[i] |= 1
				}
			}
		}
	}
	for i, w := range g.words {
		dst[i] = int32(w<<8) >> 8 // sign-extend 24-bit two's complement
	}
	return nil
}

// waitReady polls the data lines until all are low (data ready), by level:
// an edge may have come and gone before we looked.
func (g *Group) waitReady(ctx context.Context) error {
	deadline := g.clock.Now().Add(g.readyTimeout)
	for {
		if g.allReady() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: waiting for data: %w", g, err)
		}
		if !g.clock.Now().Before(deadline) {
			return g.notReady()
		}
		if err := g.clock.Sleep(ctx, g.poll); err != nil {
			return fmt.Errorf("%s: waiting for data: %w", g, err)
		}
	}
}

func (g *Group) allReady() bool {
	for _, d := range g.data {
		if d.Read() == gpio.High {
			return false
		}
	}
	return true
}

func (g *Group) notReady() error {
	var high []string
	for _, d := range g.data {
		if d.Read() == gpio.High {
			high = append(high, d.Name())
		}
	}
	return fmt.Errorf("%s: %w: DOUT high on %s after %v: %w",
		g, ErrNotReady, strings.Join(high, " "), g.readyTimeout, hal.ErrFault)
}

// overrun handles a clock-high phase longer than g.maxHigh during a read.
// Whether the chips powered down depends on which side of 60 µs it fell, and
// one that did not is left in the middle of a read; pulsing on would clock
// chips that are not ready.
func (g *Group) overrun(pulse int, high time.Duration) error {
	return g.recover(fmt.Errorf("%s: %w: %v on pulse %d (limit %v); chips reset",
		g, ErrTiming, high, pulse, g.maxHigh))
}

// pinFailed handles a failed clock write during a read.
func (g *Group) pinFailed(err error) error {
	return g.recover(fmt.Errorf("%s: clock pin: %w", g, err))
}

// recover follows a read abandoned part-way: a power cycle puts every chip
// in the same known state (reset, channel A gain 128) whatever it saw, and
// the next read drops one conversion. The lock is held.
func (g *Group) recover(cause error) error {
	err := g.powerCycle()
	g.discard = 1
	if err != nil {
		// Not powered down on purpose: the next read tries the pin again.
		g.down = false
		return errors.Join(cause, err)
	}
	return cause
}

// channel is one chip's view of its group.
type channel struct {
	g    *Group
	i    int
	name string

	// Guarded by g.sem.
	val    int32
	err    error
	fresh  bool // val/err come from a group read and were not returned yet
	closed bool
}

// ReadRaw returns the chip's next sample (see Group.Channel).
func (c *channel) ReadRaw(ctx context.Context) (int32, error) {
	g := c.g
	if err := g.lock(ctx); err != nil {
		return 0, fmt.Errorf("%s: %w", c, err)
	}
	defer g.unlock()
	if c.closed {
		return 0, fmt.Errorf("%s: halted: %w", c, hal.ErrClosed)
	}
	// A value is served from the cache only while DOUT is high: once the chip
	// has a newer conversion, the cached one is stale.
	if !c.fresh || (c.err == nil && g.data[c.i].Read() == gpio.Low) {
		if err := g.sampleShared(ctx); err != nil && ctx.Err() != nil {
			return 0, err
		}
	}
	c.fresh = false
	return c.val, c.err
}

func (c *channel) String() string { return c.name }

// Halt closes this view; the last one to close powers the group down.
func (c *channel) Halt() error {
	g := c.g
	g.lockWait()
	defer g.unlock()
	c.closed = true
	c.fresh = false
	for _, o := range g.chans {
		if !o.closed {
			return nil
		}
	}
	return g.powerDown()
}

// Dev is a single HX711: a group of one.
type Dev struct {
	g *Group
}

// New returns a single HX711 on clock pin clk and data pin data (see
// NewGroup). opts may be nil.
func New(clk gpio.PinOut, data gpio.PinIn, opts *Opts) (*Dev, error) {
	if data == nil {
		return nil, errors.New("hx711: nil data pin")
	}
	g, err := NewGroup(clk, []gpio.PinIn{data}, opts)
	if err != nil {
		return nil, err
	}
	return &Dev{g: g}, nil
}

// ReadRaw waits for data-ready and returns the chip's next sample in raw
// counts. It implements hal.RawScale.
func (d *Dev) ReadRaw(ctx context.Context) (int32, error) { return d.g.chans[0].ReadRaw(ctx) }

// SetGain selects the channel and gain (see Group.SetGain).
func (d *Dev) SetGain(g Gain) error { return d.g.SetGain(g) }

// PowerDown powers the chip down (see Group.PowerDown).
func (d *Dev) PowerDown() error { return d.g.PowerDown() }

// PowerUp powers the chip up (see Group.PowerUp).
func (d *Dev) PowerUp() error { return d.g.PowerUp() }

// Reset power-cycles the chip (see Group.Reset).
func (d *Dev) Reset() error { return d.g.Reset() }

// Halt powers the chip down until PowerUp.
func (d *Dev) Halt() error { return d.g.Halt() }

// String names the chip by its pins.
func (d *Dev) String() string { return d.g.String() }

var (
	_ hal.RawScale  = (*Dev)(nil)
	_ hal.RawScale  = (*channel)(nil)
	_ conn.Resource = (*Group)(nil)
)
