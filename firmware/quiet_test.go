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
		return r.d.hushed != nil
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
		if w := r.d.pace(r.d.now()); w > hushTick || r.d.hushed == nil || !r.hw.Hushed() {
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
	ended := r.d.hushed
	if err := r.hw.OpenDoor(1, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("forcing the door open did not end the hush")
	}
	before = r.hw.Samples()
	pass(t, r.d, stepEvery) // the load cells are back on the clock
	r.d.step(r.ctx)
	if w := r.d.pace(r.d.now()); w != r.d.tick || r.d.hushed != nil {
		t.Fatalf("door open: next tick in %v, hushed %v", w, r.d.hushed != nil)
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
	if r.hw.Hushed() || r.d.hushed != nil {
		t.Fatal("wake left the hardware hushed")
	}
	ctx, cancel := context.WithTimeout(r.ctx, wallGuard)
	defer cancel()
	r.clk.Advance(stepEvery)
	if err := r.clk.BlockUntilContext(ctx, cells); err != nil {
		t.Fatal("the load cells did not sample again after wake")
	}
}
