package firmware

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Revoked products still on the shelves. docs/domain.md: a cabinet must never sell
// a revoked product, and one still holding it raises an alarm until a
// restocker removes it. Pricing already charges nothing for such a product;
// that is not enough, because a shopper could still take it (and the
// platform could not tell the shopper's basket from the recall). So while
// the planogram lists a product the catalog no longer allows on a shelf whose
// stock of it is above zero or unknown, shopping is refused and the alarm
// stands; restock sessions stay open to staff, and the restock that counts
// the product down to zero on every shelf ends it.
//
// "No longer allows" is payment.Sellable's judgement: revoked, delisted (the
// catalog store keeps a dropped product marked revoked), expired (valid_until
// passed) or unknown to the catalog altogether.

// revokeRecheck is the longest a judgement is kept without an event that
// calls for a new one, to catch what no event announces (a clock step, a
// level changed by a tool, a failed alarm commit to retry).
const revokeRecheck = time.Minute

// stockState is the Run goroutine's view of stock and revocation.
type stockState struct {
	rv revocation
	// view is the stock for Status, re-read at most once a second.
	view   ledger.Stock
	viewAt time.Time
}

// revocation is the last judgement of the unsellable products held.
type revocation struct {
	checked        bool
	catalogVersion int64
	planVersion    int64
	next           time.Time // judge again then: a valid_until passes, or revokeRecheck
	held           []heldProduct
	reason         string // why shoppers are refused; "" when nothing unsellable is held
}

// heldProduct is an unsellable product the cabinet may still hold.
type heldProduct struct {
	sku     string
	why     string // payment.Reason*, or "not in the catalog"
	shelves []int  // where the planogram lists it with stock > 0 or unknown
}

// revokedReason returns why unsellable goods on the shelves keep shoppers
// out ("" when none), as the last judgement found. It is a query: it
// changes nothing (refreshRevoked judges again when due).
func (d *Device) revokedReason() string { return d.stk.rv.reason }

// refreshRevoked judges again when the catalog or planogram changed or the
// last judgement's time is up. The tick calls it before anything asks
// whether the cabinet may serve; a judgement reads the ledger and raises or
// clears alarms, so it is made only when due.
func (d *Device) refreshRevoked() {
	rv := &d.stk.rv
	pv, _ := d.catalog.PlanogramVersion()
	if !rv.checked || rv.catalogVersion != d.catalog.Version() || pv != rv.planVersion || !d.now().Before(rv.next) {
		d.checkRevoked()
	}
}

// checkRevoked judges which unsellable products the cabinet holds, and
// raises revoked_product_in_stock for each that was not raised before and
// clears it for each no longer held. It runs when a catalog is accepted, at
// start-up, after a restock, and whenever revokedReason finds it due.
func (d *Device) checkRevoked() {
	now := d.now()
	plan, _ := d.catalog.Planogram()
	rv := revocation{checked: true, catalogVersion: d.catalog.Version(), planVersion: plan.Version, next: now.Add(revokeRecheck)}
	stock, err := d.ledger.Stock()
	if err != nil {
		// Unreadable levels count as unknown: refuse rather than sell.
		d.log.Error("read stock levels", "err", err)
		stock = ledger.Stock{}
	}
	bySKU := map[string]*heldProduct{}
	for _, sh := range plan.Shelves {
		for _, sku := range sh.SKUs {
			why := "not in the catalog"
			if p, ok := d.catalog.Product(sku); ok {
				ok, reason := payment.Sellable(p, now)
				if ok {
					// It may still expire: judge again when it does.
					if vu := p.ValidUntil.Time; vu.Before(rv.next) {
						rv.next = vu
					}
					continue
				}
				why = reason
			}
			if q, known := stock.Get(sh.Shelf, sku); known && q == 0 {
				continue
			}
			h := bySKU[sku]
			if h == nil {
				h = &heldProduct{sku: sku, why: why}
				bySKU[sku] = h
			}
			h.shelves = append(h.shelves, sh.Shelf)
		}
	}
	var parts []string
	for _, h := range bySKU {
		slices.Sort(h.shelves)
		rv.held = append(rv.held, *h)
	}
	slices.SortFunc(rv.held, func(a, b heldProduct) int { return strings.Compare(a.sku, b.sku) })
	for _, h := range rv.held {
		parts = append(parts, fmt.Sprintf("%s (%s) on shelf %s", h.sku, h.why, joinInts(h.shelves)))
	}
	if len(parts) > 0 {
		rv.reason = "revoked product in stock: " + strings.Join(parts, "; ")
	}
	d.stk.rv = rv
	d.reconcileRevokedAlarms(rv.held, rv.catalogVersion)
}

// reconcileRevokedAlarms raises and clears revoked_product_in_stock so that
// exactly the held products stand raised. The raised set is kept in the
// ledger and committed with the alarms, so a restart neither repeats an
// alarm nor forgets to clear one.
func (d *Device) reconcileRevokedAlarms(held []heldProduct, catalogVersion int64) {
	raised, err := d.ledger.RevokedAlarms()
	if err != nil {
		d.log.Error("read raised revocation alarms; judging again later", "err", err)
		return
	}
	var items []ledger.Item
	now := make([]string, 0, len(held))
	for _, h := range held {
		now = append(now, h.sku)
		if slices.Contains(raised, h.sku) {
			continue
		}
		detail := map[string]any{"sku": h.sku, "shelves": h.shelves, "catalog_version": catalogVersion, "reason": h.why}
		d.logAlarm(msg.AlarmRevokedInStock, msg.SevCritical, detail)
		items = append(items, d.alarmItem(msg.AlarmRevokedInStock, msg.SevCritical, detail))
	}
	for _, sku := range raised {
		if slices.Contains(now, sku) {
			continue
		}
		d.log.Info("revoked product no longer held", "sku", sku)
		it := d.alarmItem(msg.AlarmRevokedInStock, msg.SevInfo, map[string]any{"sku": sku, "catalog_version": catalogVersion})
		a := it.Body.(msg.Alarm)
		a.Cleared = true
		it.Body = a
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}
	if err := d.ledger.Enqueue(nil, append(items, ledger.RevokedAlarmsItem(now))...); err != nil {
		d.log.Error("queue revocation alarms; judging again later", "err", err)
	}
}

// stockStatus returns the stock levels for Status, read at most once a
// second (a sale's decrement shows up within that).
func (d *Device) stockStatus(now time.Time) ledger.Stock {
	if d.stk.view == nil || now.Sub(d.stk.viewAt) >= time.Second || now.Before(d.stk.viewAt) {
		s, err := d.ledger.Stock()
		if err != nil {
			d.log.Debug("read stock levels", "err", err)
		} else {
			d.stk.view = s // fresh maps every read: Status copies share them safely
		}
		d.stk.viewAt = now
	}
	return d.stk.view
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
