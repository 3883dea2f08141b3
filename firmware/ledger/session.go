package ledger

import (
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// Session states, in the order a shopping session passes through them
// (DESIGN.md). A finished session is not stored: its end is its sale.
const (
	StateAuthorised = "authorised" // accepted, before weights recorded; lock not yet energised
	StateUnlocked   = "unlocked"   // lock energised, waiting for the door to open
	StateDoorOpen   = "door_open"  // the shopper is at the shelves
	StateDoorClosed = "door_closed"
	StateSettling   = "settling" // door closed, waiting for steady scales
)

// ShelfWeight is one shelf's settled reading kept as evidence.
type ShelfWeight struct {
	Shelf   int       `json:"shelf"`
	Grams   float64   `json:"grams"`
	NoiseG  float64   `json:"noise_g"`
	Samples int       `json:"samples"`
	At      time.Time `json:"at"`
}

// Session is the persisted record of a session in progress.
type Session struct {
	ID       string    `json:"id"`
	CmdID    string    `json:"cmd_id"`
	Kind     string    `json:"kind"` // "shopping"
	Buyer    msg.Buyer `json:"buyer"`
	LimitFen int64     `json:"limit_fen"`
	Door     int       `json:"door"`
	State    string    `json:"state"`
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
}
