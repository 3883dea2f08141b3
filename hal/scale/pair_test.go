package scale

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
)

func TestPairSum(t *testing.T) {
	// Each cell has its own offset and factor; one inverted.
	lcal := Calibration{Offset: 120000, CountsPerGram: 420}
	rcal := Calibration{Offset: -35000, CountsPerGram: -395.5}
	raw := func(c Calibration, g float64) int32 { return int32(math.Round(float64(c.Offset) + g*c.CountsPerGram)) }
	left, right := &scriptRaw{}, &scriptRaw{}
	var rightRaw []int32
	for _, g := range [][2]float64{{0, 0}, {300, 200}, {1000.5, 0}, {4000, 4000}} {
		left.steps = append(left.steps, step{v: raw(lcal, g[0])})
		right.steps = append(right.steps, step{v: raw(rcal, g[1])})
		rightRaw = append(rightRaw, raw(rcal, g[1]))
	}
	p, err := NewPair(left, right, lcal, rcal)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, want := range []float64{0, 500, 1000.5, 8000} {
		v, err := p.ReadRaw(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if g := PairCalibration.Grams(float64(v)); math.Abs(g-want) > 0.01 {
			t.Errorf("read %d: %d counts = %.2f g, want %.2f g", i, v, g, want)
		}
		// The right view gets the right cell's own sample of that read.
		r, err := p.Right().ReadRaw(ctx)
		if err != nil {
			t.Fatalf("right view %d: %v", i, err)
		}
		if want := rightRaw[i]; r != want {
			t.Errorf("right view %d = %d, want %d", i, r, want)
		}
	}
}

func TestPairFaults(t *testing.T) {
	dead := errors.New("hx711: data not ready")
	lcal, rcal := Calibration{CountsPerGram: 400}, Calibration{CountsPerGram: 400}
	left := &scriptRaw{steps: []step{{v: 4000}, {v: 4000}, {v: RawMax}, {v: 4000}, {err: dead}}}
	right := &scriptRaw{steps: []step{{v: 4000}, {err: dead}, {v: 4000}, {v: RawMin}, {v: 4000}}}
	p, err := NewPair(left, right, lcal, rcal)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if v, err := p.ReadRaw(ctx); err != nil || v != 2000 {
		t.Fatalf("healthy read = %d, %v; want 2000 cg", v, err)
	}
	// A dead right cell fails the total: never the left cell's half.
	if v, err := p.ReadRaw(ctx); !errors.Is(err, dead) {
		t.Fatalf("dead right cell: total %d, %v; want an error", v, err)
	}
	if _, err := p.Right().ReadRaw(ctx); !errors.Is(err, dead) {
		t.Fatalf("right view after a dead read: %v", err)
	}
	if v, err := p.ReadRaw(ctx); err != nil || v != RawMax {
		t.Fatalf("saturated left: %d, %v; want RawMax", v, err)
	}
	if v, err := p.ReadRaw(ctx); err != nil || v != RawMin {
		t.Fatalf("saturated right: %d, %v; want RawMin", v, err)
	}
	if _, err := p.ReadRaw(ctx); !errors.Is(err, dead) {
		t.Fatalf("dead left cell: %v", err)
	}

	// Through a Filter: a dead right cell makes the total a fault.
	clk := newClock()
	right = &scriptRaw{}
	for range 8 {
		right.steps = append(right.steps, step{err: dead})
	}
	left = &scriptRaw{}
	for range 8 {
		left.steps = append(left.steps, step{v: 40000})
	}
	p, _ = NewPair(left, right, lcal, rcal)
	f, err := New(p, PairCalibration, &Opts{Clock: clk.Now, RetryDelay: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		if v, err := p.ReadRaw(ctx); err == nil {
			f.Feed(v, clk.Now())
		}
	}
	clk.Advance(3 * time.Second)
	if r, err := f.Reading(); !errors.Is(err, ErrNoData) || !errors.Is(err, hal.ErrFault) {
		t.Fatalf("total with a dead right cell: %+v, %v; want ErrNoData fault", r, err)
	}
}

func TestPairRightViewWaits(t *testing.T) {
	p, err := NewPair(&scriptRaw{}, &scriptRaw{}, Calibration{CountsPerGram: 1}, Calibration{CountsPerGram: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Right().ReadRaw(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("right view with no pair read: %v, want the context's error", err)
	}
	if _, err := NewPair(&scriptRaw{}, &scriptRaw{}, Calibration{CountsPerGram: 1}, Calibration{}); err == nil {
		t.Fatal("NewPair accepted a zero right calibration")
	}
}
