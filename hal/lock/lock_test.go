package lock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/bangfu/cabinet/hal"
)

// recPin is a gpiotest.Pin that records every level driven on it and when,
// so a test sees the whole waveform and not only the final level.
type recPin struct {
	*gpiotest.Pin
	fail error // returned by Out when set

	mu      sync.Mutex
	levels  []gpio.Level
	at      []time.Time
	changed chan struct{} // signalled after every Out
}

func newRecPin(name string, initial gpio.Level) *recPin {
	return &recPin{
		Pin:     &gpiotest.Pin{N: name, Num: 17, L: initial},
		changed: make(chan struct{}, 1),
	}
}

func (p *recPin) Out(l gpio.Level) error {
	if p.fail != nil {
		return p.fail
	}
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	p.mu.Lock()
	p.levels = append(p.levels, l)
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	return nil
}

func (p *recPin) waveform() []gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]gpio.Level(nil), p.levels...)
}

// waitOuts waits until n levels were driven and returns the waveform.
func (p *recPin) waitOuts(t *testing.T, n int) []gpio.Level {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		if w := p.waveform(); len(w) >= n {
			return w
		}
		select {
		case <-p.changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %d driven levels: got %v", n, p.waveform())
		}
	}
}

func equalLevels(a, b []gpio.Level) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLevels(t *testing.T) {
	const H, L = gpio.High, gpio.Low
	// Expected levels are spelled out rather than derived, so the table
	// checks the driver's arithmetic instead of repeating it.
	tests := []struct {
		name       string
		activeLow  bool
		failSafe   bool
		safe, open gpio.Level
	}{
		{"active-high fail-secure", false, false, L, H},
		{"active-high fail-safe", false, true, H, L},
		{"active-low fail-secure", true, false, H, L},
		{"active-low fail-safe", true, true, L, H},
	}
	for _, tt := range tests {
		for _, mode := range []Mode{Hold, Pulse} {
			t.Run(tt.name+" "+mode.String(), func(t *testing.T) {
				ctx := t.Context()
				// The pin starts at the open level, as a killed process may
				// have left it: New must close the lock.
				out := newRecPin("LOCK", tt.open)
				d, err := New("door1", out, &Opts{
					ActiveLow: tt.activeLow,
					FailSafe:  tt.failSafe,
					Mode:      mode,
					PulseTime: 5 * time.Millisecond,
				})
				if err != nil {
					t.Fatal(err)
				}
				if w := out.waveform(); !equalLevels(w, []gpio.Level{tt.safe}) {
					t.Fatalf("after New drove %v, want only the safe level %v", w, tt.safe)
				}
				assertLocked(t, d, true)

				if err := d.Energise(ctx); err != nil {
					t.Fatal(err)
				}
				assertLocked(t, d, false)
				want := []gpio.Level{tt.safe, tt.open}
				if mode == Pulse {
					// The pulse ends by itself; the lock stays commanded open
					// until Release because the latch stays open mechanically.
					want = append(want, tt.safe)
					if w := out.waitOuts(t, 3); !equalLevels(w, want) {
						t.Fatalf("pulse drove %v, want %v", w, want)
					}
					assertLocked(t, d, false)
				} else if w := out.waveform(); !equalLevels(w, want) {
					t.Fatalf("hold drove %v, want %v", w, want)
				}

				if err := d.Release(ctx); err != nil {
					t.Fatal(err)
				}
				want = append(want, tt.safe)
				if w := out.waveform(); !equalLevels(w, want) {
					t.Fatalf("after Release drove %v, want %v", w, want)
				}
				assertLocked(t, d, true)

				if err := d.Energise(ctx); err != nil {
					t.Fatal(err)
				}
				if err := d.Halt(); err != nil {
					t.Fatal(err)
				}
				if got := out.Read(); got != tt.safe {
					t.Fatalf("after Halt the pin is %v, want the safe level %v", got, tt.safe)
				}
				assertLocked(t, d, true)
			})
		}
	}
}

func assertLocked(t *testing.T, d *Dev, want bool) {
	t.Helper()
	got, err := d.Locked(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Locked() = %v, want %v", got, want)
	}
}

func TestPulseDropsAfterPulseTime(t *testing.T) {
	const pulse = 30 * time.Millisecond
	out := newRecPin("LOCK", gpio.Low)
	d, err := New("door1", out, &Opts{Mode: Pulse, PulseTime: pulse})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Energise(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := out.waitOuts(t, 3)
	if !equalLevels(w, []gpio.Level{gpio.Low, gpio.High, gpio.Low}) {
		t.Fatalf("drove %v, want Low High Low", w)
	}
	out.mu.Lock()
	held := out.at[2].Sub(out.at[1])
	out.mu.Unlock()
	// A lower bound only: a timer never fires early, but it may fire late.
	if held < pulse {
		t.Fatalf("coil held for %v, want at least the pulse time %v", held, pulse)
	}
}

func TestHaltStopsPulse(t *testing.T) {
	out := newRecPin("LOCK", gpio.Low)
	d, err := New("door1", out, &Opts{Mode: Pulse, PulseTime: MaxPulseTime})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Energise(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	running := d.timer != nil
	d.mu.Unlock()
	if running {
		t.Fatal("the pulse timer still runs after Halt")
	}
	if w := out.waveform(); !equalLevels(w, []gpio.Level{gpio.Low, gpio.High, gpio.Low}) {
		t.Fatalf("drove %v, want Low High Low", w)
	}
}

// A pulse timer that fires late, after a Release and a new Energise, must not
// cut the new pulse short.
func TestStalePulseTimerIgnored(t *testing.T) {
	ctx := t.Context()
	out := newRecPin("LOCK", gpio.Low)
	d, err := New("door1", out, &Opts{Mode: Pulse, PulseTime: MaxPulseTime})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Energise(ctx); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	stale := d.gen
	d.mu.Unlock()
	if err := d.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Energise(ctx); err != nil {
		t.Fatal(err)
	}
	d.endPulse(stale)
	if got := out.Read(); got != gpio.High {
		t.Fatalf("a stale pulse timer dropped the coil: pin is %v", got)
	}
	d.mu.Lock()
	current := d.gen
	d.mu.Unlock()
	d.endPulse(current)
	if got := out.Read(); got != gpio.Low {
		t.Fatalf("the current pulse timer did not drop the coil: pin is %v", got)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
}

func TestFeedback(t *testing.T) {
	tests := []struct {
		name        string
		lockedLevel gpio.Level
		pin         gpio.Level // what the bolt switch reads
		wantLocked  bool
	}{
		{"low means locked, reads low", gpio.Low, gpio.Low, true},
		{"low means locked, reads high", gpio.Low, gpio.High, false},
		{"high means locked, reads high", gpio.High, gpio.High, true},
		{"high means locked, reads low", gpio.High, gpio.Low, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			fb := &gpiotest.Pin{N: "BOLT", Num: 27}
			d, err := New("door1", newRecPin("LOCK", gpio.Low), &Opts{
				Feedback:            fb,
				FeedbackLockedLevel: tt.lockedLevel,
				FeedbackPull:        gpio.PullNoChange,
				Settle:              time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !d.HasFeedback() {
				t.Fatal("HasFeedback() = false with a feedback pin")
			}
			if err := fb.Out(tt.pin); err != nil {
				t.Fatal(err)
			}
			// The switch, not the command, answers: Energise must not
			// change what Locked says.
			for _, energise := range []bool{false, true} {
				if energise {
					if err := d.Energise(ctx); err != nil {
						t.Fatal(err)
					}
				}
				assertLocked(t, d, tt.wantLocked)
			}
			if err := d.Verify(ctx, tt.wantLocked); err != nil {
				t.Fatalf("Verify(%v) with agreeing switch: %v", tt.wantLocked, err)
			}
			err = d.Verify(ctx, !tt.wantLocked)
			if !errors.Is(err, ErrFeedback) || !errors.Is(err, hal.ErrFault) {
				t.Fatalf("Verify(%v) with disagreeing switch = %v, want ErrFeedback and hal.ErrFault", !tt.wantLocked, err)
			}
			if !strings.HasPrefix(err.Error(), "lock: door1:") {
				t.Fatalf("error %q lacks the package and lock prefix", err)
			}
		})
	}
}

func TestFeedbackPull(t *testing.T) {
	fb := &gpiotest.Pin{N: "BOLT", Num: 27}
	if _, err := New("door1", newRecPin("LOCK", gpio.Low), &Opts{Feedback: fb, FeedbackPull: gpio.PullUp}); err != nil {
		t.Fatal(err)
	}
	if fb.Pull() != gpio.PullUp {
		t.Fatalf("feedback pull = %v, want PullUp", fb.Pull())
	}
}

func TestVerifyWithoutFeedback(t *testing.T) {
	d, err := New("door1", newRecPin("LOCK", gpio.Low), &Opts{Settle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d.HasFeedback() {
		t.Fatal("HasFeedback() = true without a feedback pin")
	}
	// Nothing to check, so no hour-long wait either.
	if err := d.Verify(t.Context(), true); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyCancelDuringSettle(t *testing.T) {
	fb := &gpiotest.Pin{N: "BOLT", Num: 27}
	d, err := New("door1", newRecPin("LOCK", gpio.Low), &Opts{Feedback: fb, Settle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Verify(ctx, true) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Verify = %v, want context.Canceled", err)
		}
		if errors.Is(err, ErrFeedback) {
			t.Fatalf("a cancelled Verify reported a feedback fault: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Verify ignored the cancelled context")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		out  gpio.PinOut
		opts *Opts
	}{
		{"nil pin", nil, nil},
		{"unknown mode", newRecPin("LOCK", gpio.Low), &Opts{Mode: Mode(7)}},
		{"pulse too long", newRecPin("LOCK", gpio.Low), &Opts{Mode: Pulse, PulseTime: MaxPulseTime + 1}},
		{"negative pulse", newRecPin("LOCK", gpio.Low), &Opts{Mode: Pulse, PulseTime: -1}},
		{"negative settle", newRecPin("LOCK", gpio.Low), &Opts{Settle: -1}},
		{"feedback In fails", newRecPin("LOCK", gpio.Low), &Opts{Feedback: badIn{&gpiotest.Pin{N: "BOLT"}}}},
		{"output fails", &recPin{Pin: &gpiotest.Pin{N: "LOCK"}, fail: errors.New("gpio gone"), changed: make(chan struct{}, 1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New("door1", tt.out, tt.opts)
			if err == nil {
				t.Fatalf("New = %v, want an error", d)
			}
			if !strings.HasPrefix(err.Error(), "lock: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// The safe level must already be on the pin when a later step of New fails.
func TestNewDrivesSafeBeforeFeedback(t *testing.T) {
	out := newRecPin("LOCK", gpio.High)
	if _, err := New("door1", out, &Opts{Feedback: badIn{&gpiotest.Pin{N: "BOLT"}}}); err == nil {
		t.Fatal("New succeeded with a broken feedback pin")
	}
	if got := out.Read(); got != gpio.Low {
		t.Fatalf("pin is %v after a failed New, want the safe level Low", got)
	}
}

type badIn struct{ *gpiotest.Pin }

func (badIn) In(gpio.Pull, gpio.Edge) error { return errors.New("no such line") }

func TestEnergiseErrors(t *testing.T) {
	t.Run("cancelled context", func(t *testing.T) {
		out := newRecPin("LOCK", gpio.Low)
		d, err := New("door1", out, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := d.Energise(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Energise = %v, want context.Canceled", err)
		}
		if w := out.waveform(); !equalLevels(w, []gpio.Level{gpio.Low}) {
			t.Fatalf("a cancelled Energise drove %v", w)
		}
		if err := d.Release(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Release = %v, want context.Canceled", err)
		}
		if _, err := d.Locked(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Locked = %v, want context.Canceled", err)
		}
	})
	t.Run("pin fails", func(t *testing.T) {
		out := newRecPin("LOCK", gpio.Low)
		d, err := New("door1", out, nil)
		if err != nil {
			t.Fatal(err)
		}
		pinErr := errors.New("gpio gone")
		out.fail = pinErr
		if err := d.Energise(t.Context()); !errors.Is(err, pinErr) {
			t.Fatalf("Energise = %v, want the pin's error", err)
		}
		// The command failed, so the lock must not claim to be open.
		assertLocked(t, d, true)
		if err := d.Halt(); !errors.Is(err, pinErr) {
			t.Fatalf("Halt = %v, want the pin's error", err)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	out := newRecPin("LOCK", gpio.Low)
	d, err := New("door1", out, &Opts{Mode: Pulse, PulseTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				var err error
				switch (i + j) % 3 {
				case 0:
					err = d.Energise(ctx)
				case 1:
					err = d.Release(ctx)
				default:
					_, err = d.Locked(ctx)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if got := out.Read(); got != gpio.Low {
		t.Fatalf("pin is %v after Halt, want Low", got)
	}
	assertLocked(t, d, true)
}

func TestString(t *testing.T) {
	d, err := New("door1", newRecPin("LOCK", gpio.Low), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.String(), "lock door1 on LOCK(17)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got := Mode(9).String(); got != "Mode(9)" {
		t.Fatalf("Mode(9).String() = %q", got)
	}
}
