package firmware

// Restock sessions, stock levels and revoked products held, on the rig of
// device_test.go (a Device on hal/sim, real bbolt files, no MQTT link).

import (
	"context"
	"encoding/json"
	"github.com/bangfu/cabinet/firmware/fsm"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/docs"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

const testStaff = "staff-007"

// seedStock records levels as an earlier restock would have counted them.
func (r *rig) seedStock(levels map[int]map[string]int) {
	r.t.Helper()
	var ops []ledger.StockOp
	for shelf, m := range levels {
		for sku, n := range m {
			ops = append(ops, ledger.StockOp{Op: ledger.StockSet, Shelf: shelf, SKU: sku, Qty: n})
		}
	}
	if err := r.d.ledger.Enqueue(nil, ledger.StockItem(ops...)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) stockLevels() ledger.Stock {
	r.t.Helper()
	s, err := r.d.ledger.Stock()
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) restockCmd() msg.Command {
	c := r.cmd(msg.CmdRestockOpen)
	c.SessionID = "R-" + msg.NewID(r.d.now())
	c.StaffID = testStaff
	c.Door = 1
	return c
}

// openRestock sends a restock_open and checks that it opened a restock
// session with the lock energised.
func (r *rig) openRestock() msg.Command {
	r.t.Helper()
	cmd := r.restockCmd()
	r.send(cmd)
	r.reply(cmd.ID, "")
	s := r.session()
	if s == nil || s.ID != cmd.SessionID || s.Kind != ledger.KindRestock || s.StaffID != testStaff || s.State != fsm.Unlocked {
		r.t.Fatalf("after restock_open: persisted session %+v", s)
	}
	if len(s.Before) != len(r.plan.Shelves) || len(s.Goods) != len(r.plan.Shelves) {
		r.t.Fatalf("restock session without its before weights or goods: %+v", s)
	}
	if d := r.door(); !d.Energised {
		r.t.Fatalf("lock %+v after restock_open, want energised", d)
	}
	return cmd
}

// restock runs a whole restock session: open, act with the door open, shut,
// until it ends. It returns the session's restock message.
func (r *rig) restock(act func()) msg.Restock {
	r.t.Helper()
	cmd := r.openRestock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		r.t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	if st := r.d.Status(); st.Mode != msg.ModeRestock {
		r.t.Fatalf("mode %q during a restock, want restock", st.Mode)
	}
	act()
	if err := r.hw.CloseDoor(1); err != nil {
		r.t.Fatal(err)
	}
	r.stepToState("")
	r.locked()
	rs := r.restocks()
	last := rs[len(rs)-1]
	if last.SessionID != cmd.SessionID {
		r.t.Fatalf("last restock is of session %s, want %s", last.SessionID, cmd.SessionID)
	}
	return last
}

// restocks returns the queued restock messages, each checked against the
// published contract.
func (r *rig) restocks() []msg.Restock {
	r.t.Helper()
	var out []msg.Restock
	for _, e := range r.pending() {
		if e.Kind != outbox.KindRestock {
			continue
		}
		if e.Topic != r.d.topics.Restock() || e.SaleSeq != 0 {
			r.t.Fatalf("restock entry on topic %q with sale seq %d", e.Topic, e.SaleSeq)
		}
		if err := docs.Validate("restock", e.Payload); err != nil {
			r.t.Fatalf("restock breaks the contract: %v\n%s", err, e.Payload)
		}
		var m msg.Restock
		if err := json.Unmarshal(e.Payload, &m); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// noSales fails if anything was sold or counted as sold.
func (r *rig) noSales() {
	r.t.Helper()
	if s := r.sales(); len(s) != 0 {
		r.t.Fatalf("%d sales after restocking: %+v", len(s), s)
	}
	if q := r.outboxSales(); len(q) != 0 {
		r.t.Fatalf("%d sales queued after restocking", len(q))
	}
	if c := r.counters(); c != (msg.Counters{}) {
		r.t.Fatalf("counters %+v after restocking, want none", c)
	}
}

func TestRestockSession(t *testing.T) {
	r := newRig(t)
	r.seedStock(r.stock)
	qrBefore := r.d.qr.Current(r.d.now())
	var cmdID string
	rs := r.restock(func() {
		cmdID = r.session().CmdID
		if err := r.hw.Put(1, "NM-0001", 0, 5); err != nil {
			t.Fatal(err)
		}
		if err := r.hw.Take(2, "QH-0202", 2); err != nil {
			t.Fatal(err)
		}
	})

	want := []msg.RestockChange{{Shelf: 1, SKU: "NM-0001", DeltaQty: 5}, {Shelf: 2, SKU: "QH-0202", DeltaQty: -2}}
	if !reflect.DeepEqual(rs.Changes, want) {
		t.Fatalf("changes %+v, want %+v", rs.Changes, want)
	}
	if rs.RestockID == "" || rs.StaffID != testStaff || rs.OpenedAt.IsZero() || rs.ClosedAt.Before(rs.OpenedAt.Time) {
		t.Fatalf("restock header %+v", rs)
	}
	if len(rs.Evidence) != len(r.plan.Shelves) {
		t.Fatalf("evidence %+v, want every shelf behind the door", rs.Evidence)
	}
	wantG := map[int]float64{1: 5 * r.product("NM-0001").UnitWeightG, 2: -2 * r.product("QH-0202").UnitWeightG}
	for _, ev := range rs.Evidence {
		if math.Abs(ev.DeltaG-wantG[ev.Shelf]) > 15 || math.Abs(ev.AfterG-ev.BeforeG-ev.DeltaG) > 0.2 {
			t.Errorf("shelf %d evidence %+v, want Δ about %.0f g", ev.Shelf, ev, wantG[ev.Shelf])
		}
	}
	if n := len(r.restocks()); n != 1 {
		t.Fatalf("%d restock messages, want 1", n)
	}

	// The levels moved by the count and nothing else did.
	levels := r.stockLevels()
	wantLevels := ledger.Stock(demo.Stock())
	wantLevels[1]["NM-0001"] += 5
	wantLevels[2]["QH-0202"] -= 2
	if !reflect.DeepEqual(levels, wantLevels) {
		t.Fatalf("stock %v, want %v", levels, wantLevels)
	}
	stepUntil(t, r.d, func() bool { return reflect.DeepEqual(r.d.Status().Stock, wantLevels) }, 5*time.Second)

	// Not a sale: no seq, no counter, no charge.
	r.noSales()
	r.reply(cmdID, "") // exactly one reply
	if !r.d.ledger.Seen(cmdID) {
		t.Fatal("restock_open id not in the replay cache")
	}
	if r.d.qr.Current(r.d.now()) == qrBefore {
		t.Fatal("QR not rotated after the session")
	}

	// The staff's changes are not idle weight changes, nor strangers.
	stepFor(t, r.d, 500*time.Millisecond)
	for _, kind := range []string{msg.AlarmWeightWhileLocked, msg.AlarmUnknownObject, msg.AlarmDoorForced, msg.AlarmRevokedInStock} {
		if a := r.alarms(kind); len(a) != 0 {
			t.Errorf("alarm %s during a normal restock: %+v", kind, a)
		}
	}
	if st := r.d.Status(); st.Mode != msg.ModeIdle {
		t.Fatalf("mode %q after the restock, want idle", st.Mode)
	}

	// A shopper can buy what was put in; the sale does not see the restock.
	r.waitIdle()
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	if err := r.hw.Take(1, "NM-0001", 1); err != nil {
		t.Fatal(err)
	}
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	r.checkSale(r.checkOnlySale(), 1, cmd.SessionID, msg.SaleExact, []wantLine{{1, "NM-0001", 1}})
}

// An unknown level becomes known only where a restock can count it: a shelf
// that reads empty.
func TestRestockCountsFromEmpty(t *testing.T) {
	r := newRig(t)
	// Shelf 2's levels are unknown: the restocker empties it...
	r.restock(func() {
		for sku, n := range r.stock[2] {
			if err := r.hw.Take(2, sku, n); err != nil {
				t.Fatal(err)
			}
		}
	})
	levels := r.stockLevels()
	if !reflect.DeepEqual(levels, ledger.Stock{2: {"QH-0201": 0, "QH-0202": 0}}) {
		t.Fatalf("stock after emptying shelf 2: %v, want it counted to 0 and the rest unknown", levels)
	}
	// ...and fills it: now it is counted from zero.
	rs := r.restock(func() {
		if err := r.hw.Put(2, "QH-0201", 0, 4); err != nil {
			t.Fatal(err)
		}
	})
	if want := []msg.RestockChange{{Shelf: 2, SKU: "QH-0201", DeltaQty: 4}}; !reflect.DeepEqual(rs.Changes, want) {
		t.Fatalf("changes %+v, want %+v", rs.Changes, want)
	}
	if levels := r.stockLevels(); !reflect.DeepEqual(levels, ledger.Stock{2: {"QH-0201": 4, "QH-0202": 0}}) {
		t.Fatalf("stock after filling shelf 2: %v", levels)
	}
	r.noSales()
}

// A restock survives a power cut at any point: the session is recovered and
// ends exactly once, with its count.
func TestRestockRecovery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state fsm.State // where the firmware dies
	}{
		{"unlocked", fsm.Unlocked},
		{"door open", fsm.DoorOpen},
		{"settling", fsm.Settling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A window long enough to outlast the restart.
			r := newRig(t, func(c *config.Config) { c.UnlockWindowS = 30 })
			r.seedStock(r.stock)
			cmd := r.openRestock()
			put := func() {
				if err := r.hw.Put(4, "CQ-0301", 0, 3); err != nil {
					t.Fatal(err)
				}
			}
			if tc.state != fsm.Unlocked {
				if err := r.hw.OpenDoor(1, false); err != nil {
					t.Fatal(err)
				}
				r.stepToState(fsm.DoorOpen)
			}
			if tc.state == fsm.Settling {
				put()
				if err := r.hw.CloseDoor(1); err != nil {
					t.Fatal(err)
				}
				r.stepToState(fsm.Settling)
			}

			r.restart()
			if err := r.d.recover(r.ctx); err != nil {
				t.Fatal(err)
			}
			if r.d.sess == nil || r.d.sess.ID != cmd.SessionID || r.d.sess.Kind != ledger.KindRestock {
				t.Fatalf("recovered session %+v", r.d.sess)
			}
			switch tc.state {
			case fsm.Unlocked:
				if d := r.door(); !d.Energised {
					t.Fatalf("lock %+v after recovering an unlocked restock, want energised again", d)
				}
				if err := r.hw.OpenDoor(1, false); err != nil {
					t.Fatal(err)
				}
				r.stepToState(fsm.DoorOpen)
				fallthrough
			case fsm.DoorOpen:
				put()
				if err := r.hw.CloseDoor(1); err != nil {
					t.Fatal(err)
				}
			}
			r.stepToState("")
			r.locked()
			rs := r.restocks()
			if len(rs) != 1 || rs[0].SessionID != cmd.SessionID {
				t.Fatalf("restocks %+v, want one for %s", rs, cmd.SessionID)
			}
			if want := []msg.RestockChange{{Shelf: 4, SKU: "CQ-0301", DeltaQty: 3}}; !reflect.DeepEqual(rs[0].Changes, want) {
				t.Fatalf("changes %+v, want %+v", rs[0].Changes, want)
			}
			if q, _ := r.stockLevels().Get(4, "CQ-0301"); q != r.stock[4]["CQ-0301"]+3 {
				t.Fatalf("CQ-0301 on shelf 4: %d, want %d", q, r.stock[4]["CQ-0301"]+3)
			}
			r.noSales()
			r.reply(cmd.ID, "")

			// Another restart finds nothing left to finish.
			r.restart()
			if err := r.d.recover(r.ctx); err != nil {
				t.Fatal(err)
			}
			r.noSession()
			stepFor(t, r.d, 200*time.Millisecond)
			if n := len(r.restocks()); n != 1 {
				t.Fatalf("%d restocks after a second restart, want 1", n)
			}
		})
	}
}

func TestRestockRefusals(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		name   string
		mutate func(*msg.Command)
		code   string
	}{
		{"missing staff", func(c *msg.Command) { c.StaffID = "" }, msg.ErrBadRequest},
		{"missing session", func(c *msg.Command) { c.SessionID = "" }, msg.ErrBadRequest},
		{"no such door", func(c *msg.Command) { c.Door = 2 }, msg.ErrBadRequest},
		{"wrong cabinet", func(c *msg.Command) { c.CabinetID = "NM-150102-0008" }, msg.ErrWrongCabinet},
		{"expired", func(c *msg.Command) {
			now := r.d.now()
			c.IssuedAt, c.ExpiresAt = msg.At(now.Add(-2*time.Minute)), msg.At(now.Add(-time.Minute))
		}, msg.ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer r.use(t)()
			cmd := r.restockCmd()
			tc.mutate(&cmd)
			r.send(cmd)
			r.reply(cmd.ID, tc.code)
			r.noSession()
			r.locked()
		})
	}
	t.Run("busy with a shopper", func(t *testing.T) {
		defer r.use(t)()
		shop := r.unlock()
		cmd := r.restockCmd()
		r.send(cmd)
		r.reply(cmd.ID, msg.ErrBusy)
		if s := r.session(); s == nil || s.ID != shop.SessionID {
			t.Fatalf("session %+v, want the shopper's", s)
		}
		cancel := r.cmd(msg.CmdCancel)
		cancel.SessionID = shop.SessionID
		r.send(cancel)
		r.reply(cancel.ID, "")
	})
	t.Run("a shopper is refused during a restock", func(t *testing.T) {
		defer r.use(t)()
		r.waitIdle()
		rc := r.openRestock()
		cmd := r.unlockCmd()
		r.send(cmd)
		r.reply(cmd.ID, msg.ErrBusy)
		// Cancelled before the door opened: no sale, an empty restock.
		cancel := r.cmd(msg.CmdCancel)
		cancel.SessionID = rc.SessionID
		r.send(cancel)
		r.reply(cancel.ID, "")
		r.noSession()
		r.locked()
		rs := r.restocks()
		if len(rs) != 1 || rs[0].SessionID != rc.SessionID || len(rs[0].Changes) != 0 {
			t.Fatalf("restocks %+v, want one empty for the cancelled session", rs)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		defer r.use(t)()
		r.waitIdle()
		cmd := r.restockCmd()
		r.send(cmd)
		r.reply(cmd.ID, "")
		r.stepToState("") // nobody opens the door: the window expires
		r.send(cmd)
		if reps := r.replies(cmd.ID); len(reps) != 2 || reps[1].Error != msg.ErrReplayed {
			t.Fatalf("replies %+v, want ok then replayed", reps)
		}
		r.noSession()
	})
	// Only the cancelled shopper's session made a sale.
	if s := r.sales(); len(s) != 1 || s[0].Status != msg.SaleCancelled {
		t.Fatalf("sales %+v, want the one cancelled shopping session", s)
	}
}

func TestRestockLockFault(t *testing.T) {
	r := newRig(t)
	if err := r.hw.JamLock(1, true); err != nil {
		t.Fatal(err)
	}
	cmd := r.restockCmd()
	r.send(cmd) // waits LockTimeout for the bolt
	r.reply(cmd.ID, msg.ErrLockFault)
	r.noSession()
	if d := r.door(); d.Energised || d.Open {
		t.Fatalf("lock after a fault %+v, want released", d)
	}
	if a := r.alarms(msg.AlarmLockFault); len(a) != 1 || a[0].Detail["session"] != cmd.SessionID {
		t.Fatalf("lock_fault alarms %+v", a)
	}
	rs := r.restocks()
	if len(rs) != 1 || rs[0].SessionID != cmd.SessionID || len(rs[0].Changes) != 0 || len(rs[0].Evidence) != 0 {
		t.Fatalf("restocks %+v, want one empty", rs)
	}
	r.noSales()
}

// Something no count of the shelf's products explains is reported, raises
// unknown_object, and the shelf's levels are no longer trusted.
func TestRestockUnknownObject(t *testing.T) {
	r := newRig(t)
	r.seedStock(r.stock)
	rs := r.restock(func() {
		if err := r.hw.PutObject(2, 400); err != nil { // a flask of tea left behind
			t.Fatal(err)
		}
	})
	if len(rs.Changes) != 0 {
		t.Fatalf("changes %+v for a foreign object", rs.Changes)
	}
	var ev msg.Evidence
	for _, e := range rs.Evidence {
		if e.Shelf == 2 {
			ev = e
		}
	}
	if math.Abs(ev.DeltaG-400) > 5 || ev.ResidualG != ev.DeltaG {
		t.Fatalf("shelf 2 evidence %+v, want the whole 400 g unexplained", ev)
	}
	a := r.alarms(msg.AlarmUnknownObject)
	if len(a) != 1 || a[0].Detail["shelf"] != float64(2) {
		t.Fatalf("unknown_object alarms %+v, want one for shelf 2", a)
	}
	levels := r.stockLevels()
	if _, known := levels[2]; known {
		t.Fatalf("shelf 2 levels %v still trusted after an unexplained change", levels[2])
	}
	if !reflect.DeepEqual(levels[1], r.stock[1]) {
		t.Fatalf("shelf 1 levels %v, untouched, want %v", levels[1], r.stock[1])
	}
	r.noSales()
}

// On the confusable shelf two 250 g packs weigh one 500 g pack: the count
// reports the weights, claims no change, and forgets both levels.
func TestRestockAmbiguousShelf(t *testing.T) {
	r := newConfusableRig(t)
	r.seedStock(r.stock)
	rs := r.restock(func() {
		if err := r.hw.Take(confusableShelf, "CQ-0303", 2); err != nil {
			t.Fatal(err)
		}
	})
	if len(rs.Changes) != 0 {
		t.Fatalf("changes %+v: the weights cannot tell them", rs.Changes)
	}
	found := false
	for _, ev := range rs.Evidence {
		if ev.Shelf == confusableShelf {
			found = math.Abs(ev.DeltaG+500) < 8
		}
	}
	if !found {
		t.Fatalf("evidence %+v, want shelf %d's −500 g", rs.Evidence, confusableShelf)
	}
	levels := r.stockLevels()
	if _, known := levels[confusableShelf]; known {
		t.Fatalf("shelf %d levels %v still trusted", confusableShelf, levels[confusableShelf])
	}
	if len(r.alarms(msg.AlarmUnknownObject)) != 0 {
		t.Fatal("an ambiguous count is not an unknown object")
	}
}

// A sale takes what it sold off the levels, in the sale's own commit; an
// unknown level stays unknown and a known one never goes below zero.
func TestSaleDecrementsStock(t *testing.T) {
	r := newRig(t)
	basket := r.basket(2, 1, 1) // shelves 1, 2 and 4
	seed := map[int]map[string]int{1: maps.Clone(r.stock[1]), 2: maps.Clone(r.stock[2])}
	seed[2][basket[1].sku] = 0 // a level already (wrongly) at zero
	r.seedStock(seed)

	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	r.checkSale(r.checkOnlySale(), 1, cmd.SessionID, msg.SaleExact, basket)

	want := ledger.Stock{1: maps.Clone(r.stock[1]), 2: maps.Clone(seed[2])}
	want[1][basket[0].sku] -= basket[0].qty
	if !reflect.DeepEqual(r.stockLevels(), want) {
		t.Fatalf("stock after the sale %v, want %v (shelf 4 unknown)", r.stockLevels(), want)
	}
}

// revokeRig is a rig that can receive signed catalogs, its levels counted.
func revokeRig(t *testing.T) (*rig, platformKey) {
	k := newPlatformKey(t, "plat-test")
	r := trustRig(t, k)
	return r, k
}

// revoke delivers catalog version v, signed, with sku revoked.
func (r *rig) revoke(k platformKey, v int64, sku string) {
	r.t.Helper()
	c := demo.Catalog(r.d.now())
	c.Version = v
	for i := range c.Products {
		if c.Products[i].SKU == sku {
			c.Products[i].Status = msg.StatusRevoked
		}
	}
	r.deliver(r.d.topics.Catalog(), k.seal(r.t, c))
	if r.d.catalog.Version() != v {
		r.t.Fatalf("catalog %d not accepted", v)
	}
}

func TestRevokedProductInStock(t *testing.T) {
	r, k := revokeRig(t)
	r.seedStock(r.stock)
	r.revoke(k, 2, "NM-0003") // 12 on shelf 1

	a := r.alarms(msg.AlarmRevokedInStock)
	if len(a) != 1 || a[0].Severity != msg.SevCritical || a[0].Cleared || a[0].Detail["sku"] != "NM-0003" ||
		!reflect.DeepEqual(a[0].Detail["shelves"], []any{float64(1)}) || a[0].Detail["catalog_version"] != float64(2) {
		t.Fatalf("revoked_product_in_stock alarms %+v", a)
	}
	// (Waiting out any other fault a loaded test machine may cause first:
	// outOfService names one reason, the first.)
	stepUntil(t, r.d, func() bool {
		st := r.d.Status()
		return st.Mode == msg.ModeOutOfService && len(st.Faults) == 1 && strings.Contains(st.Faults[0], "NM-0003")
	}, 5*time.Second)
	if d := r.hw.Snapshot().Display; d.QR != "" || d.Status != "OUT OF SERVICE - REVOKED PRODUCT IN STOCK" {
		t.Fatalf("display %+v, want the out-of-service text and no QR", d)
	}
	cmd := r.unlockCmd()
	r.send(cmd)
	if rep := r.reply(cmd.ID, msg.ErrOutOfService); !strings.Contains(rep.Detail, "NM-0003") || !strings.Contains(rep.Detail, "shelf 1") {
		t.Fatalf("refusal detail %q, want the revoked product and its shelf", rep.Detail)
	}
	r.noSession()
	r.locked()
	stepFor(t, r.d, 200*time.Millisecond)
	if n := len(r.alarms(msg.AlarmRevokedInStock)); n != 1 {
		t.Fatalf("%d revoked_product_in_stock alarms, want it raised once", n)
	}

	// The restocker may come in, and takes every revoked unit out.
	stepUntil(t, r.d, func() bool { _, err := r.d.beforeWeights(r.d.now()); return err == nil }, 10*time.Second)
	rs := r.restock(func() {
		if err := r.hw.Take(1, "NM-0003", r.stock[1]["NM-0003"]); err != nil {
			t.Fatal(err)
		}
	})
	if want := []msg.RestockChange{{Shelf: 1, SKU: "NM-0003", DeltaQty: -r.stock[1]["NM-0003"]}}; !reflect.DeepEqual(rs.Changes, want) {
		t.Fatalf("changes %+v, want %+v", rs.Changes, want)
	}
	if q, known := r.stockLevels().Get(1, "NM-0003"); !known || q != 0 {
		t.Fatalf("NM-0003 on shelf 1: %d (known %v), want counted to 0", q, known)
	}
	a = r.alarms(msg.AlarmRevokedInStock)
	if len(a) != 2 || !a[1].Cleared || a[1].Detail["sku"] != "NM-0003" {
		t.Fatalf("revoked_product_in_stock alarms %+v, want raised then cleared", a)
	}
	r.waitIdle()
	again := r.unlock() // shopping again
	cancel := r.cmd(msg.CmdCancel)
	cancel.SessionID = again.SessionID
	r.send(cancel)
	r.reply(cancel.ID, "")

	// A restart neither raises nor clears it again.
	r.restart()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	stepFor(t, r.d, 200*time.Millisecond)
	if n := len(r.alarms(msg.AlarmRevokedInStock)); n != 2 {
		t.Fatalf("%d revoked_product_in_stock alarms after a restart, want still 2", n)
	}
}

// Which revoked products keep shoppers out: any the planogram lists on a
// shelf whose level of it is above zero or unknown.
func TestRevokedProductJudgement(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seed  map[int]map[string]int
		edit  func(*msg.Catalog)
		alarm bool
		why   string
	}{
		{name: "revoked, counted to zero: no alarm", seed: map[int]map[string]int{1: {"NM-0003": 0}},
			edit: revokeSKU("NM-0003")},
		{name: "revoked, level unknown", edit: revokeSKU("NM-0003"), alarm: true, why: payment.ReasonRevoked},
		{name: "revoked, counted above zero", seed: map[int]map[string]int{1: {"NM-0003": 0, "NM-0001": 6}},
			edit: revokeSKU("NM-0001"), alarm: true, why: payment.ReasonRevoked},
		{name: "dropped from the catalog", edit: func(c *msg.Catalog) {
			c.Products = slices.DeleteFunc(c.Products, func(p msg.Product) bool { return p.SKU == "CQ-0304" })
		}, alarm: true, why: payment.ReasonRevoked},
		{name: "not in the planogram", edit: revokeSKU("NM-0002")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			if tc.seed != nil {
				r.seedStock(tc.seed)
			}
			r.newCatalog(2, tc.edit) // straight into the store: the next tick notices
			stepFor(t, r.d, 100*time.Millisecond)
			a := r.alarms(msg.AlarmRevokedInStock)
			if (len(a) == 1) != tc.alarm || len(a) > 1 {
				t.Fatalf("alarms %+v, want alarm %v", a, tc.alarm)
			}
			if tc.alarm && a[0].Detail["reason"] != tc.why {
				t.Fatalf("alarm reason %v, want %q", a[0].Detail["reason"], tc.why)
			}
			if tc.alarm {
				cmd := r.unlockCmd()
				r.send(cmd)
				r.reply(cmd.ID, msg.ErrOutOfService)
				return
			}
			r.waitIdle()
			r.unlock()
		})
	}
}

func revokeSKU(sku string) func(*msg.Catalog) {
	return func(c *msg.Catalog) {
		for i := range c.Products {
			if c.Products[i].SKU == sku {
				c.Products[i].Status = msg.StatusRevoked
			}
		}
	}
}

// A product whose valid_until passes becomes unsellable without any message:
// the cabinet notices by itself.
func TestExpiredProductInStock(t *testing.T) {
	r := newRig(t)
	r.newCatalog(2, func(c *msg.Catalog) {
		for i := range c.Products {
			if c.Products[i].SKU == "QH-0201" {
				c.Products[i].ValidUntil = msg.At(r.d.now().Add(time.Hour))
			}
		}
	})
	stepFor(t, r.d, 100*time.Millisecond)
	if a := r.alarms(msg.AlarmRevokedInStock); len(a) != 0 {
		t.Fatalf("alarm before expiry: %+v", a)
	}
	var later time.Duration
	r.d.now = func() time.Time { return r.clk.Now().Add(later) }
	later = 2 * time.Hour
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmRevokedInStock)) > 0 }, 5*time.Second)
	a := r.alarms(msg.AlarmRevokedInStock)
	if len(a) != 1 || a[0].Detail["sku"] != "QH-0201" || a[0].Detail["reason"] != "expired" {
		t.Fatalf("alarms %+v, want QH-0201 expired", a)
	}
	if st := r.d.Status(); st.Mode != msg.ModeOutOfService {
		t.Fatalf("mode %q, want out_of_service", st.Mode)
	}
}

// Asking whether the cabinet may serve is a query: once a product has
// expired, outOfService and Status raise nothing and say nothing new until
// a tick judges again; the tick raises the alarm once.
func TestOutOfServiceIsAQuery(t *testing.T) {
	r := newRig(t)
	r.newCatalog(2, func(c *msg.Catalog) {
		for i := range c.Products {
			if c.Products[i].SKU == "QH-0201" {
				c.Products[i].ValidUntil = msg.At(r.d.now().Add(time.Hour))
			}
		}
	})
	stepFor(t, r.d, 100*time.Millisecond)
	var later time.Duration
	r.d.now = func() time.Time { return r.clk.Now().Add(later) }
	later = 2 * time.Hour
	for range 10 {
		if why := r.d.outOfService(); why != "" {
			t.Fatalf("outOfService judged again by itself: %q", why)
		}
		_ = r.d.Status()
	}
	if a := r.alarms(msg.AlarmRevokedInStock); len(a) != 0 {
		t.Fatalf("a query raised %+v", a)
	}
	r.d.step(context.Background())
	if why := r.d.outOfService(); !strings.Contains(why, "QH-0201") {
		t.Fatalf("after a tick: %q, want the expired product", why)
	}
	if a := r.alarms(msg.AlarmRevokedInStock); len(a) != 1 {
		t.Fatalf("after a tick: %d alarms, want 1", len(a))
	}
}
