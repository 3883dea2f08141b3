package firmware

import (
	"context"
	"github.com/bangfu/cabinet/firmware/fsm"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/internal/logx"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// finish judges the basket and commits the sale, ending the session.
func (d *Device) finish(s *ledger.Session, now time.Time, timedOut bool) {
	if s.Kind == ledger.KindRestock {
		d.finishRestock(s, now, timedOut) // a stock count, never a sale (restock.go)
		return
	}
	book := d.sessionBook(s)
	// The books' stock bounds what a shelf can have lost; an unreadable
	// stock only loses the bound.
	stock, err := d.ledger.Stock()
	if err != nil {
		d.log.Warn("stock levels unreadable; judging without them", logx.Limit("read stock"), "session", s.ID, "err", err)
		stock = nil
	}
	var all []infer.SKU
	seen := map[string]bool{}
	var inputs []infer.Shelf
	var faulty []int
	for _, b := range s.Before {
		sh := d.shelf(b.Shelf)
		if sh == nil || sh.Door != s.Door {
			continue
		}
		after, ok := d.readings[b.Shelf]
		if d.readErr[b.Shelf] != nil || !ok || (!after.Settled && after.Samples < minAfterSamples) {
			faulty = append(faulty, b.Shelf)
			continue
		}
		in := infer.Shelf{Shelf: b.Shelf, BeforeG: b.Grams, AfterG: after.Grams,
			NoiseG: math.Sqrt(sq(b.NoiseG)/float64(max(b.Samples, 1)) + sq(after.NoiseG)/float64(max(after.Samples, 1)))}
		d.watched(s.ID, b.Shelf, now, &in)
		var lanes map[string]float64
		// Two cells: the right cell's change places the weight along the
		// shelf. Its after reading must be as good as the total's.
		if ra, ok := d.right[b.Shelf]; ok && b.RightG != nil && (ra.Settled || ra.Samples >= minAfterSamples) {
			in.TwoCell, in.RightBeforeG, in.RightAfterG = true, *b.RightG, ra.Grams
			for _, g := range s.Goods {
				if g.Shelf == b.Shelf {
					lanes = g.Lanes
				}
			}
		}
		for _, g := range s.Goods {
			if g.Shelf != b.Shelf {
				continue
			}
			for _, p := range g.Products {
				// Weights explain what moved whatever the product's status;
				// a product that may not be sold now costs nothing, so the
				// cheapest consistent basket never charges for it, nor
				// charges something dearer in its place.
				k := infer.SKU{SKU: p.SKU, UnitG: p.UnitWeightG, TolG: p.WeightTolG, Lane: lanes[p.SKU]}
				if bp, ok := book.Product(p.SKU); ok {
					if sellable, _ := payment.Sellable(bp, now); sellable {
						k.PriceFen = bp.PriceFen
					}
				}
				in.SKUs = append(in.SKUs, k)
				if n, ok := stock.Get(b.Shelf, p.SKU); ok {
					if in.Stock == nil {
						in.Stock = map[string]int{}
					}
					in.Stock[p.SKU] = n
				}
				if !seen[p.SKU] {
					seen[p.SKU] = true
					all = append(all, k)
				}
			}
		}
		inputs = append(inputs, in)
	}
	res := infer.Infer(inputs, all, d.inferOptions())

	// Price only what the certified catalog still allows; anything else is
	// not charged and the sale goes to review.
	status := string(res.Status)
	var items []payment.Item
	var unsellable []string
	for _, l := range res.Lines {
		p, _ := book.Product(l.SKU)
		if ok, why := payment.Sellable(p, now); !ok {
			unsellable = append(unsellable, l.SKU+": "+why)
			continue
		}
		items = append(items, payment.Item{Shelf: l.Shelf, SKU: l.SKU, Qty: l.Qty})
	}
	lines, total, err := payment.Price(items, book, now)
	if err != nil {
		d.log.Error("pricing failed; charging nothing", logx.Limit("pricing "+s.ID), "session", s.ID, "err", err)
		lines, total = nil, 0
		status = msg.SaleAmbiguous
	}
	// A unit moved between shelves weighs the same as a unit taken plus a
	// look-alike left behind: not charged, but a person should look.
	// (infer never calls such a basket exact; the firmware's own reasons
	// for review are added here.)
	if len(unsellable) > 0 || len(res.Unexplained) > 0 || len(faulty) > 0 || len(res.Returned) > 0 || timedOut {
		status = msg.SaleAmbiguous
	}
	if status == msg.SaleExact && len(lines) == 0 {
		status = msg.SaleEmpty
	}
	if lines == nil {
		lines = []msg.SaleLine{}
	}

	var extra []ledger.Item
	extra = append(extra, d.saleStock(s.ID, lines)) // what was sold leaves the stock in the sale's commit
	for _, sr := range res.Shelves {
		if slices.Contains(res.Unexplained, sr.Shelf) {
			detail := map[string]any{"shelf": sr.Shelf, "delta_g": round1(sr.DeltaG), "session": s.ID}
			if sr.ObjectG != 0 {
				// > 0 left on the shelf, < 0 taken from it; never charged.
				detail["object_g"] = round1(sr.ObjectG)
			}
			extra = append(extra, d.alarmItem(msg.AlarmUnknownObject, msg.SevWarning, detail))
		}
	}
	// The weights need more units off a shelf than the books say it held:
	// the count is off (a miscounted restock), and the sale was judged
	// without the bound.
	for _, m := range res.StockMismatch {
		extra = append(extra, d.alarmItem(msg.AlarmStockMismatch, msg.SevWarning, map[string]any{
			"shelf": m.Shelf, "sku": m.SKU, "stock": m.Stock, "removed": m.Removed, "session": s.ID}))
	}
	if len(unsellable) > 0 {
		d.log.Warn("items not sellable were not charged", logx.Limit("unsellable "+s.ID), "session", s.ID, "items", unsellable)
	}
	if err := payment.Limit(total, s.LimitFen); err != nil {
		d.log.Warn("sale over the authorised limit", logx.Limit("over limit "+s.ID), "session", s.ID, "total_fen", total, "limit_fen", s.LimitFen)
	}
	evidence := []msg.Evidence{}
	for _, sr := range res.Shelves {
		ev := msg.Evidence{Shelf: sr.Shelf, DeltaG: round1(sr.DeltaG), ResidualG: round1(sr.ResidualG)}
		for _, in := range inputs {
			if in.Shelf == sr.Shelf {
				ev.BeforeG, ev.AfterG = round1(in.BeforeG), round1(in.AfterG)
				ev.Still, ev.NeverRose, ev.Rose = in.Still, in.NeverRose, in.Rose
				if in.LiftsKnown {
					k := in.Lifts
					ev.Lifts = &k
				}
			}
		}
		evidence = append(evidence, ev)
	}
	posterior := roundPosterior(res.Posterior)
	alts := alternatives(res, book, now)
	sale, err := d.ledger.CommitSale(d.topics.Sale(), func(seq uint64) msg.Sale {
		return msg.Sale{
			SaleID: msg.NewID(now), Seq: seq, CabinetID: d.cfg.CabinetID, SessionID: s.ID, Buyer: s.Buyer,
			OpenedAt: msg.At(s.OpenedAt), ClosedAt: msg.At(s.ClosedAt), SettledAt: msg.At(now),
			Status: status, Lines: lines, TotalFen: total, Evidence: evidence,
			CatalogVersion: s.CatalogVersion, FW: FW,
			Posterior: &posterior, Alternatives: alts,
		}
	}, extra...)
	if err != nil {
		d.commitFailed(s, "commit sale", err)
		return
	}
	failpoint.Hit(failpoint.SaleCommitted)
	d.endSession(sale)
	if len(faulty) > 0 {
		d.log.Error("sale judged without faulty shelves", "session", s.ID, "shelves", faulty)
	}
}

// cancelSession ends an authorised session whose door never opened: it
// still produces its one sale, status cancelled, charging nothing.
func (d *Device) cancelSession(s *ledger.Session, why string, extra ...ledger.Item) {
	if s.Kind == ledger.KindRestock {
		d.cancelRestock(s, why, extra...) // no sale, no seq (restock.go)
		return
	}
	now := d.now()
	sale, err := d.ledger.CommitSale(d.topics.Sale(), func(seq uint64) msg.Sale {
		return msg.Sale{
			SaleID: msg.NewID(now), Seq: seq, CabinetID: d.cfg.CabinetID, SessionID: s.ID, Buyer: s.Buyer,
			// The door never opened: opened_at is when the session was
			// authorised, closed_at and settled_at when it was cancelled.
			OpenedAt: msg.At(s.Received), ClosedAt: msg.At(now), SettledAt: msg.At(now),
			Status: msg.SaleCancelled, Lines: []msg.SaleLine{}, Evidence: []msg.Evidence{},
			CatalogVersion: s.CatalogVersion, FW: FW,
		}
	}, extra...)
	if err != nil {
		d.commitFailed(s, "commit cancelled session", err)
		return
	}
	d.log.Info("session cancelled", "session", s.ID, "why", why)
	d.endSession(sale)
}

func (d *Device) endSession(sale msg.Sale) {
	d.sess = nil
	d.qr.Rotate(d.now())
	for _, ev := range sale.Evidence {
		d.baseline[ev.Shelf] = ev.AfterG
	}
	d.log.Info("sale committed", "sale_id", sale.SaleID, "seq", sale.Seq, "status", sale.Status, "total_fen", sale.TotalFen)
	d.noteSale(sale) // its receipt (display.go)
	if d.onSale != nil {
		d.onSale(sale)
	}
}

// lockFault cancels a session whose lock would not energise.
func (d *Device) lockFault(s *ledger.Session, err error) {
	d.log.Error("lock fault", "session", s.ID, "door", s.Door, "err", err)
	if rerr := d.lockFor(s.Door).Release(context.Background()); rerr != nil {
		d.log.Error("release after lock fault", "err", rerr)
	}
	r := msg.Reply{CmdID: s.CmdID, OK: false, Error: msg.ErrLockFault, Detail: err.Error(), At: msg.At(d.now())}
	d.cancelSession(s, "lock fault",
		d.alarmItem(msg.AlarmLockFault, msg.SevCritical, map[string]any{"door": s.Door, "session": s.ID, "err": err.Error()}),
		ledger.Item{Kind: outbox.KindReply, Topic: d.topics.Reply(), Body: r})
}

func (d *Device) shelf(n int) *hal.Shelf {
	for i := range d.hw.Shelves {
		if d.hw.Shelves[i].Number == n {
			return &d.hw.Shelves[i]
		}
	}
	return nil
}

func sq(v float64) float64 { return v * v }

func (d *Device) alarmItem(kind, sev string, detail map[string]any) ledger.Item {
	if detail == nil {
		detail = map[string]any{}
	}
	return ledger.Item{Kind: outbox.KindAlarm, Topic: d.topics.Alarm(), Body: msg.Alarm{
		AlarmID: msg.NewID(d.now()), Kind: kind, Severity: sev, At: msg.At(d.now()), Detail: detail}}
}

// alarm queues an alarm on its own. When the ledger cannot take it (a
// full or read-only disk), it goes straight to the link, once, undurably:
// the platform should still hear that the cabinet is in trouble.
func (d *Device) alarm(kind, sev string, detail map[string]any) {
	d.logAlarm(kind, sev, detail)
	it := d.alarmItem(kind, sev, detail)
	if err := d.ledger.Enqueue(nil, it); err != nil {
		d.log.Error("queue alarm; publishing it directly", logx.Limit("queue alarm "+kind), "kind", kind, "err", err)
		d.publishDirect(it)
	}
}

// logAlarm logs an alarm raised at the level its severity says.
func (d *Device) logAlarm(kind, sev string, detail map[string]any) {
	d.log.Log(context.Background(), alarmLevel(sev), "alarm", "kind", kind, "severity", sev, "detail", detail)
}

// alarmLevel maps an alarm's severity to a log level: critical → ERROR,
// warning → WARN, info → INFO (an unknown one → WARN).
func alarmLevel(sev string) slog.Level {
	switch sev {
	case msg.SevCritical:
		return slog.LevelError
	case msg.SevInfo:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// storageWatch is what the device loop knows of its storage's health (Run
// goroutine only).
type storageWatch struct {
	fault        *ledger.Fault // the ledger's predecessor was lost or corrupt
	probedAt     time.Time     // last write probe while writes fail
	alarmed      bool          // storage_fault raised for the present write failure
	failedCommit string        // the session whose end failed to commit and is retried
}

// commitFailed handles a session's end (its sale, or its restock) that did
// not commit; the device loop retries it every tick while the session
// stands. It logs at most a line a minute and raises storage_fault once
// for the standing failure, not once a tick: checkStorage clears it when
// the storage takes writes again and the session's end has gone through.
// (finish logs what it judged, such as goods not charged, at every retry
// too: those lines carry keys of their session, a line a minute each.)
func (d *Device) commitFailed(s *ledger.Session, what string, err error) {
	d.log.Error(what+"; will retry", logx.Limit("commit"), "session", s.ID, "err", err)
	d.store.failedCommit = s.ID
	if d.store.alarmed {
		return // raised already: here, or by checkStorage for the same failure
	}
	d.store.alarmed = true
	d.alarm(msg.AlarmStorageFault, msg.SevCritical, map[string]any{"err": err.Error(), "session": s.ID})
}

// publishDirect hands a message to the link without the outbox, never
// blocking the device loop: if the direct queue is full it is dropped.
func (d *Device) publishDirect(it ledger.Item) {
	body, err := d.signer.Seal(it.Body)
	if err != nil {
		d.log.Error("seal", "kind", it.Kind, "err", err)
		return
	}
	select {
	case d.direct <- directMsg{topic: it.Topic, body: body}:
	default:
		d.log.Warn("direct publish queue full; message dropped", logx.Limit("direct queue full"), "kind", it.Kind)
	}
}

type directMsg struct {
	topic string
	body  []byte
}

// checkStorage looks at the ledger's headroom every storageProbe (and
// tries a write while writes fail), so the cabinet stops taking shoppers
// before the disk is full and returns to service by itself once there is
// room again.
func (d *Device) checkStorage(now time.Time) {
	if now.Sub(d.store.probedAt) < storageProbe {
		return
	}
	d.store.probedAt = now
	err := d.ledger.Check(now)
	if d.store.failedCommit != "" && (d.sess == nil || d.sess.ID != d.store.failedCommit) {
		d.store.failedCommit = "" // that session's end went through since
	}
	switch {
	case err == nil && d.store.alarmed && d.store.failedCommit == "":
		d.store.alarmed = false
		d.log.Info("storage accepts writes again")
		d.alarmCleared(msg.AlarmStorageFault, map[string]any{})
	case err != nil && !d.store.alarmed:
		d.store.alarmed = true
		d.alarm(msg.AlarmStorageFault, msg.SevCritical, map[string]any{"err": err.Error()})
	}
}

const storageProbe = 10 * time.Second

// checkScales raises scale_fault once per failure and clears it.
func (d *Device) checkScales() {
	for _, sh := range d.hw.Shelves {
		err := d.readErr[sh.Number]
		switch {
		case err != nil && !d.faulted[sh.Number]:
			d.faulted[sh.Number] = true
			d.alarm(msg.AlarmScaleFault, msg.SevCritical, map[string]any{"shelf": sh.Number, "err": err.Error()})
		case err == nil && d.faulted[sh.Number]:
			d.faulted[sh.Number] = false
			d.alarmCleared(msg.AlarmScaleFault, map[string]any{"shelf": sh.Number})
		}
	}
}

func (d *Device) alarmCleared(kind string, detail map[string]any) {
	it := d.alarmItem(kind, msg.SevInfo, detail)
	a := it.Body.(msg.Alarm)
	a.Cleared = true
	it.Body = a
	if err := d.ledger.Enqueue(nil, it); err != nil {
		d.log.Error("queue alarm", logx.Limit("queue alarm "+kind), "kind", kind, "err", err)
		return
	}
	d.log.Info("alarm cleared", "kind", kind, "detail", detail)
}

// checkDoors raises door_forced when a door opens without an unlock.
func (d *Device) checkDoors() {
	for _, door := range d.hw.Doors {
		n := door.Number
		if d.doorClosed[n] {
			d.forced[n] = false
			continue
		}
		if d.sess != nil && d.sess.Door == n && d.sess.State != fsm.Authorised {
			continue // an authorised opening
		}
		if !d.forced[n] {
			d.forced[n] = true
			d.alarm(msg.AlarmDoorForced, msg.SevCritical, map[string]any{"door": n})
		}
	}
}

// checkIdleWeights raises weight_changed_while_locked when a shelf's steady
// weight moves while no session is open and every door is shut.
func (d *Device) checkIdleWeights() {
	if d.sess != nil {
		return
	}
	for _, door := range d.hw.Doors {
		if !d.doorClosed[door.Number] {
			return
		}
	}
	for _, sh := range d.hw.Shelves {
		r, ok := d.readings[sh.Number]
		if !ok || !r.Settled || d.readErr[sh.Number] != nil {
			continue
		}
		base, ok := d.baseline[sh.Number]
		if !ok {
			d.baseline[sh.Number] = r.Grams
			continue
		}
		if delta := r.Grams - base; math.Abs(delta) > d.cfg.WeightAlarmG {
			d.baseline[sh.Number] = r.Grams
			d.alarm(msg.AlarmWeightWhileLocked, msg.SevWarning, map[string]any{
				"shelf": sh.Number, "delta_g": round1(delta), "grams": round1(r.Grams)})
		}
	}
}

// refreshDisplay shows the QR while idle and the session's progress, and
// the indicator's signal with it (display.go, indicator.go).
func (d *Device) refreshDisplay(ctx context.Context, now time.Time) {
	v := d.view(now)
	d.refreshIndicator(ctx, v)
	scr := screenFor(v)
	if scr == d.shown {
		return
	}
	if err := d.hw.Display.Show(ctx, scr); err != nil {
		d.badLog.Warn("display", "display", "err", err)
		return
	}
	d.shown = scr
}

// shortReason is the head of an out-of-service reason for the display:
// the part before any colon, upper case, at most 32 characters (the
// technician reads the rest in the log and the platform in the state).
func shortReason(why string) string {
	if i := strings.IndexByte(why, ':'); i > 0 {
		why = why[:i]
	}
	why = strings.ToUpper(strings.TrimSpace(why))
	if r := []rune(why); len(r) > 32 {
		why = string(r[:32])
	}
	return why
}

// scalesSteady reports whether every shelf has a recent settled reading,
// which an unlock needs for its "before" weights.
func (d *Device) scalesSteady(now time.Time) bool {
	_, err := d.beforeWeights(now)
	return err == nil
}

// minAfterSamples is the fewest samples an unsettled reading needs to
// serve as an "after" weight when settling times out.
const minAfterSamples = 4

// goodsSnapshot records what stands on each shelf now, for a new session.
func (d *Device) goodsSnapshot() []ledger.ShelfGoods {
	plan, _ := d.catalog.Planogram()
	var out []ledger.ShelfGoods
	for _, sh := range plan.Shelves {
		g := ledger.ShelfGoods{Shelf: sh.Shelf, Products: []msg.Product{}, Lanes: maps.Clone(sh.Lanes)}
		for _, code := range sh.SKUs {
			if p, ok := d.catalog.Product(code); ok {
				g.Products = append(g.Products, p)
			}
		}
		out = append(out, g)
	}
	return out
}

// inferOptions are the model's parameters from the config: the decision
// rule and the lightest weight that counts as an object.
func (d *Device) inferOptions() *infer.Options {
	return &infer.Options{
		ObjectMinG:   d.cfg.ForeignMinG,
		Confidence:   d.cfg.ExactConfidence,
		CheaperBound: d.cfg.CheaperBound,
		RevenueFirst: d.cfg.ChargeRule == config.ChargeRevenueFirst,
	}
}

// alternatives prices the other baskets the weights allow, for review. A
// line that may not be sold is left out, as it is from the charge.
func alternatives(res infer.Result, book payment.PriceBook, now time.Time) []msg.SaleAlternative {
	var out []msg.SaleAlternative
	for _, a := range res.Alternatives {
		alt := msg.SaleAlternative{Lines: []msg.AltLine{}, Posterior: roundPosterior(a.Posterior), Moved: a.Moved, Object: a.Object}
		for _, l := range a.Lines {
			p, ok := book.Product(l.SKU)
			if sellable, _ := payment.Sellable(p, now); !ok || !sellable {
				continue
			}
			alt.Lines = append(alt.Lines, msg.AltLine{Shelf: l.Shelf, SKU: l.SKU, Qty: l.Qty})
			alt.TotalFen += int64(l.Qty) * p.PriceFen
		}
		out = append(out, alt)
	}
	return out
}

// roundPosterior keeps six significant digits: enough to review by, and
// stable in JSON.
func roundPosterior(p float64) float64 {
	if !(p > 0) {
		return 0
	}
	if p >= 1 {
		return 1
	}
	e := math.Pow(10, 5-math.Floor(math.Log10(p)))
	return math.Round(p*e) / e
}

// sessionBook prices from the session's snapshot; a product the live
// catalog has since dropped or revoked reads as revoked.
type sessionBook struct {
	snap map[string]msg.Product
	live interface {
		Product(string) (msg.Product, bool)
	}
}

func (d *Device) sessionBook(s *ledger.Session) sessionBook {
	b := sessionBook{snap: map[string]msg.Product{}, live: d.catalog}
	for _, g := range s.Goods {
		for _, p := range g.Products {
			b.snap[p.SKU] = p
		}
	}
	return b
}

// Product implements payment.PriceBook.
func (b sessionBook) Product(sku string) (msg.Product, bool) {
	p, ok := b.snap[sku]
	if !ok {
		return msg.Product{}, false
	}
	if lp, ok := b.live.Product(sku); !ok || lp.Status != msg.StatusActive {
		p.Status = msg.StatusRevoked
	}
	return p, true
}
