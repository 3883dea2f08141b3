package scale

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clocktest"
)

type fakeClock = clocktest.Clock

func newClock() *fakeClock { return clocktest.New() }

// scriptRaw is a RawScale that plays a script of values and errors, then
// blocks until the context ends.
type scriptRaw struct {
	mu    sync.Mutex
	steps []step
}

type step struct {
	v   int32
	err error
}

func (s *scriptRaw) ReadRaw(ctx context.Context) (int32, error) {
	s.mu.Lock()
	if len(s.steps) > 0 {
		st := s.steps[0]
		s.steps = s.steps[1:]
		s.mu.Unlock()
		return st.v, st.err
	}
	s.mu.Unlock()
	<-ctx.Done()
	return 0, ctx.Err()
}

func (s *scriptRaw) left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.steps)
}

func (s *scriptRaw) String() string { return "script" }
func (s *scriptRaw) Halt() error    { return nil }

var testCal = Calibration{Offset: 10000, CountsPerGram: 100}

// counts converts grams to raw counts under testCal.
func counts(g float64) int32 {
	return int32(math.Round(float64(testCal.Offset) + g*testCal.CountsPerGram))
}

func newFilter(t *testing.T, clk *fakeClock, o Opts) *Filter {
	t.Helper()
	o.Clock = clk.Now
	f, err := New(&scriptRaw{}, testCal, &o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// jitter is a fixed, zero-mean pattern of ±0.4 g noise.
var jitter = []float64{0.3, -0.2, 0.4, -0.4, 0.1, -0.3, 0.2, -0.1}

func TestSettle(t *testing.T) {
	tests := []struct {
		name      string
		grams     []float64
		settled   bool
		wantGrams float64
	}{
		{"steady full window", add(fill(8, 500), jitter), true, 500},
		{"window not yet full", add(fill(7, 500), jitter[:7]), false, 500},
		{"spread too wide", add(fill(8, 500), []float64{9, -9, 9, -9, 9, -9, 9, -9}), false, 500},
		{"slow upward trend", add(ramp(8, 500, 1), jitter), false, 503.5},
		{"step inside window", append(fill(4, 500), fill(4, 502)...), false, 501},
		{"tiny step within noise", add(append(fill(4, 500), fill(4, 500.3)...), jitter), true, 500.15},
		{"old samples flushed", append(fill(8, 0), add(fill(8, 250), jitter)...), true, 250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := newFilter(t, clk, Opts{})
			for _, g := range tt.grams {
				f.Feed(counts(g), clk.Advance(100*time.Millisecond))
			}
			r, err := f.Reading()
			if err != nil {
				t.Fatal(err)
			}
			if r.Settled != tt.settled {
				t.Errorf("Settled = %v, want %v (reading %+v)", r.Settled, tt.settled, r)
			}
			if math.Abs(r.Grams-tt.wantGrams) > 0.02 {
				t.Errorf("Grams = %.3f, want %.3f", r.Grams, tt.wantGrams)
			}
			if want := min(len(tt.grams), 8); r.Samples != want {
				t.Errorf("Samples = %d, want %d", r.Samples, want)
			}
			if !r.At.Equal(clk.Now()) || r.At.Location() != time.UTC {
				t.Errorf("At = %v, want %v in UTC", r.At, clk.Now())
			}
			oldest := clk.Now().Add(-time.Duration(r.Samples-1) * 100 * time.Millisecond)
			if !r.Oldest.Equal(oldest) || r.Oldest.Location() != time.UTC {
				t.Errorf("Oldest = %v, want %v in UTC", r.Oldest, oldest)
			}
		})
	}
}

func TestNoiseIsSampleStd(t *testing.T) {
	clk := newClock()
	f := newFilter(t, clk, Opts{Window: 4})
	for _, g := range []float64{1, 2, 3, 4} {
		f.Feed(counts(g), clk.Advance(time.Millisecond))
	}
	r, err := f.Reading()
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Sqrt(5.0 / 3); math.Abs(r.NoiseG-want) > 1e-9 {
		t.Errorf("NoiseG = %v, want %v", r.NoiseG, want)
	}
}

func TestFaults(t *testing.T) {
	type feed struct {
		raw   int32
		after time.Duration
	}
	good := func(n int) []feed {
		var fs []feed
		for i := range n {
			fs = append(fs, feed{counts(800 + jitter[i%len(jitter)]), 100 * time.Millisecond})
		}
		return fs
	}
	tests := []struct {
		name    string
		feeds   []feed
		wait    time.Duration // clock advance after the last sample
		wantErr error         // besides hal.ErrFault; nil means no error
		samples int
		settled bool
	}{
		{"positive saturation", append(good(8), feed{RawMax, 100 * time.Millisecond}), 0, ErrSaturated, 0, false},
		{"negative saturation", append(good(8), feed{RawMin, 100 * time.Millisecond}), 0, ErrSaturated, 0, false},
		{"recovers after saturation, window restarted",
			append(append(good(8), feed{RawMax, 100 * time.Millisecond}), good(3)...), 0, nil, 3, false},
		{"settles again after saturation",
			append(append(good(8), feed{RawMax, 100 * time.Millisecond}), good(8)...), 0, nil, 8, true},
		{"no sample for too long", good(8), 2100 * time.Millisecond, ErrNoData, 0, false},
		{"gap shorter than the limit", good(8), 1900 * time.Millisecond, nil, 8, true},
		{"recovers when samples return", append(good(8), feed{counts(800), 5 * time.Second}), 0, nil, 8, true},
		{"no data at all after grace", nil, 2100 * time.Millisecond, ErrNoData, 0, false},
		{"no data yet within grace", nil, time.Second, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := newFilter(t, clk, Opts{})
			for _, fd := range tt.feeds {
				f.Feed(fd.raw, clk.Advance(fd.after))
			}
			clk.Advance(tt.wait)
			r, err := f.Reading()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, hal.ErrFault) {
					t.Fatalf("err = %v, want %v and hal.ErrFault", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if r.Samples != tt.samples || r.Settled != tt.settled {
				t.Errorf("reading %+v, want %d samples, settled %v", r, tt.samples, tt.settled)
			}
		})
	}
}

func TestRunReadErrors(t *testing.T) {
	readErr := errors.New("hx711: data not ready")
	clk := newClock()
	raw := &scriptRaw{}
	for range 8 {
		raw.steps = append(raw.steps, step{v: counts(300)})
	}
	for range 5 {
		raw.steps = append(raw.steps, step{err: readErr})
	}
	f, err := New(raw, testCal, &Opts{Clock: clk.Now, RetryDelay: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for raw.left() > 0 {
		time.Sleep(time.Millisecond)
	}
	if err := f.Run(ctx); err == nil {
		t.Error("second concurrent Run succeeded")
	}
	// The script is consumed; the filter still holds the good samples, which
	// stay valid until the no-data limit passes.
	clk.Advance(time.Second)
	if r, err := f.Reading(); err != nil || math.Abs(r.Grams-300) > 1e-9 {
		t.Errorf("Reading = %+v, %v before the limit", r, err)
	}
	clk.Advance(1500 * time.Millisecond)
	_, err = f.Reading()
	if !errors.Is(err, ErrNoData) || !errors.Is(err, hal.ErrFault) {
		t.Errorf("err = %v, want ErrNoData", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on context end", err)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		raw  hal.RawScale
		cal  Calibration
		o    *Opts
	}{
		{"nil raw", nil, testCal, nil},
		{"zero factor", &scriptRaw{}, Calibration{}, nil},
		{"NaN factor", &scriptRaw{}, Calibration{CountsPerGram: math.NaN()}, nil},
		{"window of one", &scriptRaw{}, testCal, &Opts{Window: 1}},
		{"negative window", &scriptRaw{}, testCal, &Opts{Window: -3}},
		{"negative max std", &scriptRaw{}, testCal, &Opts{MaxStdG: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.raw, tt.cal, tt.o); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

func TestSetCalibration(t *testing.T) {
	clk := newClock()
	f := newFilter(t, clk, Opts{})
	for range 8 {
		f.Feed(counts(200), clk.Advance(100*time.Millisecond))
	}
	if err := f.SetCalibration(Calibration{Offset: testCal.Offset, CountsPerGram: 50}); err != nil {
		t.Fatal(err)
	}
	r, err := f.Reading()
	if err != nil || math.Abs(r.Grams-400) > 1e-9 {
		t.Errorf("Reading = %+v, %v; want 400 g after recalibration", r, err)
	}
	if err := f.SetCalibration(Calibration{}); err == nil {
		t.Error("zero calibration accepted")
	}
}

func fill(n int, g float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = g
	}
	return s
}

func ramp(n int, from, step float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = from + float64(i)*step
	}
	return s
}

// add adds d to the tail of s, element by element.
func add(s, d []float64) []float64 {
	off := len(s) - len(d)
	for i, v := range d {
		s[off+i] += v
	}
	return s
}
