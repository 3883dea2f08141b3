// Package indicator drives the cabinet's status LED and optional buzzer
// through two GPIO outputs. It implements hal.Indicator.
//
// indicator owns the two outputs and the blink and beep patterns. It must not
// resolve pins (the board package hands it periph pins; it never calls
// host.Init or gpioreg) or decide which signal to show (the firmware does).
//
// # Patterns
//
// At the default 50 ms tick:
//
//	Off    LED off, buzzer off
//	Ready  LED on steady
//	Open   LED blinking at 2 Hz (250 ms on, 250 ms off), one 100 ms beep on entering
//	Alarm  LED blinking fast at 5 Hz (100 ms on, 100 ms off), buzzer 1 s on, 1 s off
//	Fault  LED blinking slowly at 1 Hz (500 ms on, 500 ms off), buzzer silent
//
// Patterns are counted in ticks, so Opts.Tick scales all of them at once.
//
// # Datasheet
//
// There is no chip. The buzzer must be an active (self-oscillating) one,
// sounding while powered; a passive piezo would need a PWM tone, which this
// driver does not make.
//
// # Wiring
//
//	LED:    GPIO ──► 330 Ω ──► LED ──► GND              (active-high)
//	        or a panel LED through an NPN/MOSFET stage   (check Opts.LEDActiveLow)
//	buzzer: GPIO ──► 1 kΩ ──► NPN base; buzzer between 5 V and the collector;
//	        emitter to GND                               (active-high)
package indicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/bangfu/cabinet/hal"
)

// Pattern timings in ticks; with the default 50 ms tick they give the rates
// in the package documentation.
const (
	openHalf      = 5  // Open: LED on, then off, for 250 ms each (2 Hz)
	openBeep      = 2  // Open: the beep on entering, 100 ms
	alarmLEDHalf  = 2  // Alarm: LED on, then off, for 100 ms each (5 Hz)
	alarmBuzzHalf = 20 // Alarm: buzzer on, then off, for 1 s each
	faultHalf     = 10 // Fault: LED on, then off, for 500 ms each (1 Hz)
)

// Opts configures a Dev. A zero Tick takes DefaultOpts.Tick; the other
// fields are used as given, and New(…, nil) uses DefaultOpts.
type Opts struct {
	// LEDActiveLow says the LED is lit when its output is low.
	LEDActiveLow bool
	// BuzzerActiveLow says the buzzer sounds when its output is low.
	BuzzerActiveLow bool
	// Tick is the patterns' time unit. Tests make it short so patterns run
	// fast; on a cabinet the default gives the documented rates.
	Tick time.Duration
	// Logger receives output failures seen by Run, once per run of failures.
	Logger *slog.Logger
}

// DefaultOpts are the values New starts from.
var DefaultOpts = Opts{Tick: 50 * time.Millisecond}

// Dev is the LED and buzzer. All methods are safe for concurrent use.
type Dev struct {
	name    string
	led     gpio.PinOut
	buzzer  gpio.PinOut // nil when the cabinet has none
	ledOn   gpio.Level
	buzzOn  gpio.Level
	tick    time.Duration
	log     *slog.Logger
	changed chan struct{} // wakes Run when the signal changed

	mu       sync.Mutex
	running  bool
	sig      hal.Signal
	n        int  // ticks since sig was entered
	ledLit   bool // what the LED shows now
	buzzing  bool // what the buzzer does now
	failing  bool // Run's last drive failed; for change-only logging
	unsynced bool // an output may differ from ledLit/buzzing after a failure
}

// New returns the indicator name with its LED on led and its buzzer on
// buzzer (nil when there is none), after turning both off. opts may be nil.
func New(name string, led, buzzer gpio.PinOut, opts *Opts) (*Dev, error) {
	if led == nil {
		return nil, fmt.Errorf("indicator: %s: nil LED pin", name)
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
		if o.Tick == 0 {
			o.Tick = DefaultOpts.Tick
		}
	}
	if o.Tick < 0 {
		return nil, fmt.Errorf("indicator: %s: negative tick %v", name, o.Tick)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dev{
		name:    name,
		led:     led,
		buzzer:  buzzer,
		ledOn:   gpio.Level(!o.LEDActiveLow),
		buzzOn:  gpio.Level(!o.BuzzerActiveLow),
		tick:    o.Tick,
		changed: make(chan struct{}, 1),
	}
	d.log = o.Logger.With("indicator", d.String())
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.driveLocked(false, false, true); err != nil {
		return nil, err
	}
	return d, nil
}

// frame is what the LED and buzzer show n ticks after signal s was entered.
func frame(s hal.Signal, n int) (led, buzz bool) {
	switch s {
	case hal.SignalReady:
		return true, false
	case hal.SignalOpen:
		return (n/openHalf)%2 == 0, n < openBeep
	case hal.SignalAlarm:
		return (n/alarmLEDHalf)%2 == 0, (n/alarmBuzzHalf)%2 == 0
	case hal.SignalFault:
		return (n/faultHalf)%2 == 0, false
	}
	return false, false
}

// animated reports whether s changes over time and needs Run's ticks.
func animated(s hal.Signal) bool {
	return s == hal.SignalOpen || s == hal.SignalAlarm || s == hal.SignalFault
}

// Set switches to signal s. Its first frame is shown at once, so a steady
// signal (Off, Ready) needs no Run; the blinking and beeping of Open,
// Alarm and Fault need Run. Setting the signal already shown changes nothing: the
// pattern carries on and Open does not beep again.
func (d *Dev) Set(ctx context.Context, s hal.Signal) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("indicator: %s: %w", d.name, err)
	}
	switch s {
	case hal.SignalOff, hal.SignalReady, hal.SignalOpen, hal.SignalAlarm, hal.SignalFault:
	default:
		return fmt.Errorf("indicator: %s: unknown signal %d", d.name, int(s))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s == d.sig && !d.unsynced {
		return nil
	}
	return d.enterLocked(s)
}

// enterLocked starts signal s from its first frame and tells Run. d.mu is
// held.
func (d *Dev) enterLocked(s hal.Signal) error {
	d.sig, d.n = s, 0
	led, buzz := frame(s, 0)
	err := d.driveLocked(led, buzz, false)
	select {
	case d.changed <- struct{}{}:
	default: // Run has a wake-up pending already
	}
	return err
}

// driveLocked sets the outputs to led and buzz, touching only those that
// change unless force is set or a previous drive failed. d.mu is held.
func (d *Dev) driveLocked(led, buzz, force bool) error {
	force = force || d.unsynced
	var errs []error
	if force || led != d.ledLit {
		if err := d.led.Out(d.level(led, d.ledOn)); err != nil {
			errs = append(errs, fmt.Errorf("LED %s: %w", d.led, err))
		}
		d.ledLit = led
	}
	if d.buzzer != nil && (force || buzz != d.buzzing) {
		if err := d.buzzer.Out(d.level(buzz, d.buzzOn)); err != nil {
			errs = append(errs, fmt.Errorf("buzzer %s: %w", d.buzzer, err))
		}
		d.buzzing = buzz
	}
	// After a failure the outputs' real state is unknown: drive both next
	// time, whatever the pattern says.
	d.unsynced = len(errs) > 0
	if len(errs) > 0 {
		return fmt.Errorf("indicator: %s: %w", d.name, errors.Join(errs...))
	}
	return nil
}

func (d *Dev) level(on bool, onLevel gpio.Level) gpio.Level {
	if on {
		return onLevel
	}
	return !onLevel
}

// Run plays the blinking and beeping patterns until ctx ends, then turns
// both outputs off (as Halt does) and returns nil. It ticks only while a
// pattern moves. Run may be called again after it returned, but not while it
// runs.
func (d *Dev) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return fmt.Errorf("indicator: %s: Run already running", d.name)
	}
	d.running = true
	moving := animated(d.sig)
	d.mu.Unlock()

	ticker := time.NewTicker(d.tick)
	defer ticker.Stop()
	if !moving {
		ticker.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			d.mu.Lock()
			defer d.mu.Unlock()
			d.running = false
			if err := d.offLocked(); err != nil {
				d.log.Warn("indicator: turning off at stop failed", "err", err)
			}
			return nil
		case <-d.changed:
			d.mu.Lock()
			moving = animated(d.sig)
			d.mu.Unlock()
			// Restart the tick so the new pattern's frames are whole ticks.
			if moving {
				ticker.Reset(d.tick)
			} else {
				ticker.Stop()
			}
		case <-ticker.C:
			d.step()
		}
	}
}

// step shows the current pattern's next frame.
func (d *Dev) step() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !animated(d.sig) {
		return
	}
	d.n++
	led, buzz := frame(d.sig, d.n)
	err := d.driveLocked(led, buzz, false)
	switch {
	case err != nil && !d.failing:
		d.log.Warn("indicator outputs failing", "err", err)
	case err == nil && d.failing:
		d.log.Info("indicator outputs recovered")
	}
	d.failing = err != nil
}

// Halt turns the LED and the buzzer off. The indicator stays usable.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offLocked()
}

// offLocked shows Off, driving both outputs whatever they are believed to
// show. d.mu is held.
func (d *Dev) offLocked() error {
	d.sig, d.n = hal.SignalOff, 0
	err := d.driveLocked(false, false, true)
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return err
}

// String names the indicator and its LED pin.
func (d *Dev) String() string { return fmt.Sprintf("indicator %s on %s", d.name, d.led) }

var _ hal.Indicator = (*Dev)(nil)
