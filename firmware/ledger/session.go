package ledger

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Session kinds.
const (
	KindShopping = "shopping" // ends with its sale
	KindRestock  = "restock"  // stock movements: ends with EndSession, never a sale
)

// ShelfWeight is one shelf's settled reading kept as evidence.
type ShelfWeight struct {
	Shelf   int       `json:"shelf"`
	Grams   float64   `json:"grams"`
	NoiseG  float64   `json:"noise_g"`
	Samples int       `json:"samples"`
	At      time.Time `json:"at"`
	// RightG is the right load cell's settled grams on a shelf carried by
	// two cells (nil on one cell, or when the right cell was not steady:
	// the shelf is then judged on its total alone).
	RightG *float64 `json:"right_g,omitempty"`
}

// Session is the persisted record of a session in progress.
type Session struct {
	ID       string    `json:"id"`
	CmdID    string    `json:"cmd_id"`
	Kind     string    `json:"kind"` // KindShopping or KindRestock
	Buyer    msg.Buyer `json:"buyer"`
	StaffID  string    `json:"staff_id,omitempty"` // a restock's staff member
	LimitFen int64     `json:"limit_fen"`
	Door     int       `json:"door"`
	State    fsm.State `json:"state"`    // see firmware/fsm; stored as its string
	Received time.Time `json:"received"` // when the unlock reached the cabinet
	Deadline time.Time `json:"deadline"` // the door must open before this
	OpenedAt time.Time `json:"opened_at,omitzero"`
	ClosedAt time.Time `json:"closed_at,omitzero"`
	// Before holds the shelves' settled weights committed before the lock
	// was energised: the evidence the sale is judged against.
	Before []ShelfWeight `json:"before"`
	// Goods is what stood on each shelf when the session opened: the
	// planogram's SKUs with their catalog entries (weights, tolerances,
	// prices, traceability). The sale is judged and priced against this
	// snapshot, so a catalog or planogram arriving mid-session cannot
	// change what the shopper is charged; the live catalog is consulted
	// only to refuse what has been revoked meanwhile.
	Goods          []ShelfGoods `json:"goods"`
	CatalogVersion int64        `json:"catalog_version"`
	Alarmed        bool         `json:"alarmed,omitempty"` // door_open_too_long already raised
}

// ShelfGoods is one shelf's planogram entry with its products.
type ShelfGoods struct {
	Shelf    int           `json:"shelf"`
	Products []msg.Product `json:"products"`
	// Lanes are the planogram's lane positions of the shelf's SKUs (0 at
	// the left load cell, 1 at the right), for a two-cell shelf.
	Lanes map[string]float64 `json:"lanes,omitempty"`
}

// EndSession ends the session in progress without a sale, as a restock
// session ends: the session is removed and items (its restock message,
// alarms, a StockItem with its counts) are committed in the same
// transaction, so a power cut leaves either the session to finish again or
// its whole outcome, never half of it. No sale seq is consumed.
func (l *Ledger) EndSession(items ...Item) error {
	err := l.update(func(tx *bolt.Tx) error {
		if err := accept(tx, nil, items); err != nil {
			return err
		}
		return tx.Bucket(bSession).Delete(kCurrent)
	})
	if err != nil {
		return fmt.Errorf("ledger: end session: %w", err)
	}
	l.Outbox.Notify()
	return nil
}
