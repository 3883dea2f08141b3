package firmware

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/internal/logx"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// Restock sessions. Staff open the cabinet with a signed `restock_open`; the
// session runs on the shopping session's machinery (before weights taken with
// every door shut and every scale still, the session committed before the
// lock is energised, door open → closed → settled, recovery after a power
// cut, lock faults) with Kind ledger.KindRestock, and ends not with a sale
// but with a restock message and the shelves' new stock levels, committed
// together (ledger.EndSession). Nothing is priced or charged and no sale seq
// is used.

// restockOpen opens a restock session. The header checks (signature,
// cabinet, replay, expiry) have passed.
func (d *Device) restockOpen(ctx context.Context, cmd msg.Command, received, now time.Time) {
	refuse := func(code, format string, a ...any) {
		d.refuse(cmd, &payment.Refusal{Code: code, Detail: fmt.Sprintf(format, a...)})
	}
	// door is required by the contract; 0 (left out) is read as door 1, as
	// for unlock, rather than refusing staff standing at a one-door cabinet.
	door := payment.UnlockDoor(cmd)
	switch {
	case cmd.SessionID == "":
		refuse(msg.ErrBadRequest, "missing session_id")
		return
	case cmd.StaffID == "":
		refuse(msg.ErrBadRequest, "missing staff_id")
		return
	case cmd.Door < 0 || d.lockFor(door) == nil:
		refuse(msg.ErrBadRequest, "no door %d", cmd.Door)
		return
	}
	// Revoked goods on the shelves keep shoppers out, not the staff who
	// come to remove them: that reason is the last outOfService gives, so
	// any other one still refuses.
	d.refreshRevoked()
	if why := d.outOfService(); why != "" && why != d.stk.rv.reason {
		refuse(msg.ErrOutOfService, "%s", why)
		return
	}
	if d.catalog.Version() == 0 {
		refuse(msg.ErrNoCatalog, "no verified catalog loaded")
		return
	}
	if d.sess != nil {
		refuse(msg.ErrBusy, "a session is in progress")
		return
	}
	before, err := d.beforeWeights(now)
	if err != nil {
		refuse(msg.ErrBusy, "%s", err.Error())
		return
	}
	s := &ledger.Session{
		ID: cmd.SessionID, CmdID: cmd.ID, Kind: ledger.KindRestock, StaffID: cmd.StaffID,
		Door: door, State: fsm.Authorised, Received: received.UTC(),
		Deadline: now.Add(d.cfg.UnlockWindow()).UTC(), Before: before, Goods: d.goodsSnapshot(),
		CatalogVersion: d.catalog.Version(),
	}
	if err := d.ledger.SaveSession(s, &cmd); err != nil {
		d.log.Error("persist restock session", "err", err)
		d.reply(nil, cmd.ID, msg.ErrOutOfService, "storage fault", nil)
		d.alarm(msg.AlarmStorageFault, msg.SevCritical, map[string]any{"err": err.Error()})
		return
	}
	d.sess = s
	failpoint.Hit(failpoint.SessionSaved)
	if _, err := d.energise(ctx, door); err != nil {
		d.feed(ctx, s, fsm.Event{Kind: fsm.LockFailed}, now, cause{err: err})
		return
	}
	failpoint.Hit(failpoint.LockEnergised)
	d.feed(ctx, s, fsm.Event{Kind: fsm.Energised}, now, cause{})
	d.log.Info("restock session open", "session", s.ID, "door", door, "staff", s.StaffID)
}

// finishRestock counts what moved on each shelf behind the session's door,
// and ends the session with its restock message, the new stock levels and
// any alarms in one commit. On a commit failure the session stays and the
// next tick tries again, as a sale does.
func (d *Device) finishRestock(s *ledger.Session, now time.Time, timedOut bool) {
	stock, err := d.ledger.Stock()
	if err != nil {
		d.log.Error("read stock levels; will retry", logx.Limit("read stock"), "session", s.ID, "err", err)
		return
	}
	var inputs []infer.RestockShelf
	goods := map[int][]string{} // shelf → its SKUs in the session's snapshot
	var faulty []int
	for _, b := range s.Before {
		sh := d.shelf(b.Shelf)
		if sh == nil || sh.Door != s.Door {
			continue
		}
		in := infer.RestockShelf{Shelf: infer.Shelf{Shelf: b.Shelf}, Have: stock[b.Shelf]}
		// Every product on the planogram's shelf counts, sellable or not:
		// revoked units are exactly what a restocker may be taking away.
		for _, g := range s.Goods {
			if g.Shelf != b.Shelf {
				continue
			}
			for _, p := range g.Products {
				goods[b.Shelf] = append(goods[b.Shelf], p.SKU)
				in.SKUs = append(in.SKUs, infer.SKU{SKU: p.SKU, UnitG: p.UnitWeightG, TolG: p.WeightTolG})
			}
		}
		after, ok := d.readings[b.Shelf]
		if d.readErr[b.Shelf] != nil || !ok || (!after.Settled && after.Samples < minAfterSamples) {
			faulty = append(faulty, b.Shelf)
			continue
		}
		in.BeforeG, in.AfterG = b.Grams, after.Grams
		in.NoiseG = math.Sqrt(sq(b.NoiseG)/float64(max(b.Samples, 1)) + sq(after.NoiseG)/float64(max(after.Samples, 1)))
		inputs = append(inputs, in)
	}
	// A restock takes minutes with the door open: a shelf drifting by less
	// than a foreign object would weigh was not touched.
	counts := infer.CountRestock(inputs, &infer.CountOptions{UntouchedG: d.cfg.ForeignMinG})

	changes := []msg.RestockChange{}
	evidence := []msg.Evidence{}
	var ops []ledger.StockOp
	var extra []ledger.Item
	byShelf := map[int]infer.RestockShelf{}
	for _, in := range inputs {
		byShelf[in.Shelf.Shelf] = in
	}
	for _, c := range counts {
		in := byShelf[c.Shelf]
		evidence = append(evidence, msg.Evidence{Shelf: c.Shelf, BeforeG: round1(in.BeforeG), AfterG: round1(in.AfterG),
			DeltaG: round1(c.DeltaG), ResidualG: round1(c.ResidualG)})
		// Only what the count vouches for is a change: a SKU another
		// explanation counts differently shows in the evidence alone.
		for _, ch := range c.Changes {
			if c.Status != infer.CountUnexplained && !slices.Contains(c.Unsettled, ch.SKU) {
				changes = append(changes, msg.RestockChange{Shelf: c.Shelf, SKU: ch.SKU, DeltaQty: ch.Qty})
			}
		}
		ops = append(ops, d.restockOps(s, c, stock[c.Shelf], goods[c.Shelf])...)
		switch {
		case c.Status == infer.CountUnexplained && !c.Capped:
			extra = append(extra, d.alarmItem(msg.AlarmUnknownObject, msg.SevWarning, map[string]any{
				"shelf": c.Shelf, "delta_g": round1(c.DeltaG), "session": s.ID, "restock": true,
				"note": "weight change no count of the shelf's products explains"}))
		case c.Status != infer.CountExact:
			d.log.Warn("restock count not settled; those levels are now unknown", "session", s.ID,
				"shelf", c.Shelf, "status", c.Status, "capped", c.Capped, "skus", c.Unsettled,
				"likeliest", fmt.Sprint(c.Changes), "delta_g", round1(c.DeltaG))
		}
	}
	// A shelf whose scale could not be read was not counted: whatever the
	// staff did there, its levels are no longer known.
	for _, sh := range faulty {
		for _, sku := range goods[sh] {
			ops = append(ops, ledger.StockOp{Op: ledger.StockForget, Shelf: sh, SKU: sku})
		}
	}
	r := msg.Restock{
		RestockID: msg.NewID(now), SessionID: s.ID, StaffID: s.StaffID,
		OpenedAt: msg.At(s.OpenedAt), ClosedAt: msg.At(s.ClosedAt), Changes: changes, Evidence: evidence,
	}
	items := append([]ledger.Item{{Kind: outbox.KindRestock, Topic: d.topics.Restock(), Body: r}, ledger.StockItem(ops...)}, extra...)
	if err := d.ledger.EndSession(items...); err != nil {
		d.commitFailed(s, "commit restock", err)
		return
	}
	if len(faulty) > 0 {
		d.log.Error("restock counted without faulty shelves; their levels are now unknown", "session", s.ID, "shelves", faulty)
	}
	if timedOut {
		d.log.Warn("restock counted on unsettled readings", "session", s.ID)
	}
	d.endRestock(r, now)
}

// restockOps turns one shelf's count into its new levels: the levels known
// before plus the counted changes, never below zero; unknown where the
// evidence cannot vouch for them; zero for everything on a shelf that reads
// empty afterwards.
func (d *Device) restockOps(s *ledger.Session, c infer.ShelfCount, had map[string]int, skus []string) []ledger.StockOp {
	var ops []ledger.StockOp
	if c.EmptyAfter {
		// An empty shelf holds none of anything, listed or not.
		all := slices.Clone(skus)
		for sku := range had {
			if !slices.Contains(all, sku) {
				all = append(all, sku)
			}
		}
		slices.Sort(all)
		for _, sku := range all {
			ops = append(ops, ledger.StockOp{Op: ledger.StockSet, Shelf: c.Shelf, SKU: sku, Qty: 0})
		}
		return ops
	}
	for _, sku := range skus {
		prior, known := had[sku]
		if c.EmptyBefore {
			prior, known = 0, true
		}
		if !known || c.Status == infer.CountUnexplained || slices.Contains(c.Unsettled, sku) {
			ops = append(ops, ledger.StockOp{Op: ledger.StockForget, Shelf: c.Shelf, SKU: sku})
			continue
		}
		q := prior
		for _, ch := range c.Changes {
			if ch.SKU == sku {
				q += ch.Qty
			}
		}
		if q < 0 {
			// CountRestock bounds removals by the known level, so only a
			// level a sale had already clamped gets here.
			d.log.Warn("restock count below zero; level set to 0", "session", s.ID, "shelf", c.Shelf, "sku", sku, "count", q)
			q = 0
		}
		ops = append(ops, ledger.StockOp{Op: ledger.StockSet, Shelf: c.Shelf, SKU: sku, Qty: q})
	}
	return ops
}

// endRestock clears the session in memory after its commit, and judges the
// revoked goods again: the count may have removed the last of them.
func (d *Device) endRestock(r msg.Restock, now time.Time) {
	d.sess = nil
	d.qr.Rotate(now)
	for _, ev := range r.Evidence {
		d.baseline[ev.Shelf] = ev.AfterG
	}
	d.stk.viewAt = time.Time{}
	d.log.Info("restock committed", "restock_id", r.RestockID, "session", r.SessionID, "staff", r.StaffID, "changes", len(r.Changes))
	d.checkRevoked()
}

// cancelRestock ends a restock session whose door never opened (expired,
// cancelled by the platform, lock fault): its restock message reports no
// changes, and extra (a lock_fault alarm and reply) commits with it.
func (d *Device) cancelRestock(s *ledger.Session, why string, extra ...ledger.Item) {
	now := d.now()
	r := msg.Restock{
		RestockID: msg.NewID(now), SessionID: s.ID, StaffID: s.StaffID,
		// As for a cancelled sale: opened_at is when the session was
		// authorised, closed_at when it was cancelled.
		OpenedAt: msg.At(s.Received), ClosedAt: msg.At(now),
		Changes: []msg.RestockChange{}, Evidence: []msg.Evidence{},
	}
	items := append([]ledger.Item{{Kind: outbox.KindRestock, Topic: d.topics.Restock(), Body: r}}, extra...)
	if err := d.ledger.EndSession(items...); err != nil {
		d.commitFailed(s, "commit cancelled restock", err)
		return
	}
	d.sess = nil
	d.qr.Rotate(now)
	d.log.Info("restock session cancelled", "session", s.ID, "why", why)
}

// saleStock is the stock decrement of a sale's lines, to commit with the
// sale. A known level never goes below zero; selling more than it holds is
// logged here, where the level can still be read before the commit.
func (d *Device) saleStock(session string, lines []msg.SaleLine) ledger.Item {
	stock, err := d.ledger.Stock()
	if err != nil {
		d.log.Warn("read stock levels", "session", session, "err", err) // the commit decides
	}
	sold := map[ledger.StockOp]int{}
	var ops []ledger.StockOp
	for _, l := range lines {
		ops = append(ops, ledger.StockOp{Op: ledger.StockAdd, Shelf: l.Shelf, SKU: l.SKU, Qty: -l.Qty})
		sold[ledger.StockOp{Shelf: l.Shelf, SKU: l.SKU}] += l.Qty
	}
	for k, n := range sold {
		if q, known := stock.Get(k.Shelf, k.SKU); known && n > q {
			d.log.Warn("sold more than the known stock; level set to 0", "session", session,
				"shelf", k.Shelf, "sku", k.SKU, "stock", q, "sold", n)
		}
	}
	return ledger.StockItem(ops...)
}
