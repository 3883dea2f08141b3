package telemetry

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffNextWithinBoundsAndDoubles(t *testing.T) {
	const min, max = 100 * time.Millisecond, 3 * time.Second
	wantCur := []time.Duration{100, 200, 400, 800, 1600, 3000, 3000, 3000}
	for _, tc := range []struct {
		name string
		rnd  func() float64
	}{
		{"low", func() float64 { return 0 }},
		{"high", func() float64 { return math.Nextafter(1, 0) }},
		{"random", rand.New(rand.NewPCG(7, 11)).Float64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBackoff(min, max, tc.rnd)
			for i, w := range wantCur {
				d := b.Next()
				cur := w * time.Millisecond
				if b.cur != cur {
					t.Fatalf("step %d: cur %v, want %v", i, b.cur, cur)
				}
				if d < min || d > cur {
					t.Fatalf("step %d: wait %v outside [%v, %v]", i, d, min, cur)
				}
			}
		})
	}
	if d := NewBackoff(min, max, func() float64 { return 0 }).Next(); d != min {
		t.Fatalf("lowest draw %v, want min %v", d, min)
	}
}

func TestBackoffReset(t *testing.T) {
	b := NewBackoff(10*time.Millisecond, time.Second, func() float64 { return 0.999 })
	for range 10 {
		b.Next()
	}
	if b.cur != time.Second {
		t.Fatalf("cur %v, want max", b.cur)
	}
	b.Reset()
	if d := b.Next(); d != 10*time.Millisecond {
		t.Fatalf("first wait after Reset %v, want min", d)
	}
	if d := b.Next(); d <= 10*time.Millisecond || d > 20*time.Millisecond {
		t.Fatalf("second wait after Reset %v, want in (min, 2·min]", d)
	}
}

func TestBackoffJitterVaries(t *testing.T) {
	const min, max = time.Millisecond, time.Minute
	a := NewBackoff(min, max, rand.New(rand.NewPCG(1, 2)).Float64)
	b := NewBackoff(min, max, rand.New(rand.NewPCG(3, 4)).Float64)
	same := 0
	seen := map[time.Duration]bool{}
	const n = 40
	for range n {
		da, db := a.Next(), b.Next()
		if da == db {
			same++
		}
		seen[da] = true
	}
	// Two cabinets that lost the broker together must not retry together.
	if same > n/4 {
		t.Fatalf("%d of %d waits identical across two random sources", same, n)
	}
	// At the cap, one backoff's waits still spread out.
	if len(seen) < n/2 {
		t.Fatalf("only %d distinct waits in %d draws", len(seen), n)
	}
	// And the default source (nil) is random too.
	c, d := NewBackoff(min, max, nil), NewBackoff(min, max, nil)
	diverged := false
	for range n {
		if c.Next() != d.Next() {
			diverged = true
		}
	}
	if !diverged {
		t.Fatal("two default backoffs produced the same sequence")
	}
}

// A zero or negative minimum (a misconfigured Opts.MinBackoff) must still
// back off, and a huge maximum must not overflow into negative waits:
// either would turn the reconnect loop into a busy loop against the broker.
func TestBackoffDegenerateBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min, max time.Duration
	}{
		{"zero min", 0, time.Second},
		{"negative min", -time.Second, time.Second},
		{"max below min", time.Second, time.Millisecond},
		{"huge max", time.Second, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBackoff(tc.min, tc.max, func() float64 { return math.Nextafter(1, 0) })
			var prev time.Duration
			for i := range 80 {
				d := b.Next()
				if d <= 0 {
					t.Fatalf("step %d: wait %v", i, d)
				}
				if d < prev {
					t.Fatalf("step %d: wait %v shrank from %v with the top draw", i, d, prev)
				}
				prev = d
			}
		})
	}
}

func TestBackoffSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := NewBackoff(time.Hour, time.Hour, nil)
	if b.Sleep(ctx) {
		t.Fatal("Sleep on a cancelled context reported true")
	}

	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- b.Sleep(ctx) }()
	cancel()
	if <-done {
		t.Fatal("Sleep cancelled midway reported true")
	}

	short := NewBackoff(time.Millisecond, time.Millisecond, nil)
	if !short.Sleep(context.Background()) {
		t.Fatal("Sleep on a live context reported false")
	}
}
