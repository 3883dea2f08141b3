package hx711

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/internal/clocktest"
)

// rig is a group of fake chips on a fake clock line, with a fake clock.
type rig struct {
	clock *clocktest.Clock
	line  *fakeLine
	chips []*fakeChip
	g     *Group
}

func newRig(t *testing.T, n int, o *Opts) *rig {
	t.Helper()
	fc := clocktest.New()
	line, chips := newFakeBus(fc, fc, n)
	opts := Opts{}
	if o != nil {
		opts = *o
	}
	opts.Clock = fc
	pins := make([]gpio.PinIn, n)
	for i, c := range chips {
		pins[i] = c
	}
	g, err := NewGroup(line, pins, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{clock: fc, line: line, chips: chips, g: g}
}

// dev returns the rig's single chip as a Dev.
func (r *rig) dev() *Dev { return &Dev{g: r.g} }

func (r *rig) readsOf(i int) []readRec {
	reads, _, _, _ := r.chips[i].snapshot()
	return reads
}

func TestReadValues(t *testing.T) {
	tests := []struct {
		name string
		word uint32
		want int32
	}{
		{"zero", 0x000000, 0},
		{"one", 0x000001, 1},
		{"positive", 0x123456, 0x123456},
		{"largest unsaturated", 0x7FFFFE, 8388606},
		{"positive full scale", 0x7FFFFF, 8388607},
		{"negative full scale", 0x800000, -8388608},
		{"smallest unsaturated", 0x800001, -8388607},
		{"minus two", 0xFFFFFE, -2},
		{"negative", 0xEDCBAA, -0x123456},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 1, nil)
			r.chips[0].push(0x55AA55, tc.word) // the first is dropped: gain unknown at start
			got, err := r.dev().ReadRaw(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ReadRaw = %d (%#x), want %d", got, got, tc.want)
			}
			if p := pulsesPerRead(r.line); !slices.Equal(p, []int{25, 25}) {
				t.Errorf("pulses per read = %v, want [25 25]", p)
			}
			checkProtocol(t, r.line)
		})
	}
}

// Saturated values come back as values, and scale.Filter judges them.
func TestSaturationReachesFilter(t *testing.T) {
	if int32(0x7FFFFF) != scale.RawMax || int32(-0x800000) != scale.RawMin {
		t.Fatal("scale's full-scale constants are not the HX711's")
	}
	r := newRig(t, 1, nil)
	d := r.dev()
	f, err := scale.New(d, scale.Calibration{CountsPerGram: 100}, &scale.Opts{Window: 2, Clock: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r.chips[0].push(0, 0x7FFFFF, 1000, 0x800000, 2000, 2000)
	steps := []struct {
		raw       int32
		saturated bool
	}{
		{8388607, true},
		{1000, false},
		{-8388608, true},
		{2000, false},
	}
	for i, s := range steps {
		v, err := d.ReadRaw(t.Context())
		if err != nil || v != s.raw {
			t.Fatalf("step %d: ReadRaw = %d, %v; want %d, nil", i, v, err, s.raw)
		}
		f.Feed(v, r.clock.Now())
		_, err = f.Reading()
		if got := errors.Is(err, scale.ErrSaturated) && errors.Is(err, hal.ErrFault); got != s.saturated {
			t.Errorf("step %d: raw %d: Reading error %v, want saturated %v", i, v, err, s.saturated)
		}
	}
}

func TestGainPulses(t *testing.T) {
	for _, gain := range []Gain{A128, B32, A64} {
		t.Run(gain.String(), func(t *testing.T) {
			r := newRig(t, 1, &Opts{Gain: gain})
			r.chips[0].push(0x111111, 0x222222, 0x333333)
			d := r.dev()
			for _, want := range []int32{0x222222, 0x333333} {
				got, err := d.ReadRaw(t.Context())
				if err != nil || got != want {
					t.Fatalf("ReadRaw = %#x, %v; want %#x", got, err, want)
				}
			}
			n := gain.pulses()
			if p := pulsesPerRead(r.line); !slices.Equal(p, []int{n, n, n}) {
				t.Errorf("pulses per read = %v, want three of %d", p, n)
			}
			reads := r.readsOf(0)
			// The first conversion was made at the power-up selection; the
			// ones returned at the selected gain.
			wantGains := []Gain{A128, gain, gain}
			for i, rd := range reads {
				if rd.Gain != wantGains[i] || rd.Pulses != n {
					t.Errorf("read %d: gain %v, %d pulses; want %v, %d", i, rd.Gain, rd.Pulses, wantGains[i], n)
				}
			}
			checkProtocol(t, r.line)
		})
	}
}

func TestDataReadyRespected(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		polls int
	}{
		{"ready at once", 0, 0},
		{"after a delay", 7300 * time.Microsecond, 0},
		{"after polls", 0, 9},
		{"after a delay and polls", 95 * time.Millisecond, 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 1, nil)
			start := r.clock.Now()
			r.chips[0].pushWords(word{v: 1, after: tc.after, polls: tc.polls}, word{v: 42, after: tc.after, polls: tc.polls})
			got, err := r.dev().ReadRaw(t.Context())
			if err != nil || got != 42 {
				t.Fatalf("ReadRaw = %d, %v; want 42", got, err)
			}
			reads := r.readsOf(0)
			if len(reads) != 2 {
				t.Fatalf("chip saw %d reads, want 2", len(reads))
			}
			w := r.line.edges()
			if len(w) == 0 || w[0].At.Sub(start) < tc.after {
				t.Errorf("first clock edge at +%v, data ready only at +%v", w[0].At.Sub(start), tc.after)
			}
			for i, rd := range reads {
				if rd.First.Before(rd.ReadyAt) {
					t.Errorf("read %d: first pulse at %v before data-ready at %v", i, rd.First, rd.ReadyAt)
				}
			}
			checkProtocol(t, r.line)
		})
	}
}

func TestMissingChip(t *testing.T) {
	tests := []struct {
		name    string
		chips   int
		absent  int
		timeout time.Duration
	}{
		{"single", 1, 0, 0},
		{"single short timeout", 1, 0, 20 * time.Millisecond},
		{"second of three", 3, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.chips, &Opts{ReadyTimeout: tc.timeout})
			for i, c := range r.chips {
				c.absent = i == tc.absent
				c.gen = func(n int) uint32 { return uint32(n) }
				if p := c.pullSet(); p != gpio.PullUp {
					t.Errorf("chip %d: data pin pull %v, want PullUp", i, p)
				}
			}
			start := r.clock.Now()
			_, err := r.g.Channel(0).ReadRaw(t.Context())
			if !errors.Is(err, ErrNotReady) || !errors.Is(err, hal.ErrFault) {
				t.Fatalf("err = %v, want ErrNotReady and hal.ErrFault", err)
			}
			absent := r.chips[tc.absent].Name()
			if !strings.Contains(err.Error(), "DOUT high on "+absent+" ") {
				t.Errorf("error %q does not name only %s", err, absent)
			}
			want := DefaultOpts.ReadyTimeout
			if tc.timeout != 0 {
				want = tc.timeout
			}
			if waited := r.clock.Now().Sub(start); waited < want || waited > want+DefaultOpts.PollInterval {
				t.Errorf("waited %v, want %v", waited, want)
			}
			if w := r.line.edges(); len(w) != 0 {
				t.Errorf("clock pulsed %d times with a chip missing", len(w)/2)
			}
		})
	}
}

// Without the pull-up a missing chip would read 0 counts, a plausible weight:
// the fake models why the driver sets it.
func TestFloatingDataReadsZero(t *testing.T) {
	line, chips := newFakeBus(systemClock{}, nil, 1)
	chips[0].absent = true
	if err := chips[0].In(gpio.Float, gpio.NoEdge); err != nil {
		t.Fatal(err)
	}
	if chips[0].Read() != gpio.Low {
		t.Fatal("fake: a floating line should read low")
	}
	if _, err := New(line, chips[0], nil); err != nil {
		t.Fatal(err)
	}
	if chips[0].Read() != gpio.High {
		t.Error("after New the data line does not read high with no chip")
	}
}

func TestMinusOne(t *testing.T) {
	tests := []struct {
		name    string
		words   []uint32
		want    int32
		wantErr error
		reads   int
	}{
		{"re-read gives a value", []uint32{0, 0xFFFFFF, 0x000123}, 0x123, nil, 3},
		{"re-read gives minus one again", []uint32{0, 0xFFFFFF, 0xFFFFFF}, 0, ErrStuck, 3},
		{"re-read gives a negative", []uint32{0, 0xFFFFFF, 0xFFFFFE}, -2, nil, 3},
		{"no re-read for minus two", []uint32{0, 0xFFFFFE}, -2, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 1, nil)
			r.chips[0].push(tc.words...)
			r.chips[0].push(77)
			d := r.dev()
			got, err := d.ReadRaw(t.Context())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, hal.ErrFault) {
					t.Fatalf("err = %v, want %v and hal.ErrFault", err, tc.wantErr)
				}
			} else if err != nil || got != tc.want {
				t.Fatalf("ReadRaw = %d, %v; want %d", got, err, tc.want)
			}
			if n := len(r.readsOf(0)); n != tc.reads {
				t.Errorf("chip saw %d reads, want %d", n, tc.reads)
			}
			// The next read starts afresh.
			if got, err := d.ReadRaw(t.Context()); err != nil || got != 77 {
				t.Errorf("next ReadRaw = %d, %v; want 77", got, err)
			}
			checkProtocol(t, r.line)
		})
	}
}

func TestGainChangeDiscardsOne(t *testing.T) {
	r := newRig(t, 1, nil)
	d := r.dev()
	r.chips[0].push(10, 11, 12, 13, 14, 15)
	read := func(want int32) {
		t.Helper()
		if got, err := d.ReadRaw(t.Context()); err != nil || got != want {
			t.Fatalf("ReadRaw = %d, %v; want %d", got, err, want)
		}
	}
	read(11) // 10 dropped at start
	if err := d.SetGain(B32); err != nil {
		t.Fatal(err)
	}
	read(13) // 12 was converted at A128: dropped
	if err := d.SetGain(B32); err != nil {
		t.Fatal(err)
	}
	read(14) // no change, nothing dropped
	if err := d.SetGain(Gain(4)); err == nil {
		t.Error("SetGain(4) succeeded")
	}
	if err := d.SetGain(A64); err != nil {
		t.Fatal(err)
	}
	r.chips[0].push(16)
	read(16) // 15 dropped
	if p := pulsesPerRead(r.line); !slices.Equal(p, []int{25, 25, 26, 26, 26, 27, 27}) {
		t.Errorf("pulses per read = %v", p)
	}
	gains := []Gain{A128, A128, A128, B32, B32, B32, A64}
	for i, rd := range r.readsOf(0) {
		if rd.Gain != gains[i] {
			t.Errorf("read %d (word %d): converted at %v, want %v", i, rd.Word, rd.Gain, gains[i])
		}
	}
	checkProtocol(t, r.line)
}

func TestPowerDownUpReset(t *testing.T) {
	r := newRig(t, 1, &Opts{Gain: B32})
	d := r.dev()
	c := r.chips[0]
	c.push(1, 2)
	if got, err := d.ReadRaw(t.Context()); err != nil || got != 2 {
		t.Fatalf("ReadRaw = %d, %v; want 2", got, err)
	}

	if err := d.PowerDown(); err != nil {
		t.Fatal(err)
	}
	if !c.poweredDown() || r.line.Read() != gpio.High {
		t.Fatal("PowerDown: chip not powered down")
	}
	if err := d.PowerDown(); err != nil { // a second one is harmless
		t.Fatal(err)
	}
	if _, err := d.ReadRaw(t.Context()); !errors.Is(err, ErrPoweredDown) || !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("ReadRaw while down: err = %v, want ErrPoweredDown and hal.ErrClosed", err)
	}
	c.push(3, 4)
	if err := d.PowerUp(); err != nil {
		t.Fatal(err)
	}
	if r.line.Read() != gpio.Low {
		t.Fatal("PowerUp left the clock high")
	}
	if got, err := d.ReadRaw(t.Context()); err != nil || got != 4 {
		t.Fatalf("ReadRaw after PowerUp = %d, %v; want 4 (3 is the A128 conversion)", got, err)
	}

	c.push(5, 6)
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if r.line.Read() != gpio.Low {
		t.Fatal("Reset left the clock high")
	}
	if got, err := d.ReadRaw(t.Context()); err != nil || got != 6 {
		t.Fatalf("ReadRaw after Reset = %d, %v; want 6", got, err)
	}

	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if !c.poweredDown() {
		t.Fatal("Halt: chip not powered down")
	}
	if _, err := d.ReadRaw(t.Context()); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("ReadRaw after Halt: err = %v, want hal.ErrClosed", err)
	}
	if err := d.PowerUp(); err != nil {
		t.Fatal(err)
	}

	reads, _, _, cycles := c.snapshot()
	if cycles != 3 {
		t.Errorf("chip power-cycled %d times, want 3 (PowerUp, Reset, PowerUp)", cycles)
	}
	want := []struct {
		word uint32
		gain Gain
	}{{1, A128}, {2, B32}, {3, A128}, {4, B32}, {5, A128}, {6, B32}}
	for i, rd := range reads {
		if rd.Word != want[i].word || rd.Gain != want[i].gain || rd.Pulses != B32.pulses() {
			t.Errorf("read %d: word %d at %v, %d pulses; want %d at %v, 26", i, rd.Word, rd.Gain, rd.Pulses, want[i].word, want[i].gain)
		}
	}
	// Every high phase outside a read is a power-down hold of 60 µs or more.
	checkProtocol(t, r.line)
	holds := 0
	w := r.line.edges()
	for i, e := range w {
		if e.Level == gpio.High && e.Read == 0 && i+1 < len(w) && w[i+1].At.Sub(e.At) >= PowerDownTime {
			holds++
		}
	}
	if holds != 3 {
		t.Errorf("%d power-down holds in the waveform, want 3", holds)
	}
}

func TestGroupReadAll(t *testing.T) {
	tests := []struct {
		name    string
		words   [3][]uint32
		want    []int32
		reads   int
		errChan int // channel with ErrStuck, or −1
	}{
		{
			name:    "different words",
			words:   [3][]uint32{{0, 0x000100}, {0, 0xFFFF00}, {0, 0x7FFFFF}},
			want:    []int32{0x100, -0x100, 8388607},
			reads:   2,
			errChan: -1,
		},
		{
			name:    "minus one on one chip",
			words:   [3][]uint32{{0, 5, 6}, {0, 0xFFFFFF, 7}, {0, 8, 9}},
			want:    []int32{5, 7, 8},
			reads:   3,
			errChan: -1,
		},
		{
			name:    "stuck chip",
			words:   [3][]uint32{{0, 5, 6}, {0, 0xFFFFFF, 0xFFFFFF}, {0, 8, 9}},
			want:    []int32{5, -1, 8},
			reads:   3,
			errChan: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 3, nil)
			for i, c := range r.chips {
				c.push(tc.words[i]...)
			}
			got, err := r.g.ReadAll(t.Context())
			if !slices.Equal(got, tc.want) {
				t.Errorf("ReadAll = %v, want %v", got, tc.want)
			}
			if tc.errChan < 0 && err != nil {
				t.Errorf("err = %v", err)
			}
			if tc.errChan >= 0 {
				name := r.chips[tc.errChan].Name()
				if !errors.Is(err, ErrStuck) || !errors.Is(err, hal.ErrFault) || !strings.Contains(err.Error(), name) {
					t.Errorf("err = %v, want ErrStuck naming %s", err, name)
				}
				if _, cerr := r.g.Channel(tc.errChan).ReadRaw(t.Context()); !errors.Is(cerr, ErrStuck) {
					t.Errorf("channel %d: err = %v, want the shared ErrStuck", tc.errChan, cerr)
				}
			}
			for i, c := range r.chips {
				reads, _, _, _ := c.snapshot()
				if len(reads) != tc.reads {
					t.Errorf("chip %d saw %d reads, want %d", i, len(reads), tc.reads)
				}
			}
			if p := pulsesPerRead(r.line); len(p) != tc.reads || slices.ContainsFunc(p, func(n int) bool { return n != 25 }) {
				t.Errorf("pulses per read = %v", p)
			}
			checkProtocol(t, r.line)
		})
	}
}

func TestGroupChannels(t *testing.T) {
	r := newRig(t, 3, nil)
	for i, c := range r.chips {
		c.gen = func(n int) uint32 { return uint32(i<<16 | n) }
		c.genAfter = 100 * time.Millisecond // 10 samples/s
	}
	ch := []hal.RawScale{r.g.Channel(0), r.g.Channel(1), r.g.Channel(2)}
	groupReads := func() int { return len(r.readsOf(0)) }
	read := func(i int, want int32) {
		t.Helper()
		got, err := ch[i].ReadRaw(t.Context())
		if err != nil || got != want {
			t.Fatalf("channel %d: ReadRaw = %#x, %v; want %#x", i, got, err, want)
		}
	}

	read(0, 0<<16|1) // conversion 0 dropped at start, 1 read from every chip
	if n := groupReads(); n != 2 {
		t.Fatalf("%d group reads, want 2", n)
	}
	read(1, 1<<16|1) // from the same group read
	read(2, 2<<16|1)
	if n := groupReads(); n != 2 {
		t.Errorf("channels 1 and 2 clocked the line again: %d group reads", n)
	}
	read(1, 1<<16|2) // its sample was taken: a new group read
	if n := groupReads(); n != 3 {
		t.Errorf("%d group reads, want 3", n)
	}
	// Channel 0 still has conversion 2 waiting, but by the time it asks the
	// chip has a newer one: the stale sample is not served.
	r.clock.Advance(150 * time.Millisecond)
	read(0, 0<<16|3)
	if n := groupReads(); n != 4 {
		t.Errorf("%d group reads, want 4", n)
	}
	checkProtocol(t, r.line)

	if got := r.g.String(); got != "hx711(clk SCK, data DTA DTB DTC)" {
		t.Errorf("group String = %q", got)
	}
	if got := ch[2].String(); got != "hx711(clk SCK, data DTC)" {
		t.Errorf("channel String = %q", got)
	}
}

// Shelves on one clock line read concurrently: one reader at a time, every
// value from its own chip, no sample twice, and the line clocked cleanly.
func TestConcurrentChannels(t *testing.T) {
	const chips, perChannel = 3, 40
	r := newRig(t, chips, nil)
	for i, c := range r.chips {
		c.gen = func(n int) uint32 { return uint32(i<<20 | n) }
		c.genAfter = 12500 * time.Microsecond // 80 samples/s
	}
	got := make([][]int32, chips)
	var wg sync.WaitGroup
	for i := range chips {
		wg.Go(func() {
			ch := r.g.Channel(i)
			for range perChannel {
				v, err := ch.ReadRaw(t.Context())
				if err != nil {
					t.Errorf("channel %d: %v", i, err)
					return
				}
				got[i] = append(got[i], v)
			}
		})
	}
	wg.Wait()
	for i, vs := range got {
		for j, v := range vs {
			if int(v>>20) != i {
				t.Errorf("channel %d got %#x from chip %d", i, v, v>>20)
			}
			if j > 0 && v <= vs[j-1] {
				t.Errorf("channel %d: %#x after %#x", i, v, vs[j-1])
			}
		}
	}
	checkProtocol(t, r.line)
	reads := r.readsOf(0)
	if len(reads) > chips*perChannel+1 {
		t.Errorf("%d group reads for %d channel reads", len(reads), chips*perChannel)
	}
	for i, rd := range reads {
		if rd.Pulses != 25 {
			t.Errorf("read %d: %d pulses", i, rd.Pulses)
		}
	}
}

func TestCtxCancelDuringReadyWait(t *testing.T) {
	r := newRig(t, 1, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r.clock.OnSleep(func(n int) {
		if n == 3 {
			cancel()
		}
	})
	_, err := r.dev().ReadRaw(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if w := r.line.edges(); len(w) != 0 {
		t.Errorf("clock pulsed with no data ready")
	}
	// The chip is fine afterwards.
	r.clock.OnSleep(nil)
	r.chips[0].push(1, 2)
	if got, err := r.dev().ReadRaw(t.Context()); err != nil || got != 2 {
		t.Errorf("ReadRaw = %d, %v; want 2", got, err)
	}
}

// A channel waiting for another's read gives up with its context.
func TestCtxCancelWaitingForAnotherRead(t *testing.T) {
	r := newRig(t, 2, nil)
	waiting := make(chan struct{})
	release := make(chan struct{})
	r.clock.OnSleep(func(n int) {
		if n == 1 {
			close(waiting)
			<-release
		}
	})
	done := make(chan error)
	go func() {
		_, err := r.g.Channel(0).ReadRaw(t.Context())
		done <- err
	}()
	<-waiting // channel 0 holds the group, waiting for data-ready
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.g.Channel(1).ReadRaw(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("channel 1: err = %v, want context.Canceled", err)
	}
	for _, c := range r.chips {
		c.push(1, 2)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("channel 0: %v", err)
	}
}

func TestClockHighOverrun(t *testing.T) {
	tests := []struct {
		name    string
		pulse   int
		delay   time.Duration
		wantErr bool
	}{
		{"within limit", 12, 40 * time.Microsecond, false},
		{"over the limit, under power-down", 12, 55 * time.Microsecond, true},
		{"power-down on the first pulse", 1, 70 * time.Microsecond, true},
		{"power-down on the last data pulse", 24, 70 * time.Microsecond, true},
		{"power-down on the gain pulse", 25, 70 * time.Microsecond, true},
		{"descheduled for 5 ms", 7, 5 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 2, nil)
			for _, c := range r.chips {
				c.push(0, 1, 2, 3)
			}
			// Read 2 is the first value read (read 1 is dropped at start).
			r.line.delayHigh = func(read, pulse int) time.Duration {
				if read == 2 && pulse == tc.pulse {
					return tc.delay
				}
				return 0
			}
			ch := r.g.Channel(0)
			got, err := ch.ReadRaw(t.Context())
			if !tc.wantErr {
				if err != nil || got != 1 {
					t.Fatalf("ReadRaw = %d, %v; want 1", got, err)
				}
				checkProtocol(t, r.line)
				return
			}
			if !errors.Is(err, ErrTiming) {
				t.Fatalf("err = %v, want ErrTiming", err)
			}
			for i, c := range r.chips {
				if _, _, _, cycles := c.snapshot(); cycles == 0 {
					t.Errorf("chip %d was not reset after the overrun", i)
				}
			}
			// The reset selected A128 for conversion 2: dropped, 3 returned.
			if got, err := ch.ReadRaw(t.Context()); err != nil || got != 3 {
				t.Fatalf("next ReadRaw = %d, %v; want 3", got, err)
			}
			checkProtocol(t, r.line)
		})
	}
}

func TestClockPinFailure(t *testing.T) {
	r := newRig(t, 1, nil)
	r.chips[0].push(0, 1, 2, 3)
	boom := errors.New("gpio write failed")
	// Out calls: New's 1, then 50 for the dropped read, then fail inside
	// the second read.
	r.line.failOut = func(n int) error {
		if n == 1+50+7 {
			return boom
		}
		return nil
	}
	d := r.dev()
	if _, err := d.ReadRaw(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the pin's error", err)
	}
	if r.line.Read() != gpio.Low {
		t.Error("clock left high after a failed write")
	}
	r.line.failOut = nil
	// The chip was power-cycled rather than left mid-read: conversion 2
	// (made at A128 after the reset) is dropped, 3 returned.
	if got, err := d.ReadRaw(t.Context()); err != nil || got != 3 {
		t.Errorf("next ReadRaw = %d, %v; want 3", got, err)
	}
	checkProtocol(t, r.line)
}

func TestChannelHalt(t *testing.T) {
	r := newRig(t, 3, nil)
	for _, c := range r.chips {
		c.gen = func(n int) uint32 { return uint32(n) }
	}
	if err := r.g.Channel(1).Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.g.Channel(1).ReadRaw(t.Context()); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("halted channel: err = %v, want hal.ErrClosed", err)
	}
	if _, err := r.g.Channel(0).ReadRaw(t.Context()); err != nil {
		t.Errorf("channel 0: %v", err)
	}
	for _, i := range []int{0, 2} {
		if err := r.g.Channel(i).Halt(); err != nil {
			t.Fatal(err)
		}
	}
	if !r.chips[0].poweredDown() {
		t.Error("group not powered down after every channel halted")
	}
	if err := r.g.PowerUp(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := r.g.Channel(i).ReadRaw(t.Context()); err != nil {
			t.Errorf("channel %d after PowerUp: %v", i, err)
		}
	}
	checkProtocol(t, r.line)
}

func TestOpts(t *testing.T) {
	tests := []struct {
		name    string
		opts    *Opts
		wantErr bool
		want    Opts // Gain, ReadyTimeout, PollInterval, MaxClockHigh
		clamped bool
	}{
		{name: "nil", opts: nil, want: DefaultOpts},
		{name: "zero", opts: &Opts{}, want: DefaultOpts},
		{name: "set", opts: &Opts{Gain: A64, ReadyTimeout: time.Second, PollInterval: 2 * time.Millisecond, MaxClockHigh: 20 * time.Microsecond},
			want: Opts{Gain: A64, ReadyTimeout: time.Second, PollInterval: 2 * time.Millisecond, MaxClockHigh: 20 * time.Microsecond}},
		{name: "clock high past power-down", opts: &Opts{MaxClockHigh: 70 * time.Microsecond},
			want: Opts{Gain: A128, ReadyTimeout: 500 * time.Millisecond, PollInterval: time.Millisecond, MaxClockHigh: 50 * time.Microsecond}, clamped: true},
		{name: "clock high too short", opts: &Opts{MaxClockHigh: time.Microsecond},
			want: Opts{Gain: A128, ReadyTimeout: 500 * time.Millisecond, PollInterval: time.Millisecond, MaxClockHigh: 10 * time.Microsecond}, clamped: true},
		{name: "spinning poll", opts: &Opts{PollInterval: time.Microsecond},
			want: Opts{Gain: A128, ReadyTimeout: 500 * time.Millisecond, PollInterval: 50 * time.Microsecond, MaxClockHigh: 50 * time.Microsecond}, clamped: true},
		{name: "poll past timeout", opts: &Opts{PollInterval: time.Second, ReadyTimeout: 100 * time.Millisecond},
			want: Opts{Gain: A128, ReadyTimeout: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond, MaxClockHigh: 50 * time.Microsecond}, clamped: true},
		{name: "timeout under poll floor", opts: &Opts{ReadyTimeout: time.Microsecond},
			want: Opts{Gain: A128, ReadyTimeout: 50 * time.Microsecond, PollInterval: 50 * time.Microsecond, MaxClockHigh: 50 * time.Microsecond}, clamped: true},
		{name: "negative", opts: &Opts{ReadyTimeout: -time.Second}, wantErr: true},
		{name: "bad gain", opts: &Opts{Gain: 9}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			line, chips := newFakeBus(systemClock{}, nil, 1)
			var o *Opts
			if tc.opts != nil {
				c := *tc.opts
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				o = &c
			}
			d, err := New(line, chips[0], o)
			if tc.wantErr {
				if err == nil {
					t.Fatal("New succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := d.g
			got := Opts{Gain: g.gain, ReadyTimeout: g.readyTimeout, PollInterval: g.poll, MaxClockHigh: g.maxHigh}
			want := tc.want
			want.Clock, want.Logger = nil, nil
			if got != want {
				t.Errorf("settled to %+v, want %+v", got, want)
			}
			if logged := strings.Contains(logs.String(), "clamped"); logged != tc.clamped {
				t.Errorf("clamp logged %v, want %v: %s", logged, tc.clamped, logs.String())
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	line, chips := newFakeBus(systemClock{}, nil, 2)
	tests := []struct {
		name string
		clk  gpio.PinOut
		data []gpio.PinIn
	}{
		{"nil clock", nil, []gpio.PinIn{chips[0]}},
		{"no data", line, nil},
		{"nil data", line, []gpio.PinIn{chips[0], nil}},
		{"data twice", line, []gpio.PinIn{chips[0], chips[1], chips[0]}},
		{"clock as data", line, []gpio.PinIn{line}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewGroup(tc.clk, tc.data, nil); err == nil || !strings.HasPrefix(err.Error(), "hx711: ") {
				t.Errorf("err = %v, want an hx711 error", err)
			}
		})
	}
	if _, err := New(line, nil, nil); err == nil {
		t.Error("New with a nil data pin succeeded")
	}
}

// New puts the pins in their safe state: clock low (powered, not clocking),
// data pulled up.
func TestNewSetsPins(t *testing.T) {
	line, chips := newFakeBus(systemClock{}, nil, 1)
	line.level = gpio.High // left powered down by a previous run
	if _, err := New(line, chips[0], nil); err != nil {
		t.Fatal(err)
	}
	if line.Read() != gpio.Low {
		t.Error("clock not low after New")
	}
	if p := chips[0].Pull(); p != gpio.PullUp {
		t.Errorf("data pull = %v, want PullUp", p)
	}
}

func TestParseGain(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Gain
		ok   bool
	}{
		{"A128", A128, true}, {"b32", B32, true}, {"A64", A64, true},
		{"128", 0, false}, {"", 0, false}, {"A32", 0, false},
	} {
		got, err := ParseGain(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseGain(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && !strings.EqualFold(got.String(), tc.in) {
			t.Errorf("%v.String() does not round-trip %q", got, tc.in)
		}
	}
	if s := Gain(0).String(); s != "Gain(0)" {
		t.Errorf("Gain(0).String() = %q", s)
	}
}

func TestSystemClockSleep(t *testing.T) {
	var c systemClock
	if err := c.Sleep(t.Context(), time.Microsecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep with a cancelled context = %v", err)
	}
}

// benchRig is a group of always-ready fake chips on the system clock, with
// the waveform not recorded, so the driver's own cost dominates.
func benchRig(b *testing.B, n int) *Group {
	b.Helper()
	line, chips := newFakeBus(systemClock{}, nil, n)
	line.record = false
	pins := make([]gpio.PinIn, n)
	for i, c := range chips {
		c.gen = func(k int) uint32 { return uint32(k*7919+i) & 0x3FFFFF }
		pins[i] = c
	}
	g, err := NewGroup(line, pins, nil)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// benchErr fails b on anything but a timing overrun: on a loaded machine a
// real preemption inside a high phase is possible, and ErrTiming is the
// driver reacting to it correctly.
func benchErr(b *testing.B, err error, overruns *int) {
	if err == nil {
		return
	}
	if errors.Is(err, ErrTiming) {
		*overruns++
		return
	}
	b.Fatal(err)
}

func BenchmarkRead(b *testing.B) {
	g := benchRig(b, 1)
	d := &Dev{g: g}
	ctx := b.Context()
	overruns, n := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		_, err := d.ReadRaw(ctx)
		benchErr(b, err, &overruns)
		n++
	}
	b.ReportMetric(float64(overruns)/float64(n), "overruns/op")
}

func BenchmarkGroupRead(b *testing.B) {
	g := benchRig(b, 4)
	ctx := b.Context()
	overruns, n := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		_, err := g.ReadAll(ctx)
		benchErr(b, err, &overruns)
		n++
	}
	b.ReportMetric(float64(overruns)/float64(n), "overruns/op")
}
