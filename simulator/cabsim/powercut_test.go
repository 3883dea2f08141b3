package cabsim

import (
	"maps"
	"testing"
	"time"

	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// cutCase is one moment of a purchase at which the power goes.
type cutCase struct {
	name      string
	failpoint string // armed: the firmware process SIGKILLs itself there
	// buy runs the purchase with its cut and restore and returns the
	// session. early means the cut may have come before the session was
	// persisted: no sale at all is then a correct end.
	buy func(h *harness) (sid string, early bool)
}

// TestPowerCutAtEveryPhase cuts the power of a cabinet whose firmware runs
// as a real process at every phase of a purchase — at the exact points
// the firmware reports (failpoints: the process SIGKILLs itself, the
// simulator darkens the hardware) and at moments timed from outside (kill
// -9) — restores it, restarts the firmware without failpoints, and checks
// that the platform ends with exactly one sale for the session charging
// what really left the shelves (or nothing, when the cut came before the
// session existed), gap-free sequence numbers, one sale id per session,
// the door locked, and a consistent ledger file.
func TestPowerCutAtEveryPhase(t *testing.T) {
	shop := func(h *harness) {
		h.must(h.s.Take(h.id, 1, "NM-0003", 1))
		h.must(h.s.Take(h.id, 2, "QH-0202", 2))
		time.Sleep(300 * time.Millisecond)
	}
	// armedUnlock: the process dies while the unlock is handled; the
	// recovered firmware opens the door for the shopper.
	armedUnlock := func(h *harness) (string, bool) {
		cmd, _ := h.unlock()
		h.waitCut()
		h.power("restore")
		if !h.openDoor(20 * time.Second) {
			h.t.Fatal("the recovered session never let the door open")
		}
		shop(h)
		h.door("close")
		return cmd.SessionID, false
	}
	// armedSale: the process dies while the sale is committed or sent.
	armedSale := func(h *harness) (string, bool) {
		cmd, reply := h.unlock()
		h.must(<-reply)
		if !h.openDoor(5 * time.Second) {
			h.t.Fatal("door did not open")
		}
		time.Sleep(300 * time.Millisecond)
		shop(h)
		h.door("close")
		h.waitCut()
		h.power("restore")
		return cmd.SessionID, false
	}
	cases := []cutCase{
		{name: "before the session is persisted", buy: func(h *harness) (string, bool) {
			cmd, _ := h.unlock()
			time.Sleep(2 * time.Millisecond) // the unlock is on its way
			h.power("cut")
			time.Sleep(300 * time.Millisecond)
			h.power("restore")
			return cmd.SessionID, true
		}},
		{name: failpoint.SessionSaved, failpoint: failpoint.SessionSaved, buy: armedUnlock},
		{name: failpoint.LockEnergised, failpoint: failpoint.LockEnergised, buy: armedUnlock},
		{name: "door open with items taken", buy: func(h *harness) (string, bool) {
			cmd, reply := h.unlock()
			h.must(<-reply)
			if !h.openDoor(5 * time.Second) {
				h.t.Fatal("door did not open")
			}
			time.Sleep(300 * time.Millisecond)
			shop(h)
			h.power("cut")
			h.door("close") // the shopper leaves in the dark; the bolt latches
			if err := h.s.Door(h.id, 1, "open", false); err == nil {
				h.t.Fatal("the door opened again with the power off")
			}
			time.Sleep(300 * time.Millisecond)
			h.power("restore")
			return cmd.SessionID, false
		}},
		{name: "door closed before settling", buy: func(h *harness) (string, bool) {
			cmd, reply := h.unlock()
			h.must(<-reply)
			if !h.openDoor(5 * time.Second) {
				h.t.Fatal("door did not open")
			}
			time.Sleep(300 * time.Millisecond)
			shop(h)
			h.door("close")
			h.power("cut") // within the settle time
			time.Sleep(500 * time.Millisecond)
			h.power("restore")
			return cmd.SessionID, false
		}},
		{name: failpoint.SaleCommitted, failpoint: failpoint.SaleCommitted, buy: armedSale},
		{name: failpoint.SalePublishing, failpoint: failpoint.SalePublishing, buy: armedSale},
		{name: failpoint.SalePublished, failpoint: failpoint.SalePublished, buy: armedSale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := startProcessSim(t, Options{Seed: 51, DataDir: dir, Configure: cutConfig})
			h := newHarness(t, s, s.Cabinets()[0].ID, 3*time.Minute)
			if tc.failpoint != "" {
				h.arm(tc.failpoint)
			}
			h.waitReady()
			before := h.stock()
			sid, early := tc.buy(h)
			h.settle(60 * time.Second)
			took := taken(before, h.stock())
			h.must(h.checkBooks())
			sale, ok := h.saleOf(sid)
			switch {
			case !ok && !early:
				t.Fatalf("no sale for session %s; platform holds %d sales", sid, len(h.sales()))
			case !ok:
				t.Logf("the cut came before the session was persisted: no sale")
				if len(took) != 0 {
					t.Fatalf("goods left without a session: %v", took)
				}
			case len(took) == 0:
				if sale.Status != msg.SaleCancelled && sale.Status != msg.SaleEmpty || len(sale.Lines) != 0 {
					t.Fatalf("nothing taken, sale %s charges %v", sale.Status, lines(sale))
				}
			default:
				if got := lines(sale); !maps.Equal(got, took) {
					t.Fatalf("sale %s (%s) charges %v; the shelves lost %v\n%+v", sale.SaleID, sale.Status, got, took, sale)
				}
			}
			if len(h.sales()) > 1 {
				t.Fatalf("platform holds %d sales, want at most 1", len(h.sales()))
			}
			if err := h.lockedShut(); err != nil {
				t.Fatal(err)
			}
			if tc.failpoint == failpoint.SalePublished {
				// The broker had it, the platform's ack never reached the
				// dead process: the restarted firmware must send it again,
				// under the same sale id.
				for _, r := range h.sales() {
					if r.Sale.SessionID == sid && r.Copies < 2 {
						t.Fatalf("sale %s arrived %d time(s); the restart should have resent it", r.Sale.SaleID, r.Copies)
					}
				}
			}
			if ok {
				t.Logf("sale seq %d %s %s total %d fen %v", sale.Seq, sale.SaleID, sale.Status, sale.TotalFen, lines(sale))
			}
			s.Close()
			for _, ls := range checkLedger(t, h.c.Dir) {
				if ls.SessionID == sid && ok && ls.SaleID != sale.SaleID {
					t.Fatalf("ledger sale %s, platform sale %s for one session", ls.SaleID, sale.SaleID)
				}
			}
		})
	}
}
