package firmware

// Regression tests for defects a review found: each once failed.

import (
	"encoding/json"
	"github.com/bangfu/cabinet/firmware/fsm"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// newCatalog returns the demo catalog as version v with edit applied.
func (r *rig) newCatalog(v int64, edit func(*msg.Catalog)) {
	r.t.Helper()
	c := demo.Catalog(r.d.now())
	c.Version = v
	edit(&c)
	if err := r.d.catalog.ApplyCatalog(c, r.cfg.Region); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) shopShelf3(take func()) msg.Sale {
	r.t.Helper()
	r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		r.t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	take()
	if err := r.hw.CloseDoor(1); err != nil {
		r.t.Fatal(err)
	}
	r.stepToState("")
	s := r.sales()
	return s[len(s)-1]
}

func dump(t *testing.T, s msg.Sale) {
	b, _ := json.Marshal(struct {
		Status string
		Total  int64
		Lines  []msg.SaleLine
		Ev     []msg.Evidence
	}{s.Status, s.TotalFen, s.Lines, s.Evidence})
	t.Logf("sale: %s", b)
}

// CQ-0303 (250 g, ¥36) is revoked but still physically on shelf 3 next to
// CQ-0304 (500 g, ¥68). The shopper takes 2 × CQ-0303 (revoked: may not be
// sold, worth 0 to the charge). The evidence fits "2 × CQ-0303" (¥0
// chargeable) or "1 × CQ-0304" (¥68): the shopper must not pay ¥68.
func TestRevokedProductNeverChargedOrSwapped(t *testing.T) {
	r := newConfusableRig(t)
	// Revoked while the shopper is at the shelves: a revoked product in
	// stock refuses the unlock itself (TestRevokedProductInStock), so the
	// charge is what protects the shopper here.
	sale := r.shopShelf3(func() {
		r.newCatalog(2, func(c *msg.Catalog) {
			for i := range c.Products {
				if c.Products[i].SKU == "CQ-0303" {
					c.Products[i].Status = msg.StatusRevoked
				}
			}
		})
		if err := r.hw.Take(3, "CQ-0303", 2); err != nil {
			t.Fatal(err)
		}
	})
	dump(t, sale)
	if sale.TotalFen > 0 {
		t.Errorf("took only revoked goods (2 × CQ-0303), charged %d fen for %+v", sale.TotalFen, sale.Lines)
	}
}

// Same, but the new catalog simply no longer lists CQ-0303 (清理出产品目录):
// the planogram still names it, inference never sees it, and the sale is
// "exact" for a product that was not taken.
func TestDroppedProductNotChargedAsAnother(t *testing.T) {
	r := newConfusableRig(t)
	sale := r.shopShelf3(func() {
		r.newCatalog(2, func(c *msg.Catalog) {
			var keep []msg.Product
			for _, p := range c.Products {
				if p.SKU != "CQ-0303" {
					keep = append(keep, p)
				}
			}
			c.Products = keep
		})
		if err := r.hw.Take(3, "CQ-0303", 2); err != nil {
			t.Fatal(err)
		}
	})
	dump(t, sale)
	if sale.TotalFen > 0 {
		t.Errorf("took 2 × CQ-0303 (not in catalog), charged %d fen, status %s: %+v", sale.TotalFen, sale.Status, sale.Lines)
	}
}

// A new planogram (and catalog) arrives while the shopper is at the
// shelves: the session is judged against it, not against what was on the
// shelf when the "before" weights were taken.
func TestMidSessionPlanogramDoesNotReprice(t *testing.T) {
	r := newConfusableRig(t)
	r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	if err := r.hw.Take(3, "CQ-0303", 1); err != nil { // 250 g, ¥36
		t.Fatal(err)
	}
	// Platform publishes catalog v2 with a new 250 g product at ¥99 and a
	// planogram v2 putting it on shelf 3 (for the next restock).
	r.newCatalog(2, func(c *msg.Catalog) {
		p := c.Products[0]
		p.SKU, p.CertNo, p.UnitWeightG, p.WeightTolG, p.PriceFen = "CQ-0399", "FP-X", 250, 3, 9900
		c.Products = append(c.Products, p)
	})
	p2 := demo.Planogram(testCabinet)
	p2.Version = 2
	p2.Shelves[2].SKUs = []string{"CQ-0399", "CQ-0304"}
	r.d.applyPlanogram(p2)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	sale := r.sales()[0]
	dump(t, sale)
	if sale.TotalFen > 3600 {
		t.Errorf("took 1 × CQ-0303 (¥36), charged %d fen: %+v", sale.TotalFen, sale.Lines)
	}
}

// Power cut in "settling", power back after settle_timeout_s: the HX711
// filters start empty (as on a real board), and the sale is judged on the
// first tick, before any scale has read: goods are not charged.
func TestRecoverSettlingWaitsForScalesAfterLongOutage(t *testing.T) {
	r := newRig(t, func(c *config.Config) { c.SettleTimeoutS = 1 })
	var warm atomic.Bool
	warm.Store(true)
	r.wrap = func(hw hal.Cabinet) hal.Cabinet {
		for i := range hw.Shelves {
			hw.Shelves[i].Scale = coldScale{hw.Shelves[i].Scale, &warm}
		}
		return hw
	}
	r.restart() // pick up the wrapper
	r.waitIdle()
	r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	basket := r.basket(2, 1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.Settling)
	r.restart()                         // crash in settling
	pass(t, r.d, 1500*time.Millisecond) // outage longer than settle_timeout_s
	warm.Store(false)                   // fresh filters: no samples yet
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	stepFor(t, r.d, 50*time.Millisecond)
	if s := r.sales(); len(s) > 0 {
		dump(t, s[0])
		t.Errorf("sale judged before any scale had read after restart: total %d fen, want %d", s[0].TotalFen, r.price(basket))
	}
	warm.Store(true)
	stepFor(t, r.d, 1500*time.Millisecond)
	s := r.sales()
	if len(s) != 1 || s[0].TotalFen != r.price(basket) {
		t.Fatalf("after the scales came back: %d sales, want one of %d fen: %+v", len(s), r.price(basket), s)
	}
}

// A config command may only change what the running firmware applies at
// once; qr_rotate_s (fixed in the QR at start-up) is refused, not
// acknowledged and ignored, and the QR keeps its rotation.
func TestConfigRefusesSettingsItCannotApplyLive(t *testing.T) {
	r := newConfusableRig(t)
	cmd := r.cmd(msg.CmdConfig)
	cmd.Settings = map[string]json.RawMessage{"qr_rotate_s": json.RawMessage("5")}
	r.send(cmd)
	r.reply(cmd.ID, msg.ErrBadRequest)
	ok := r.cmd(msg.CmdConfig)
	ok.Settings = map[string]json.RawMessage{"heartbeat_s": json.RawMessage("5")}
	r.send(ok)
	r.reply(ok.ID, "")
	if r.d.cfg.HeartbeatS != 5 {
		t.Fatalf("heartbeat_s not applied: %d", r.d.cfg.HeartbeatS)
	}
}

// An unlock refused as bad_request (no such door / limit over cap) after
// CheckUnlock has already spent the QR nonce: the shopper's code is burnt.
func TestRefusedUnlockLeavesNonceUnspent(t *testing.T) {
	r := newConfusableRig(t)
	cmd := r.unlockCmd()
	bad := cmd
	bad.ID = "cmd-" + msg.NewID(r.d.now())
	bad.Door = 2 // typo / wrong door from the platform
	r.send(bad)
	r.reply(bad.ID, msg.ErrBadRequest)
	// The platform corrects the door and retries with the same scan.
	r.send(cmd)
	rep := r.replies(cmd.ID)
	t.Logf("retry reply: %+v", rep)
	if len(rep) != 1 || !rep[0].OK {
		t.Errorf("after a bad_request refusal, the same QR no longer opens: %+v", rep)
	}
}

// A door forced open while idle and an item grabbed: an unlock arriving
// then is refused busy (the cabinet is not shut and still), so nobody
// pays for what was taken before their session; door_forced is raised.
func TestUnlockRefusedWhileDoorOpen(t *testing.T) {
	r := newConfusableRig(t)
	if err := r.hw.OpenDoor(1, true); err != nil {
		t.Fatal(err)
	}
	if err := r.hw.Take(1, "NM-0003", 1); err != nil {
		t.Fatal(err)
	}
	stepFor(t, r.d, 200*time.Millisecond)
	if n := len(r.alarms(msg.AlarmDoorForced)); n != 1 {
		t.Fatalf("%d door_forced alarms, want 1", n)
	}
	cmd := r.unlockCmd()
	r.send(cmd)
	r.reply(cmd.ID, msg.ErrBusy)
	if r.d.sess != nil {
		t.Fatalf("a session opened on an open door: %+v", r.d.sess)
	}
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	stepFor(t, r.d, 200*time.Millisecond)
	if s := r.sales(); len(s) != 0 {
		t.Fatalf("sales after a refused unlock: %+v", s)
	}
}

// Crash between committing the authorised session and the ok reply (the
// energise wait is up to 2 s): recovery unlocks the door, but the platform
// never gets a reply to the unlock.
func TestRecoverAuthorisedRepliesOnce(t *testing.T) {
	r := newConfusableRig(t)
	cmd := r.unlockCmd()
	before, err := r.d.beforeWeights(r.d.now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.qr.Use(cmd.QRNonce, r.d.now()); err != nil {
		t.Fatal(err)
	}
	s := &ledger.Session{ID: cmd.SessionID, CmdID: cmd.ID, Kind: "shopping", Buyer: *cmd.Buyer, LimitFen: cmd.LimitFen,
		Door: 1, State: fsm.Authorised, Received: r.d.now().UTC(), Deadline: r.d.now().Add(2 * time.Second).UTC(),
		Before: before, CatalogVersion: 1}
	if err := r.d.ledger.SaveSession(s, &cmd); err != nil { // what unlock() commits before energising
		t.Fatal(err)
	}
	r.restart()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	if reps := r.replies(cmd.ID); len(reps) != 1 || !reps[0].OK {
		t.Errorf("replies to unlock %s after recovery: %+v, want exactly one ok", cmd.ID, reps)
	}
}
