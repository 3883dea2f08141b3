package sim

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
)

// waitFor polls cond on the real clock. The deadline only stops a broken
// test from hanging; nothing asserts how fast the condition came true.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunRealTime(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, err := New(Config{
		Seed:       11,
		SampleRate: 200,
		SettleTime: 50 * time.Millisecond,
		Doors:      1,
		Shelves:    []ShelfConfig{{Shelf: 1, EmptyG: 700}, {Shelf: 2, EmptyG: 700, TwoCell: true}},
		Scale:      scale.Opts{NoDataAfter: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Load(1, "A", 420, 8, 12))
	must(t, c.SetLane(2, "B", 0.8))
	must(t, c.Load(2, "B", 300, 6, 10))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}()

	sc := c.Hardware().Shelves[0].Scale
	settledNear := func() bool {
		r, err := sc.Reading()
		return err == nil && r.Settled && math.Abs(r.Grams-shelfState(c, 1).TrueG) < 4*c.cfg.NoiseG
	}
	waitFor(t, "a settled reading near the true load", settledNear)
	if s := shelfState(c, 1); math.Abs(s.ReadG-s.TrueG) > 4*c.cfg.NoiseG || !s.Settled {
		t.Errorf("snapshot shelf %+v", s)
	}
	// The two-cell shelf's right cell reads alongside its total.
	right := c.Hardware().Shelves[1].Right
	waitFor(t, "the right cell to settle near its true load", func() bool {
		r, err := right.Reading()
		st := shelfState(c, 2)
		return err == nil && r.Settled && st.ReadRightG != nil && math.Abs(r.Grams-*st.RightG) < 4*c.cfg.NoiseG &&
			math.Abs(st.ReadG-st.TrueG) < 6*c.cfg.NoiseG
	})

	tests := []struct {
		fault string
		want  error
	}{
		{"saturated", scale.ErrSaturated},
		{"dead", scale.ErrNoData},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			must(t, c.FaultScale(1, tt.fault))
			waitFor(t, tt.fault+" reported", func() bool {
				_, err := sc.Reading()
				return errors.Is(err, tt.want) && errors.Is(err, hal.ErrFault)
			})
			if s := shelfState(c, 1); s.ReadErr == "" || s.Fault != tt.fault {
				t.Errorf("snapshot shelf %+v", s)
			}
			must(t, c.FaultScale(1, ""))
			waitFor(t, "recovery", settledNear)
		})
	}
	if err := c.Run(ctx); err == nil {
		t.Error("a second Run started")
	}
}

// TestConcurrentUse exercises the person, the hal devices and the samplers
// at once for the race detector.
func TestConcurrentUse(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, err := New(Config{Seed: 5, SampleRate: 500, Doors: 2, LockReleaseTime: time.Millisecond, BounceTime: time.Millisecond,
		Shelves: []ShelfConfig{{Shelf: 1, Door: 1, TwoCell: true}, {Shelf: 2, Door: 2}, {Shelf: 3, Door: 1}, {Shelf: 4, Door: 2, TwoCell: true}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 4} {
		must(t, c.Load(n, "A", 300, 5, 20))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	hw := c.Hardware()
	var person sync.WaitGroup
	for d := 1; d <= 2; d++ {
		person.Go(func() {
			l := hw.Doors[d-1].Lock
			for i := range 30 {
				_ = l.Energise(ctx)
				time.Sleep(2 * time.Millisecond)
				if c.OpenDoor(d, false) == nil {
					// Shelf d is behind door d; errors (an empty shelf, a
					// jammed lock) are part of the churn, not failures.
					shelf := d
					_ = c.Take(shelf, "A", 1)
					_ = c.Put(shelf, "A", 0, 1)
					_ = c.PutObject(shelf, float64(i+1))
					_ = c.LeanAt(shelf, 500, 0.3)
					_ = c.CloseDoor(d)
				}
				_ = l.Release(ctx)
			}
		})
	}
	person.Go(func() {
		for i := range 100 {
			_, _ = hw.Doors[i%2].Sensor.Closed(ctx)
			_, _ = hw.Doors[i%2].Lock.Locked(ctx)
			_, _ = hw.Shelves[i%4].Scale.Reading()
			if r := hw.Shelves[i%4].Right; r != nil {
				_, _ = r.Reading()
			}
			_, _ = c.SampleRight(1)
			_ = c.SetLane(4, "A", 0.1)
			_, _ = hw.Thermometer.Celsius(ctx)
			_ = hw.Display.Show(ctx, hal.Screen{QR: "q", Status: "s"})
			_ = hw.Indicator.Set(ctx, hal.SignalOpen)
			_ = c.Snapshot()
			c.SetTemp(float64(i % 10))
			_ = c.JamLock(1+i%2, i%7 == 0)
		}
	})
	person.Wait()
	cancel()
	wg.Wait()
}
