package indicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/bangfu/cabinet/hal"
)

// guard bounds every wait in these tests so a broken driver fails the test
// instead of hanging it. It is not a speed limit.
const guard = 10 * time.Second

// trace is the shared record of what both outputs were driven to, in order,
// so a test sees how the LED and the buzzer interleave.
type trace struct {
	mu      sync.Mutex
	events  []string // "LED H", "BUZ L", …
	changed chan struct{}
}

func newTrace() *trace { return &trace{changed: make(chan struct{}, 1)} }

func (tr *trace) all() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.events)
}

// wait returns the first n events once there are that many.
func (tr *trace) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(guard)
	for {
		if ev := tr.all(); len(ev) >= n {
			return ev[:n]
		}
		select {
		case <-tr.changed:
		case <-deadline:
			t.Fatalf("waiting for %d events, have %v", n, tr.all())
		}
	}
}

// recPin is a gpiotest.Pin that records every level driven on it.
type recPin struct {
	*gpiotest.Pin
	tr *trace

	mu   sync.Mutex
	fail error // returned by Out while set
}

func newRecPin(name string, tr *trace, initial gpio.Level) *recPin {
	return &recPin{Pin: &gpiotest.Pin{N: name, L: initial}, tr: tr}
}

func (p *recPin) setFail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = err
}

func (p *recPin) Out(l gpio.Level) error {
	p.mu.Lock()
	fail := p.fail
	p.mu.Unlock()
	if fail != nil {
		return fail
	}
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	p.tr.mu.Lock()
	p.tr.events = append(p.tr.events, fmt.Sprintf("%s %s", p.N, map[gpio.Level]string{gpio.High: "H", gpio.Low: "L"}[l]))
	p.tr.mu.Unlock()
	select {
	case p.tr.changed <- struct{}{}:
	default:
	}
	return nil
}

// rig is an indicator with recorded, active-high outputs that start lit, as
// after a crash.
type rig struct {
	tr          *trace
	led, buzzer *recPin
	d           *Dev
}

func newRig(t *testing.T, tick time.Duration) *rig {
	t.Helper()
	tr := newTrace()
	r := &rig{tr: tr, led: newRecPin("LED", tr, gpio.High), buzzer: newRecPin("BUZ", tr, gpio.High)}
	d, err := New("front", r.led, r.buzzer, &Opts{Tick: tick})
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	if got, want := tr.all(), []string{"LED L", "BUZ L"}; !slices.Equal(got, want) {
		t.Fatalf("New drove %v, want %v", got, want)
	}
	return r
}

// run starts d.Run and returns a function that stops it and returns its
// error.
func run(t *testing.T, d *Dev) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(guard):
				t.Error("Run did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// TestFrames pins the patterns down tick by tick. The values are written
// out, not computed, so the table checks frame rather than restating it.
func TestFrames(t *testing.T) {
	type f struct {
		n         int
		led, buzz bool
	}
	tests := []struct {
		sig    hal.Signal
		frames []f
	}{
		{hal.SignalOff, []f{{0, false, false}, {7, false, false}}},
		{hal.SignalReady, []f{{0, true, false}, {1, true, false}, {1000, true, false}}},
		{hal.SignalOpen, []f{
			{0, true, true}, {1, true, true}, {2, true, false}, {4, true, false},
			{5, false, false}, {9, false, false}, {10, true, false}, {15, false, false}, {100, true, false},
		}},
		{hal.SignalAlarm, []f{
			{0, true, true}, {1, true, true}, {2, false, true}, {3, false, true}, {4, true, true},
			{19, false, true}, {20, true, false}, {39, false, false}, {40, true, true},
		}},
		{hal.SignalFault, []f{
			{0, true, false}, {9, true, false}, {10, false, false}, {19, false, false}, {20, true, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			for _, want := range tt.frames {
				led, buzz := frame(tt.sig, want.n)
				if led != want.led || buzz != want.buzz {
					t.Errorf("tick %d: LED %v buzzer %v, want LED %v buzzer %v", want.n, led, buzz, want.led, want.buzz)
				}
			}
		})
	}
}

// TestRates checks that the tick counts give the documented rates at the
// default tick.
func TestRates(t *testing.T) {
	tick := DefaultOpts.Tick
	for _, tt := range []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"Open blink period (2 Hz)", 2 * openHalf * tick, 500 * time.Millisecond},
		{"Open beep", openBeep * tick, 100 * time.Millisecond},
		{"Alarm blink period (5 Hz)", 2 * alarmLEDHalf * tick, 200 * time.Millisecond},
		{"Alarm buzzer on", alarmBuzzHalf * tick, time.Second},
		{"Fault blink period (1 Hz)", 2 * faultHalf * tick, time.Second},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestNewTurnsOff(t *testing.T) {
	tests := []struct {
		name                        string
		ledActiveLow, buzzActiveLow bool
		wantLED, wantBuzz           gpio.Level
	}{
		{"active-high", false, false, gpio.Low, gpio.Low},
		{"active-low LED", true, false, gpio.High, gpio.Low},
		{"active-low buzzer", false, true, gpio.Low, gpio.High},
		{"both active-low", true, true, gpio.High, gpio.High},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrace()
			// Each output starts at its "on" level.
			led, buzz := newRecPin("LED", tr, !tt.wantLED), newRecPin("BUZ", tr, !tt.wantBuzz)
			d, err := New("front", led, buzz, &Opts{LEDActiveLow: tt.ledActiveLow, BuzzerActiveLow: tt.buzzActiveLow})
			if err != nil {
				t.Fatal(err)
			}
			if led.Read() != tt.wantLED || buzz.Read() != tt.wantBuzz {
				t.Fatalf("after New LED %v buzzer %v, want %v %v", led.Read(), buzz.Read(), tt.wantLED, tt.wantBuzz)
			}
			// Ready lights the LED at its active level, and Halt puts it out.
			if err := d.Set(t.Context(), hal.SignalReady); err != nil {
				t.Fatal(err)
			}
			if led.Read() != !tt.wantLED || buzz.Read() != tt.wantBuzz {
				t.Fatalf("Ready shows LED %v buzzer %v, want %v %v", led.Read(), buzz.Read(), !tt.wantLED, tt.wantBuzz)
			}
			if err := d.Halt(); err != nil {
				t.Fatal(err)
			}
			if led.Read() != tt.wantLED || buzz.Read() != tt.wantBuzz {
				t.Fatalf("after Halt LED %v buzzer %v, want %v %v", led.Read(), buzz.Read(), tt.wantLED, tt.wantBuzz)
			}
		})
	}
}

// Steady signals show at once, without Run.
func TestSetWithoutRun(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := t.Context()
	steps := []struct {
		sig  hal.Signal
		want []string // events added by the step
	}{
		{hal.SignalReady, []string{"LED H"}},
		{hal.SignalReady, nil}, // already shown
		{hal.SignalOpen, []string{"BUZ H"}},
		{hal.SignalOpen, nil}, // no second beep
		{hal.SignalOff, []string{"LED L", "BUZ L"}},
	}
	seen := len(r.tr.all())
	for i, s := range steps {
		if err := r.d.Set(ctx, s.sig); err != nil {
			t.Fatal(err)
		}
		ev := r.tr.all()
		if got := ev[seen:]; !slices.Equal(got, s.want) {
			t.Fatalf("step %d Set(%v) drove %v, want %v", i, s.sig, got, s.want)
		}
		seen = len(ev)
	}
}

func TestRunPatterns(t *testing.T) {
	tests := []struct {
		sig  hal.Signal
		want []string // events after New's two, in order
	}{
		{hal.SignalOpen, []string{
			"LED H", "BUZ H", // tick 0: lit and beeping
			"BUZ L", // tick 2: the single beep ends
			"LED L", // tick 5
			"LED H", // tick 10
			"LED L", // tick 15
			"LED H", // tick 20: still no second beep
		}},
		{hal.SignalAlarm, []string{
			"LED H", "BUZ H", // tick 0
			"LED L", "LED H", "LED L", "LED H", "LED L", // ticks 2…10
			"LED H", "LED L", "LED H", "LED L", // ticks 12…18
			"LED H", "BUZ L", // tick 20: the buzzer pauses for 1 s
			"LED L", "LED H", "LED L", "LED H", "LED L",
			"LED H", "LED L", "LED H", "LED L",
			"LED H", "BUZ H", // tick 40: and sounds again
		}},
		{hal.SignalFault, []string{
			"LED H",                   // tick 0: lit, silent
			"LED L", "LED H", "LED L", // ticks 10, 20, 30
		}},
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			r := newRig(t, time.Millisecond)
			stop := run(t, r.d)
			if err := r.d.Set(t.Context(), tt.sig); err != nil {
				t.Fatal(err)
			}
			got := r.tr.wait(t, 2+len(tt.want))[2:]
			if !slices.Equal(got, tt.want) {
				t.Fatalf("drove\n%v\nwant\n%v", got, tt.want)
			}
			if err := stop(); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			// Stopping Run turns everything off, mid-pattern or not.
			if r.led.Read() != gpio.Low || r.buzzer.Read() != gpio.Low {
				t.Fatalf("after Run stopped LED %v buzzer %v, want both Low", r.led.Read(), r.buzzer.Read())
			}
		})
	}
}

// Switching from a moving pattern to a steady one stops the movement.
func TestRunStopsPattern(t *testing.T) {
	r := newRig(t, time.Millisecond)
	run(t, r.d)
	ctx := t.Context()
	if err := r.d.Set(ctx, hal.SignalAlarm); err != nil {
		t.Fatal(err)
	}
	r.tr.wait(t, 2+6) // the alarm is blinking
	if err := r.d.Set(ctx, hal.SignalReady); err != nil {
		t.Fatal(err)
	}
	if r.led.Read() != gpio.High || r.buzzer.Read() != gpio.Low {
		t.Fatalf("Ready shows LED %v buzzer %v, want High Low", r.led.Read(), r.buzzer.Read())
	}
	n := len(r.tr.all())
	if err := r.d.Set(ctx, hal.SignalOpen); err != nil {
		t.Fatal(err)
	}
	ev := r.tr.wait(t, n+2)[n:]
	// From Ready (LED lit, buzzer silent) Open's first frame only adds the beep.
	if want := []string{"BUZ H", "BUZ L"}; !slices.Equal(ev, want) {
		t.Fatalf("after Ready then Open drove %v, want %v", ev, want)
	}
	if err := r.d.Halt(); err != nil {
		t.Fatal(err)
	}
	if r.led.Read() != gpio.Low || r.buzzer.Read() != gpio.Low {
		t.Fatalf("after Halt LED %v buzzer %v, want both Low", r.led.Read(), r.buzzer.Read())
	}
}

func TestNoBuzzer(t *testing.T) {
	tr := newTrace()
	led := newRecPin("LED", tr, gpio.Low)
	d, err := New("front", led, nil, &Opts{Tick: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	if err := d.Set(t.Context(), hal.SignalAlarm); err != nil {
		t.Fatal(err)
	}
	want := []string{"LED L", "LED H", "LED L", "LED H", "LED L"}
	if got := tr.wait(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("drove %v, want %v", got, want)
	}
}

func TestSetErrors(t *testing.T) {
	r := newRig(t, time.Hour)
	if err := r.d.Set(t.Context(), hal.Signal(42)); err == nil || !strings.HasPrefix(err.Error(), "indicator: front:") {
		t.Fatalf("Set(42) = %v, want an indicator error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.d.Set(ctx, hal.SignalReady); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a cancelled context = %v, want context.Canceled", err)
	}
	if got := r.tr.all(); len(got) != 2 {
		t.Fatalf("failed Sets drove %v", got[2:])
	}

	// A failing output is reported, and both outputs are driven again on
	// the next Set, since their state is unknown.
	pinErr := errors.New("gpio gone")
	r.buzzer.setFail(pinErr)
	if err := r.d.Set(t.Context(), hal.SignalOpen); !errors.Is(err, pinErr) {
		t.Fatalf("Set with a failing buzzer = %v, want the pin's error", err)
	}
	r.buzzer.setFail(nil)
	if err := r.d.Set(t.Context(), hal.SignalOpen); err != nil {
		t.Fatal(err)
	}
	if r.led.Read() != gpio.High || r.buzzer.Read() != gpio.High {
		t.Fatalf("after recovery LED %v buzzer %v, want both High", r.led.Read(), r.buzzer.Read())
	}
}

func TestNewErrors(t *testing.T) {
	tr := newTrace()
	if _, err := New("front", nil, nil, nil); err == nil {
		t.Fatal("New with a nil LED succeeded")
	}
	if _, err := New("front", newRecPin("LED", tr, gpio.Low), nil, &Opts{Tick: -1}); err == nil {
		t.Fatal("New with a negative tick succeeded")
	}
	bad := newRecPin("LED", tr, gpio.Low)
	bad.setFail(errors.New("gpio gone"))
	if _, err := New("front", bad, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "indicator: front:") {
		t.Fatalf("New with a failing LED = %v, want an indicator error", err)
	}
}

func TestRunTwice(t *testing.T) {
	r := newRig(t, time.Millisecond)
	stop := run(t, r.d)
	// Only Run moves a pattern past its first frame: a third event means the
	// first Run holds the indicator.
	if err := r.d.Set(t.Context(), hal.SignalAlarm); err != nil {
		t.Fatal(err)
	}
	r.tr.wait(t, 2+3)
	if err := r.d.Run(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "indicator: front:") {
		t.Fatalf("a second concurrent Run = %v, want an indicator error", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.d.Run(ctx); err != nil {
		t.Fatalf("Run after Run returned = %v", err)
	}
}

func TestString(t *testing.T) {
	r := newRig(t, time.Hour)
	if got, want := r.d.String(), "indicator front on LED(0)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
