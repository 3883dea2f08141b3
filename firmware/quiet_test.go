package firmware

import (
	"context"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// hushNow steps the rig's Device, pacing it as Run does, until it hushes
// its hardware, and returns the wait pace gave. The rig has no broker:
// what the outbox holds counts as delivered first (a cabinet hushes only
// with nothing left to send).
func hushNow(t *testing.T, r *rig) time.Duration {
	t.Helper()
	for _, e := range r.pending() {
		if err := r.d.ledger.Outbox.Remove(e.ID); err != nil {
			t.Fatal(err)
		}
	}
	var wait time.Duration
	// Creep after the shelves were stocked must fade first: minutes.
	stepUntil(t, r.d, func() bool {
		wait = r.d.pace(r.d.now())
		return r.d.hush.ended != nil
	}, 5*time.Minute)
	if !r.hw.Hushed() {
		t.Fatal("the Device holds a hush the hardware does not")
	}
	return wait
}

// An idle cabinet on hardware that can hush (the simulation) stops its
// scales, stays ready for a shopper with its readings vouched for while no
// sample comes, keeps rotating its QR code, and samples again at the first
// change in the world, or when it wakes the hardware itself.
func TestHushWhileIdle(t *testing.T) {
	r := newRig(t)
	r.waitIdle()
	if wait := hushNow(t, r); wait < time.Second {
		t.Fatalf("hushed, the next tick is due in %v; want the QR's rotation or hushTick", wait)
	}
	cells := len(r.d.hw.Shelves)
	before := r.hw.Samples()
	qr := r.d.shown.QR
	for range 120 { // two minutes, far beyond the filters' no-data limit
		r.clk.Advance(time.Second)
		r.d.step(r.ctx)
		for _, sh := range r.d.hw.Shelves {
			if err := r.d.readErr[sh.Number]; err != nil {
				t.Fatalf("shelf %d while hushed: %v", sh.Number, err)
			}
		}
		if _, err := r.d.beforeWeights(r.d.now()); err != nil {
			t.Fatalf("while hushed an unlock would be refused: %v", err)
		}
		if m := r.d.Status().Mode; m != msg.ModeIdle {
			t.Fatalf("mode %q while hushed", m)
		}
		if w := r.d.pace(r.d.now()); w > hushTick || r.d.hush.ended == nil || !r.hw.Hushed() {
			t.Fatalf("the hush ended by itself (next tick in %v)", w)
		}
	}
	// At most the samples already being read when the hush began.
	if n := r.hw.Samples() - before; n > uint64(cells) {
		t.Fatalf("%d samples drawn in two hushed minutes", n)
	}
	if r.d.shown.QR == qr || r.d.shown.QR == "" {
		t.Fatal("the QR code did not rotate while hushed")
	}
	if a := r.alarms(msg.AlarmScaleFault); len(a) > 0 {
		t.Fatalf("scale faults while hushed: %+v", a)
	}

	// A change in the world ends the hush by itself.
	ended := r.d.hush.ended
	if err := r.hw.OpenDoor(1, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("forcing the door open did not end the hush")
	}
	before = r.hw.Samples()
	resume(t, r)
	stepUntil(t, r.d, func() bool { return !r.d.doorClosed[1] }, time.Second)
	if w := r.d.pace(r.d.now()); w != r.d.tick || r.d.hush.ended != nil {
		t.Fatalf("door open: next tick in %v, hushed %v", w, r.d.hush.ended != nil)
	}
	stepFor(t, r.d, time.Second)
	if r.hw.Samples()-before < uint64(cells)*50 {
		t.Fatalf("only %d samples in the second after the hush ended", r.hw.Samples()-before)
	}
	if len(r.alarms(msg.AlarmDoorForced)) == 0 {
		t.Fatal("the forced door raised no alarm")
	}
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}

	// The cabinet wakes the hardware itself when it has work (Run does so
	// for every message).
	hushNow(t, r)
	r.d.wake()
	if r.hw.Hushed() || r.d.hush.ended != nil {
		t.Fatal("wake left the hardware hushed")
	}
	resume(t, r)
}

// resume moves the clock until every load cell has sampled again after a
// hush ended. Before each step it waits until every restarted cell waits
// on the clock: a clock that ran ahead of a cell not yet scheduled again
// would leave that cell a minute behind on a loaded machine, and a false
// scale fault in the outbox. (pass cannot be used: the clock's count of
// waiting timers also holds the waits the hush abandoned, until they come
// due; hence the short bound on each wait.)
func resume(t *testing.T, r *rig) {
	t.Helper()
	cells := 0
	for _, sh := range r.d.hw.Shelves {
		cells++
		if sh.Right != nil {
			cells++
		}
	}
	before := r.hw.Samples()
	for deadline := time.Now().Add(wallGuard); r.hw.Samples() < before+2*uint64(cells); {
		if time.Now().After(deadline) {
			t.Fatalf("the load cells did not sample again after the hush (%d samples)", r.hw.Samples()-before)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_ = r.clk.BlockUntilContext(ctx, cells)
		cancel()
		r.clk.Advance(stepEvery)
	}
}

// An idle cabinet whose world has not settled yet — its load cells still
// follow a change of the air's temperature — cannot hush; it ticks slowly
// meanwhile, and asks again only after hushRetry.
func TestHushWaitsForTheWorldToSettle(t *testing.T) {
	r := newRig(t)
	r.waitIdle()
	hushNow(t, r)
	r.hw.SetTemp(r.hw.Snapshot().TempC + 8) // ends the hush; the cells drift for minutes
	resume(t, r)
	// Idle again once the filters' windows hold only samples from after the
	// change (settled, as far as a filter can tell), and past any retry
	// time an earlier refusal set; the world still moves.
	stepUntil(t, r.d, func() bool { return r.d.idle() && !r.d.now().Before(r.d.hush.after) }, 10*time.Second)
	if w := r.d.pace(r.d.now()); w != settleTick || r.d.hush.ended != nil || r.hw.Hushed() {
		t.Fatalf("idle in a drifting world: next tick in %v, hushed %v (asked %v), idle %v, retry in %v", w, r.hw.Hushed(), r.d.hush.ended != nil, r.d.idle(), r.d.hush.after.Sub(r.d.now()))
	}
	if w := r.d.pace(r.d.now()); w != settleTick {
		t.Fatalf("asked again at once: next tick in %v", w)
	}
	// Much later the cells have followed the air: the hush comes. The
	// clock moves in jumps shorter than the scales' no-data time (the cells
	// sample once per jump), so that no scale fault fills the outbox of
	// this offline rig (an outbox not empty forbids a hush); every two
	// minutes, half a second of sampling refills the filters' windows with
	// fresh samples and the cabinet asks.
	for i := 0; i < 18 && !r.hw.Hushed(); i++ {
		for range 2 * time.Minute / (noDataAfter / 2) {
			pass(t, r.d, noDataAfter/2)
		}
		stepFor(t, r.d, 500*time.Millisecond)
		r.d.pace(r.d.now())
	}
	if !r.hw.Hushed() {
		t.Fatal("no hush 36 minutes after the temperature changed")
	}
}
