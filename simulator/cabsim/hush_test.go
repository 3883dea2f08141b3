package cabsim

import (
	"maps"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// An idle virtual cabinet hushes — its load cells draw no samples while
// it goes on beating its heart — and a purchase on a hushed cabinet is
// charged as on a ticking one: the unlock wakes it and the sale is exact.
// Creep is off, so the shelves are still within seconds of stocking.
func TestHushedCabinetSells(t *testing.T) {
	s := startSim(t, Options{Seed: 5, Physics: func(c *sim.Config) { c.CreepFrac = -1 }})
	h := newHarness(t, s, CabinetID(0), 2*time.Minute)
	h.waitReady()
	h.settle(30 * time.Second) // the start's alarm acknowledged: nothing left to send
	h.until(30*time.Second, "the idle cabinet to hush", h.c.HW.Hushed)

	cells := uint64(len(h.c.HW.Snapshot().Shelves))
	samples, beats := h.c.HW.Samples(), s.Platform.Heartbeats()
	h.until(20*time.Second, "two heartbeats from the hushed cabinet", func() bool {
		return s.Platform.Heartbeats() >= beats+2
	})
	if !h.c.HW.Hushed() {
		t.Fatal("the hush ended with nothing happening")
	}
	if n := h.c.HW.Samples() - samples; n > cells {
		t.Fatalf("%d samples drawn while hushed", n)
	}
	if v := s.Fleet(); v.Hushed != 1 || v.Connected != 1 {
		t.Fatalf("fleet view %+v, want the cabinet hushed and connected", v)
	}

	before := h.stock()
	cmd, reply := h.unlock()
	h.must(<-reply)
	if !h.openDoor(5 * time.Second) {
		t.Fatal("the door did not open")
	}
	h.must(s.Take(h.id, 1, "NM-0003", 1))
	h.must(s.Take(h.id, 2, "QH-0202", 2))
	h.door("close")
	h.settle(30 * time.Second)
	sale, ok := h.saleOf(cmd.SessionID)
	if !ok {
		t.Fatal("no sale at the platform")
	}
	if want := taken(before, h.stock()); sale.Status != msg.SaleExact || !maps.Equal(lines(sale), want) {
		t.Fatalf("sale %s %v, want exact %v", sale.Status, lines(sale), want)
	}
	h.until(30*time.Second, "the cabinet to hush again after the sale", h.c.HW.Hushed)
}
