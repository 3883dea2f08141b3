package cabsim

import (
	"fmt"
	"testing"
	"time"
)

// TestNetworkDown cuts one cabinet's network in the middle of each of
// several purchases, in both firmware modes and with a second cabinet
// (fleet mode) that keeps its link: every sale is committed offline,
// stays queued while the network is down, and arrives exactly once and in
// sequence order once it is up; the other cabinet's sale goes through
// meanwhile.
//
// A session needs an unlock from the platform, so one outage holds at
// most the one sale whose session was open when it began: the backlog here
// builds over several outages. Bigger backlogs are the outbox
// benchmarks' business.
func TestNetworkDown(t *testing.T) {
	for _, mode := range []string{InProcess, Process} {
		t.Run(mode, func(t *testing.T) {
			o := Options{Seed: 61, Cabinets: 2, Configure: cutConfig}
			var s *Sim
			if mode == Process {
				s = startProcessSim(t, o)
			} else {
				s = startSim(t, o)
			}
			a := newHarness(t, s, s.Cabinets()[0].ID, 3*time.Minute)
			b := newHarness(t, s, s.Cabinets()[1].ID, 3*time.Minute)
			const purchases = 3
			for i := range purchases {
				a.waitReady()
				_, reply := a.unlock()
				a.must(<-reply)
				if !a.openDoor(5 * time.Second) {
					t.Fatal("door did not open")
				}
				time.Sleep(300 * time.Millisecond)
				a.must(s.Take(a.id, 4, "CQ-0305", 1))
				a.must(s.Network(a.id, "down"))
				if v, _ := s.View(a.id); v.Network != "down" {
					t.Fatalf("view says network %q", v.Network)
				}
				a.door("close")
				a.until(20*time.Second, fmt.Sprintf("sale %d committed offline", i+1), func() bool {
					st, ok := a.c.Status()
					return ok && st.Counters.LastSeq == uint64(i+1) && st.Session == nil && !st.Connected
				})
				if i == 1 {
					// The other cabinet sells while this one is cut off.
					b.waitReady()
					_, reply := b.unlock()
					b.must(<-reply)
					if !b.openDoor(5 * time.Second) {
						t.Fatal("door of the other cabinet did not open")
					}
					time.Sleep(300 * time.Millisecond)
					b.must(s.Take(b.id, 1, "NM-0003", 1))
					time.Sleep(300 * time.Millisecond)
					b.door("close")
					b.settle(30 * time.Second)
				}
				if got := len(a.sales()); got != i {
					t.Fatalf("platform holds %d sales of the cut-off cabinet, want %d", got, i)
				}
				time.Sleep(time.Second) // down for a while
				a.must(s.Network(a.id, "up"))
				a.settle(30 * time.Second)
			}
			recs := a.sales()
			if len(recs) != purchases {
				t.Fatalf("platform holds %d sales, want %d", len(recs), purchases)
			}
			for i, r := range recs {
				if r.Sale.Seq != uint64(i+1) || r.Copies != 1 {
					t.Fatalf("sale %d arrived as seq %d, %d time(s); want seq %d once", i, r.Sale.Seq, r.Copies, i+1)
				}
			}
			a.must(a.checkBooks())
			b.must(b.checkBooks())
			if n := len(b.sales()); n != 1 {
				t.Fatalf("the other cabinet has %d sales, want 1", n)
			}
		})
	}
}
