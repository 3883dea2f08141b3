// Package msg is the platform contract v1 (docs/contract.md) as Go types: the
// topics, the signed envelope and every message body. It is the only
// definition of the wire format; nothing else in the repository declares a
// JSON shape that crosses MQTT.
//
// Field names and types here are fixed for v1: add fields, never rename,
// drop or re-type them. The JSON Schemas in docs/ describe the same shapes
// and the end-to-end tests check every emitted message against them.
package msg

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultPrefix is the topic prefix P of docs/contract.md.
const DefaultPrefix = "bangfu/v1"

// TimeLayout is RFC 3339 in UTC with millisecond precision.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// MaxPayloadBytes caps any inbound MQTT payload; larger ones are refused
// before parsing.
const MaxPayloadBytes = 256 << 10

var cabinetIDRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// ValidCabinetID reports whether id is a legal cabinet id.
func ValidCabinetID(id string) bool { return cabinetIDRE.MatchString(id) }

// Caps on inbound strings, for ValidText. v1 fixes no lengths; these are
// far above anything the platform sends and far below what would strain a
// bbolt key (32 KiB), a log line or a reply.
const (
	MaxIDBytes   = 128 // identifiers: sku, cert_no, command and session ids, kid, buyer ref
	MaxTextBytes = 256 // names: product, supplier, origin, buyer org
)

// ValidText reports whether s is at most max bytes of UTF-8 made only of
// graphic characters (letters, marks, numbers, punctuation, symbols and
// spaces): no control, format (bidi overrides), line-separator or
// private-use characters, which would let an id print like another or
// break a log line. The empty string is valid; callers that need a value
// check for it.
func ValidText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}

// Time is a UTC timestamp that marshals as RFC 3339 with milliseconds.
type Time struct{ time.Time }

// At wraps t, converted to UTC and truncated to milliseconds.
func At(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON writes the timestamp; the zero time is written as null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// UnmarshalJSON accepts RFC 3339 (any precision) or null. The instant must
// fall in the years 1 to 9999 in UTC: an offset can push
// "9999-12-31T23:59:59-23:59" past them, and MarshalJSON's output of such
// a time would not parse again (a stored catalog holding one would not
// load).
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	if len(b) > 64 { // the longest RFC 3339 text is 37 bytes quoted
		return fmt.Errorf("msg: time of %d bytes", len(b))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("msg: time: %w", err)
	}
	// time.ParseError quotes the input twice over: say it once, cut short.
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("msg: time %.40q is not RFC 3339", s)
	}
	v = v.UTC()
	if y := v.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("msg: time %.40q: year %d in UTC, want 1 to 9999", s, y)
	}
	t.Time = v
	return nil
}

// Topics builds the topic names of one cabinet under a prefix.
type Topics struct {
	Prefix  string
	Cabinet string
}

func (t Topics) c(leaf string) string { return t.Prefix + "/c/" + t.Cabinet + "/" + leaf }

// State is the retained online/offline topic.
func (t Topics) State() string     { return t.c("state") }
func (t Topics) Heartbeat() string { return t.c("heartbeat") }
func (t Topics) Sale() string      { return t.c("sale") }
func (t Topics) Restock() string   { return t.c("restock") }
func (t Topics) Alarm() string     { return t.c("alarm") }
func (t Topics) Reply() string     { return t.c("reply") }
func (t Topics) Planogram() string { return t.c("planogram") }
func (t Topics) Cmd() string       { return t.c("cmd") }
func (t Topics) Ack() string       { return t.c("ack") }
func (t Topics) Catalog() string   { return t.Prefix + "/catalog" }

// ParseCabinetTopic splits "P/c/C/leaf" into cabinet id and leaf.
func ParseCabinetTopic(prefix, topic string) (cabinet, leaf string, ok bool) {
	rest, found := strings.CutPrefix(topic, prefix+"/c/")
	if !found {
		return "", "", false
	}
	cabinet, leaf, ok = strings.Cut(rest, "/")
	if !ok || !ValidCabinetID(cabinet) || leaf == "" || strings.Contains(leaf, "/") {
		return "", "", false
	}
	return cabinet, leaf, true
}

// ---- retained state (plain JSON, not signed) ----

// State is the body of P/c/C/state; the last will carries Online=false.
type State struct {
	Online bool   `json:"online"`
	FW     string `json:"fw,omitempty"`
	At     *Time  `json:"at,omitempty"`
}

// ---- platform → cabinet ----

// Product status values.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
)

// Product is one certified product of the catalog.
type Product struct {
	SKU         string  `json:"sku"`
	CertNo      string  `json:"cert_no"`
	Name        string  `json:"name"`
	SupplierID  string  `json:"supplier_id"`
	Supplier    string  `json:"supplier"`
	OriginCode  string  `json:"origin_code"`
	Origin      string  `json:"origin"`
	UnitWeightG float64 `json:"unit_weight_g"`
	WeightTolG  float64 `json:"weight_tol_g"`
	PriceFen    int64   `json:"price_fen"`
	ValidUntil  Time    `json:"valid_until"`
	Status      string  `json:"status"`
}

// Catalog is the certified catalog snapshot on P/catalog.
type Catalog struct {
	Version  int64     `json:"version"`
	IssuedAt Time      `json:"issued_at"`
	Region   string    `json:"region"`
	Products []Product `json:"products"`
	// ExpiresAt, when set, is when this catalog stops being acceptable (an
	// addition to v1 in docs/contract.md: older platforms omit it). It defeats an
	// attacker who withholds new catalogs and replays an old signed one.
	ExpiresAt *Time `json:"expires_at,omitempty"`
}

// PlanogramShelf names the SKUs on one shelf.
type PlanogramShelf struct {
	Shelf int      `json:"shelf"`
	Door  int      `json:"door"`
	SKUs  []string `json:"skus"`
	// Lanes, optional (an addition to v1), gives each SKU's lane position
	// along the shelf, 0 at the left load cell and 1 at the right, for a
	// shelf carried by two cells; inference then reads the shift of the
	// centre of mass. A single-cell shelf ignores it. ValidateLanes checks
	// it: keys among SKUs, values in [0, 1], at most MaxLanes.
	Lanes map[string]float64 `json:"lanes,omitempty"`
}

// Planogram is the body of P/c/C/planogram.
type Planogram struct {
	Version   int64            `json:"version"`
	CabinetID string           `json:"cabinet_id"`
	Shelves   []PlanogramShelf `json:"shelves"`
}

// Command types.
const (
	CmdUnlock      = "unlock"
	CmdRestockOpen = "restock_open"
	CmdCancel      = "cancel"
	CmdResend      = "resend"
	CmdConfig      = "config"
	CmdReboot      = "reboot"
	// CmdUpdate (an addition to v1): download, verify and install the
	// firmware bundle the command names, then switch to it (docs/updates.md).
	// Send it only to firmware UpdateSince or later.
	CmdUpdate = "update"
)

// UpdateSince is the first firmware version (the `fw` of state and
// heartbeat) that knows the update command and Command.Bundle.
const UpdateSince = "0.3.0"

// Bundle names a firmware build for the update command. Signature is a
// release key's Ed25519 signature (base64url, no padding) of
// ReleaseText(version, size, sha256, min_version); the URL is not signed:
// any mirror may serve the bytes, whose size and SHA-256 are.
type Bundle struct {
	Version    string `json:"version"`
	URL        string `json:"url"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	MinVersion string `json:"min_version,omitempty"`
	KeyID      string `json:"key_id"`
	Signature  string `json:"signature"`
}

// ReleaseText is the exact text a release key signs for a bundle.
func ReleaseText(version string, size int64, sha256Hex, minVersion string) string {
	return fmt.Sprintf("bangfu-release/v1\n%s\n%d\n%s\n%s\n", version, size, sha256Hex, minVersion)
}

// Buyer kinds.
const (
	BuyerPerson = "person"
	BuyerUnion  = "union"
	BuyerUnit   = "unit"
)

// Buyer is who pays, as the platform tells the cabinet.
type Buyer struct {
	Ref  string `json:"ref"`
	Kind string `json:"kind"`
	Org  string `json:"org"`
}

// Command is the body of P/c/C/cmd: the common header plus the fields of
// every command type (unused ones are omitted on the wire).
type Command struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	CabinetID string `json:"cabinet_id"`
	IssuedAt  Time   `json:"issued_at"`
	ExpiresAt Time   `json:"expires_at"`

	// unlock, restock_open, cancel
	SessionID string `json:"session_id,omitempty"`
	// unlock
	QRNonce  string `json:"qr_nonce,omitempty"`
	Buyer    *Buyer `json:"buyer,omitempty"`
	LimitFen int64  `json:"limit_fen,omitempty"`
	Door     int    `json:"door,omitempty"`
	// restock_open
	StaffID string `json:"staff_id,omitempty"`
	// resend
	FromSeq uint64 `json:"from_seq,omitempty"`
	ToSeq   uint64 `json:"to_seq,omitempty"`
	// config
	Settings map[string]json.RawMessage `json:"settings,omitempty"`
	// update (an addition to v1, see UpdateSince)
	Bundle *Bundle `json:"bundle,omitempty"`
}

// Ack is the platform's cumulative acknowledgement of sales.
type Ack struct {
	SalesUptoSeq uint64 `json:"sales_upto_seq"`
	At           Time   `json:"at"`
	// CabinetID binds the ack to its cabinet (an addition to v1, optional:
	// send it only to firmware AckCabinetIDSince or later, which decodes
	// it; older firmware refuses unknown fields). A cabinet refuses an ack
	// naming another cabinet, and once it has taken a bound ack it refuses
	// unbound ones: an ack replayed onto another cabinet's topic releases
	// nothing.
	CabinetID string `json:"cabinet_id,omitempty"`
}

// AckCabinetIDSince is the first firmware version (the `fw` of state and
// heartbeat) that knows Ack.CabinetID.
const AckCabinetIDSince = "0.2.0"

// ---- cabinet → platform ----

// Reply error codes.
const (
	ErrBadRequest     = "bad_request"
	ErrWrongCabinet   = "wrong_cabinet"
	ErrExpired        = "expired"
	ErrReplayed       = "replayed"
	ErrStaleQR        = "stale_qr"
	ErrBusy           = "busy"
	ErrOutOfService   = "out_of_service"
	ErrNoCatalog      = "no_catalog"
	ErrLockFault      = "lock_fault"
	ErrUnknownSession = "unknown_session"
)

// Reply answers one command. Warnings is an addition to v1 (allowed: new
// fields only); the planogram lint reports through it.
type Reply struct {
	CmdID    string   `json:"cmd_id"`
	OK       bool     `json:"ok"`
	Error    string   `json:"error"`
	Detail   string   `json:"detail"`
	At       Time     `json:"at"`
	Warnings []string `json:"warnings,omitempty"`
	// Lint, optional (an addition to v1), is the planogram lint's report in
	// the reply to an applied planogram (cmd_id planogram/<version>).
	Lint *LintReport `json:"lint,omitempty"`
}

// LintReport is what the planogram lint predicts for a planogram: the share
// of ordinary sessions a seeded simulation of its shelves charges exactly,
// and the confusions that cost the most.
type LintReport struct {
	// PredictedExactPct is the predicted share of sessions charged exactly
	// and rightly, in percent.
	PredictedExactPct float64 `json:"predicted_exact_pct"`
	// Sessions is how many simulated sessions the prediction rests on.
	Sessions int `json:"sessions"`
	// Pass is whether the planogram meets the cabinet's bar (see docs).
	Pass bool `json:"pass"`
	// Confusions are the worst confusions, most frequent first; never nil
	// (the schema wants an array).
	Confusions []LintConfusion `json:"confusions"`
}

// LintConfusion is one pair of baskets the cabinet cannot tell apart.
type LintConfusion struct {
	// Taken is what the shopper took; ConfusedWith what the evidence also
	// fits (text for people such as "1×CQ-0304@3": qty × SKU @ shelf).
	Taken        string `json:"taken"`
	ConfusedWith string `json:"confused_with"`
	// Pct is the share of simulated sessions where it happened, in percent.
	Pct float64 `json:"pct"`
}

// Sale status values.
const (
	SaleExact     = "exact"
	SaleAmbiguous = "ambiguous"
	SaleEmpty     = "empty"
	SaleCancelled = "cancelled"
)

// SaleLine is one product line of a sale.
type SaleLine struct {
	SKU          string `json:"sku"`
	CertNo       string `json:"cert_no"`
	Name         string `json:"name"`
	SupplierID   string `json:"supplier_id"`
	Supplier     string `json:"supplier"`
	OriginCode   string `json:"origin_code"`
	Shelf        int    `json:"shelf"`
	Qty          int    `json:"qty"`
	UnitPriceFen int64  `json:"unit_price_fen"`
	AmountFen    int64  `json:"amount_fen"`
}

// Evidence is one shelf's weights behind a sale or restock.
type Evidence struct {
	Shelf     int     `json:"shelf"`
	BeforeG   float64 `json:"before_g"`
	AfterG    float64 `json:"after_g"`
	DeltaG    float64 `json:"delta_g"`
	ResidualG float64 `json:"residual_g"`
	// Still (an addition to v1; sales only) reports that the shelf was
	// watched throughout the session and its weight never left the before
	// reading: nothing was lifted from it or set down on it.
	Still bool `json:"still,omitempty"`
	// NeverRose (an addition to v1; sales only) reports that the shelf was
	// watched throughout the session and its weight never rose above the
	// lowest it had been: nothing was set down on it. Still implies it.
	NeverRose bool `json:"never_rose,omitempty"`
	// Rose (an addition to v1; sales only) reports that the shelf was
	// watched throughout the session and its weight did rise above the
	// lowest it had been: something was set down on it, or a hand pressed
	// on it. It excludes NeverRose.
	Rose bool `json:"rose,omitempty"`
	// Lifts (an addition to v1; sales only) is how many separate lifts the
	// cabinet saw on the shelf: each time its weight held a flat level
	// below the lowest before it. Present only when the shelf was watched
	// throughout the session (then 0 is a count); absent means not known.
	Lifts *int `json:"lifts,omitempty"`
}

// Sale is the body of P/c/C/sale: one per authorised shopping session.
type Sale struct {
	SaleID         string     `json:"sale_id"`
	Seq            uint64     `json:"seq"`
	CabinetID      string     `json:"cabinet_id"`
	SessionID      string     `json:"session_id"`
	Buyer          Buyer      `json:"buyer"`
	OpenedAt       Time       `json:"opened_at"`
	ClosedAt       Time       `json:"closed_at"`
	SettledAt      Time       `json:"settled_at"`
	Status         string     `json:"status"`
	Lines          []SaleLine `json:"lines"`
	TotalFen       int64      `json:"total_fen"`
	Evidence       []Evidence `json:"evidence"`
	CatalogVersion int64      `json:"catalog_version"`
	FW             string     `json:"fw"`
	// Posterior and Alternatives are additions to v1, present on sales
	// judged by inference: the charged basket's posterior probability, and
	// the most probable other baskets the weights allow, so that a reviewer
	// can settle a flagged sale without re-running inference. At most
	// MaxAlternatives, most probable first; each one's Lines is never nil
	// (the schema wants an array, empty for the basket of nothing).
	Posterior    *float64          `json:"posterior,omitempty"`
	Alternatives []SaleAlternative `json:"alternatives,omitempty"`
}

// SaleAlternative is a basket the evidence leaves possible besides the
// charged one.
type SaleAlternative struct {
	Lines     []AltLine `json:"lines"`
	TotalFen  int64     `json:"total_fen"`
	Posterior float64   `json:"posterior"`
	// Moved and Object say that this basket needs a unit moved between
	// shelves or an unknown object on a shelf to fit the weights.
	Moved  bool `json:"moved,omitempty"`
	Object bool `json:"object,omitempty"`
}

// AltLine is one line of an alternative basket: Qty units of SKU from Shelf.
type AltLine struct {
	Shelf int    `json:"shelf"`
	SKU   string `json:"sku"`
	Qty   int    `json:"qty"`
}

// RestockChange is a counted stock movement.
type RestockChange struct {
	Shelf    int    `json:"shelf"`
	SKU      string `json:"sku"`
	DeltaQty int    `json:"delta_qty"`
}

// Restock is the body of P/c/C/restock.
type Restock struct {
	RestockID string          `json:"restock_id"`
	SessionID string          `json:"session_id"`
	StaffID   string          `json:"staff_id"`
	OpenedAt  Time            `json:"opened_at"`
	ClosedAt  Time            `json:"closed_at"`
	Changes   []RestockChange `json:"changes"`
	Evidence  []Evidence      `json:"evidence"`
}

// Alarm kinds.
const (
	AlarmDoorOpenTooLong   = "door_open_too_long"
	AlarmDoorForced        = "door_forced"
	AlarmWeightWhileLocked = "weight_changed_while_locked"
	AlarmUnknownObject     = "unknown_object"
	AlarmScaleFault        = "scale_fault"
	AlarmLockFault         = "lock_fault"
	AlarmTemperature       = "temperature"
	AlarmRevokedInStock    = "revoked_product_in_stock"
	AlarmPowerRestored     = "power_restored"
	AlarmStorageFault      = "storage_fault"
	AlarmBadMessage        = "bad_message"
	// AlarmStockMismatch (an addition to v1): a sale's weights need more
	// units off a shelf than the cabinet's stock count says it held; the
	// sale was judged without the stock bound and the count needs a look.
	AlarmStockMismatch = "stock_mismatch"
	// Firmware updates (additions to v1, firmware UpdateSince or later;
	// docs/updates.md): progress (info), a refused or failed download
	// (warning), the new version committed (info), and the previous
	// version back after the new one failed to prove itself (warning).
	AlarmUpdateProgress   = "update_progress"
	AlarmUpdateFailed     = "update_failed"
	AlarmUpdateInstalled  = "update_installed"
	AlarmUpdateRolledBack = "update_rolled_back"
)

// Severities.
const (
	SevInfo     = "info"
	SevWarning  = "warning"
	SevCritical = "critical"
)

// Alarm is the body of P/c/C/alarm.
type Alarm struct {
	AlarmID  string         `json:"alarm_id"`
	Kind     string         `json:"kind"`
	Severity string         `json:"severity"`
	At       Time           `json:"at"`
	Cleared  bool           `json:"cleared"`
	Detail   map[string]any `json:"detail"`
}

// HeartbeatShelf is one shelf's health in a heartbeat.
type HeartbeatShelf struct {
	Shelf int     `json:"shelf"`
	OK    bool    `json:"ok"`
	Grams float64 `json:"grams"`
}

// Counters are cumulative over the cabinet's life; they never go back.
type Counters struct {
	Sales     uint64 `json:"sales"`
	LastSeq   uint64 `json:"last_seq"`
	AmountFen int64  `json:"amount_fen"`
}

// Modes reported in the heartbeat.
const (
	ModeIdle         = "idle"
	ModeShopping     = "shopping"
	ModeRestock      = "restock"
	ModeOutOfService = "out_of_service"
)

// Heartbeat is the body of P/c/C/heartbeat.
type Heartbeat struct {
	At               Time             `json:"at"`
	UptimeS          int64            `json:"uptime_s"`
	FW               string           `json:"fw"`
	Mode             string           `json:"mode"`
	Door             string           `json:"door"`
	Shelves          []HeartbeatShelf `json:"shelves"`
	TempC            *float64         `json:"temp_c"`
	OutboxDepth      int              `json:"outbox_depth"`
	CatalogVersion   int64            `json:"catalog_version"`
	PlanogramVersion int64            `json:"planogram_version"`
	Counters         Counters         `json:"counters"`
}

// FWAtLeast reports whether firmware version fw (the `fw` of state and
// heartbeat, "MAJOR.MINOR.PATCH"; a "+build" or "-pre" suffix is ignored)
// is min or later. An unreadable version is not.
func FWAtLeast(fw, min string) bool {
	a, ok1 := fwParts(fw)
	b, ok2 := fwParts(min)
	if !ok1 || !ok2 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

func fwParts(v string) ([3]int, bool) {
	var out [3]int
	if i := strings.IndexAny(v, "+-"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || (len(p) > 1 && p[0] == '0') {
			return out, false
		}
		out[i] = n
	}
	return out, true
}
