package payment

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// Pricing errors.
var (
	// ErrNotSellable means a SKU is unknown to the catalog, revoked,
	// expired or without a price. Price returns it wrapped in a
	// *NotSellableError naming the SKU.
	ErrNotSellable = errors.New("payment: product not sellable")
	// ErrBadItem means an item has a quantity ≤ 0 or a shelf < 1.
	ErrBadItem = errors.New("payment: bad item")
	// ErrOverLimit means a sale's total exceeds the buyer's limit_fen.
	ErrOverLimit = errors.New("payment: total over limit")
)

// PriceBook is the firmware's catalog cache, looked up by SKU.
type PriceBook interface {
	Product(sku string) (msg.Product, bool)
}

// Item is a quantity of one SKU taken from one shelf, as inferred from the
// weight evidence.
type Item struct {
	Shelf int
	SKU   string
	Qty   int
}

// Reasons a product is not sellable, in NotSellableError.Reason.
const (
	ReasonUnknown = "unknown"
	ReasonRevoked = "revoked"
	ReasonExpired = "expired"
	ReasonNoPrice = "no price"
)

// NotSellableError names the SKU that Price refused and why. It wraps
// ErrNotSellable, so errors.Is(err, ErrNotSellable) holds and errors.As
// gives the caller the SKU and the reason.
type NotSellableError struct {
	SKU    string
	Shelf  int
	Reason string // one of the Reason* constants, or "status <s>"
}

// Error says which SKU on which shelf cannot be sold and why.
func (e *NotSellableError) Error() string {
	return fmt.Sprintf("%v: %q on shelf %d: %s", ErrNotSellable, e.SKU, e.Shelf, e.Reason)
}

// Unwrap returns ErrNotSellable.
func (e *NotSellableError) Unwrap() error { return ErrNotSellable }

// Sellable reports whether p may be sold at now, and if not, why: only an
// active product whose valid_until is after now and whose price is
// positive is sellable.
func Sellable(p msg.Product, now time.Time) (ok bool, reason string) {
	switch {
	case p.Status == msg.StatusRevoked:
		return false, ReasonRevoked
	case p.Status != msg.StatusActive:
		return false, fmt.Sprintf("status %q", p.Status)
	case !p.ValidUntil.After(now):
		return false, ReasonExpired
	case p.PriceFen <= 0:
		return false, ReasonNoPrice
	}
	return true, ""
}

type lineKey struct {
	shelf int
	sku   string
}

// Price turns items into sale lines priced from the catalog at now.
//
// Every line carries the traceability fields of the catalog entry (cert_no,
// name, supplier_id, supplier, origin_code) and its shelf; items of the same
// (shelf, sku) are merged into one line, and lines are sorted by shelf then
// SKU so equal baskets always give equal sales. total is the sum of the
// line amounts; every product and sum is overflow-checked.
//
// The first item that cannot be priced makes Price fail with no lines: an
// unknown, revoked, expired or unpriced SKU gives a *NotSellableError
// (wrapping ErrNotSellable), a quantity ≤ 0 or a shelf < 1 gives ErrBadItem,
// an overflow gives ErrOverflow. What to do then is the caller's decision.
// No items give an empty, non-nil slice so the sale encodes "lines":[].
func Price(items []Item, book PriceBook, now time.Time) (lines []msg.SaleLine, total int64, err error) {
	index := make(map[lineKey]int, len(items))
	lines = make([]msg.SaleLine, 0, len(items))
	for _, it := range items {
		if it.Qty <= 0 || it.Shelf < 1 {
			return nil, 0, fmt.Errorf("%w: %q on shelf %d: qty %d", ErrBadItem, it.SKU, it.Shelf, it.Qty)
		}
		k := lineKey{it.Shelf, it.SKU}
		if i, ok := index[k]; ok {
			if lines[i].Qty > math.MaxInt-it.Qty {
				return nil, 0, fmt.Errorf("%w: qty of %q on shelf %d", ErrOverflow, it.SKU, it.Shelf)
			}
			lines[i].Qty += it.Qty
			continue
		}
		p, ok := book.Product(it.SKU)
		if !ok {
			return nil, 0, &NotSellableError{SKU: it.SKU, Shelf: it.Shelf, Reason: ReasonUnknown}
		}
		if ok, why := Sellable(p, now); !ok {
			return nil, 0, &NotSellableError{SKU: it.SKU, Shelf: it.Shelf, Reason: why}
		}
		index[k] = len(lines)
		lines = append(lines, msg.SaleLine{
			SKU:          it.SKU,
			CertNo:       p.CertNo,
			Name:         p.Name,
			SupplierID:   p.SupplierID,
			Supplier:     p.Supplier,
			OriginCode:   p.OriginCode,
			Shelf:        it.Shelf,
			Qty:          it.Qty,
			UnitPriceFen: p.PriceFen,
		})
	}
	// Amounts are computed after merging so each line is one checked
	// multiplication of its final quantity.
	var sum Fen
	for i := range lines {
		l := &lines[i]
		amount, err := Fen(l.UnitPriceFen).Mul(l.Qty)
		if err != nil {
			return nil, 0, fmt.Errorf("payment: line %q on shelf %d: %w", l.SKU, l.Shelf, err)
		}
		l.AmountFen = int64(amount)
		if sum, err = sum.Add(amount); err != nil {
			return nil, 0, fmt.Errorf("payment: total: %w", err)
		}
	}
	slices.SortFunc(lines, func(a, b msg.SaleLine) int {
		return cmp.Or(cmp.Compare(a.Shelf, b.Shelf), cmp.Compare(a.SKU, b.SKU))
	})
	return lines, int64(sum), nil
}

// Limit checks a sale's total against the buyer's limit_fen. A limit ≤ 0
// means no limit. It only checks: the firmware still records the sale (a
// sale is never lost) and flags or reports it as it sees fit.
func Limit(total int64, limitFen int64) error {
	if limitFen > 0 && total > limitFen {
		return fmt.Errorf("%w: total %v exceeds limit %v", ErrOverLimit, Fen(total), Fen(limitFen))
	}
	return nil
}
