package clocktest

import (
	"context"
	"testing"
	"time"
)

func TestAfterFiresOnAdvance(t *testing.T) {
	c := New()
	t0 := c.Now()
	ch := c.After(time.Second)
	if err := c.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Millisecond)
	if got := <-ch; !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("fired at %v, want %v", got, t0.Add(time.Second))
	}
	if err := c.BlockUntilContext(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
}

func TestBlockUntilWaitsForTheCode(t *testing.T) {
	c := At(time.Unix(0, 0))
	go func() { <-c.After(time.Minute) }()
	if err := c.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := c.BlockUntilContext(ctx, 2); err == nil {
		t.Fatal("two waiters reported with one")
	}
}

func TestSleepAdvancesAndCallsTheHook(t *testing.T) {
	c := New()
	t0 := c.Now()
	ctx, cancel := context.WithCancel(t.Context())
	c.OnSleep(func(n int) {
		if n == 2 {
			cancel()
		}
	})
	if err := c.Sleep(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Sleep(ctx, time.Second); err != context.Canceled {
		t.Fatalf("sleep 2: %v, want context.Canceled", err)
	}
	if err := c.Sleep(ctx, time.Second); err != context.Canceled {
		t.Fatalf("sleep 3: %v, want context.Canceled", err)
	}
	if got := c.Now().Sub(t0); got != 2*time.Second {
		t.Fatalf("moved %v, want 2s (no move on an ended context)", got)
	}
}
