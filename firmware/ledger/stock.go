package ledger

import (
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Stock levels: units per (shelf, SKU), kept in the meta bucket as one small
// document (at most catalog.MaxShelves × MaxSKUsShelf entries). A level is
// either known or unknown; it becomes known only when a restock counts it,
// and every change commits in the transaction of the event that caused it
// (the restock's end, the sale), through a stock Item.

var (
	kStock   = []byte("stock")
	kRevoked = []byte("revoked_alarms")
)

// Internal item kinds: routed by appendItem to the ledger's own state, never
// to the outbox. The outbox's kinds are plain words; these cannot collide.
const (
	kindStock   = "ledger/stock"
	kindRevoked = "ledger/revoked"
)

// Stock is the known units per shelf and SKU. A (shelf, SKU) absent from it is
// unknown: never counted, or no longer to be trusted.
type Stock map[int]map[string]int

// Get returns the level of sku on shelf and whether it is known.
func (s Stock) Get(shelf int, sku string) (qty int, known bool) {
	qty, known = s[shelf][sku]
	return qty, known
}

// Stock operations.
const (
	StockSet    = "set"    // the level is Qty (known; a negative Qty is 0)
	StockAdd    = "add"    // a known level moves by Qty, never below 0; an unknown one stays unknown
	StockForget = "forget" // the level becomes unknown
)

// StockOp changes one (shelf, SKU) level.
type StockOp struct {
	Op    string `json:"op"`
	Shelf int    `json:"shelf"`
	SKU   string `json:"sku"`
	Qty   int    `json:"qty,omitempty"`
}

// ErrBadStockOp means a stock item held an operation the ledger does not know
// or an empty SKU; the transaction it was in fails whole.
var ErrBadStockOp = errors.New("ledger: bad stock operation")

// StockItem is an Item that applies ops, in order, to the stock levels in the
// transaction it is committed with (CommitSale's extra items, SaveSession's,
// EndSession's or Enqueue's): a sale and its stock decrement, or a restock's
// end and its counts, are one commit. It queues nothing.
func StockItem(ops ...StockOp) Item {
	return Item{Kind: kindStock, Body: slices.Clone(ops)}
}

// RevokedAlarmsItem is an Item that records skus as the products whose
// revoked_product_in_stock alarm is raised and not cleared, replacing the
// set held; commit it with the alarms that raise and clear them.
func RevokedAlarmsItem(skus []string) Item {
	s := slices.Clone(skus)
	slices.Sort(s)
	return Item{Kind: kindRevoked, Body: slices.Compact(s)}
}

// applyLocal applies an internal item inside tx; false when it is an outbox
// item.
func applyLocal(tx *bolt.Tx, it Item) (bool, error) {
	switch it.Kind {
	case kindStock:
		ops, ok := it.Body.([]StockOp)
		if !ok {
			return true, fmt.Errorf("%w: body %T", ErrBadStockOp, it.Body)
		}
		return true, applyStock(tx, ops)
	case kindRevoked:
		skus, ok := it.Body.([]string)
		if !ok {
			return true, fmt.Errorf("ledger: revoked alarms: body %T", it.Body)
		}
		return true, putJSON(tx.Bucket(bMeta), kRevoked, skus)
	}
	return false, nil
}

func getStock(tx *bolt.Tx) (Stock, error) {
	s := Stock{}
	if _, err := getJSON(tx.Bucket(bMeta), kStock, &s); err != nil {
		return nil, err
	}
	return s, nil
}

func applyStock(tx *bolt.Tx, ops []StockOp) error {
	if len(ops) == 0 {
		return nil
	}
	s, err := getStock(tx)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.SKU == "" {
			return fmt.Errorf("%w: empty sku on shelf %d", ErrBadStockOp, op.Shelf)
		}
		m := s[op.Shelf]
		switch op.Op {
		case StockSet:
			if m == nil {
				m = map[string]int{}
				s[op.Shelf] = m
			}
			m[op.SKU] = max(op.Qty, 0)
		case StockAdd:
			if q, known := m[op.SKU]; known {
				// Never negative: the caller logs a level it would take
				// below zero (it read the level before committing).
				m[op.SKU] = max(q+op.Qty, 0)
			}
		case StockForget:
			delete(m, op.SKU)
			if len(m) == 0 {
				delete(s, op.Shelf)
			}
		default:
			return fmt.Errorf("%w: %q", ErrBadStockOp, op.Op)
		}
	}
	return putJSON(tx.Bucket(bMeta), kStock, s)
}

// Stock returns the stock levels.
func (l *Ledger) Stock() (Stock, error) {
	var s Stock
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		s, err = getStock(tx)
		return err
	})
	return s, err
}

// RevokedAlarms returns, sorted, the SKUs whose revoked_product_in_stock alarm
// is raised and not yet cleared.
func (l *Ledger) RevokedAlarms() ([]string, error) {
	var skus []string
	err := l.db.View(func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bMeta), kRevoked, &skus)
		return err
	})
	return skus, err
}
