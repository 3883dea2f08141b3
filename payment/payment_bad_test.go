package payment

// Malformed commands and amounts: each refused with a reply code and a
// detail naming the problem (never the junk itself at length), and a
// refused unlock leaves the QR nonce unspent.

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

func TestMalformedCommandsRefused(t *testing.T) {
	a := Authorizer{CabinetID: cab}
	long := strings.Repeat("x", 100_000)
	for _, tc := range []struct {
		name   string
		edit   func(c *msg.Command)
		code   string
		detail string // in the refusal's detail
	}{
		{"id with NUL", func(c *msg.Command) { c.ID = "cmd\x001" }, msg.ErrBadRequest, "id: at most 128 bytes"},
		{"id with a line break", func(c *msg.Command) { c.ID = "cmd-1\ncmd-2" }, msg.ErrBadRequest, "id: at most"},
		{"id with a bidi override", func(c *msg.Command) { c.ID = "cmd-\u202e1" }, msg.ErrBadRequest, "id: at most"},
		{"id of 129 bytes", func(c *msg.Command) { c.ID = strings.Repeat("c", msg.MaxIDBytes+1) }, msg.ErrBadRequest, "id: at most"},
		{"id of 100 kB", func(c *msg.Command) { c.ID = long }, msg.ErrBadRequest, "id: at most"},
		{"id of invalid UTF-8", func(c *msg.Command) { c.ID = "cmd-\xff" }, msg.ErrBadRequest, "id: at most"},
		{"type of 100 kB", func(c *msg.Command) { c.Type = long }, msg.ErrBadRequest, "unknown type"},
		{"type in upper case", func(c *msg.Command) { c.Type = "UNLOCK" }, msg.ErrBadRequest, `unknown type "UNLOCK"`},
		{"cabinet of 100 kB", func(c *msg.Command) { c.CabinetID = long }, msg.ErrWrongCabinet, "is not"},
		{"cabinet in lower case", func(c *msg.Command) { c.CabinetID = strings.ToLower(cab) }, msg.ErrWrongCabinet, "is not"},
		{"expired a second ago", func(c *msg.Command) {
			c.IssuedAt, c.ExpiresAt = msg.At(fuzzNow.Add(-time.Minute)), msg.At(fuzzNow.Add(-time.Second))
		}, msg.ErrExpired, "expired"},
		{"expires now", func(c *msg.Command) { c.ExpiresAt = msg.At(fuzzNow) }, msg.ErrExpired, "expired"},
		{"issued a minute ahead", func(c *msg.Command) {
			c.IssuedAt, c.ExpiresAt = msg.At(fuzzNow.Add(time.Minute)), msg.At(fuzzNow.Add(2*time.Minute))
		}, msg.ErrBadRequest, "in the future"},
		{"issued in year 9999", func(c *msg.Command) {
			c.IssuedAt = msg.At(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
			c.ExpiresAt = msg.At(c.IssuedAt.Add(time.Minute))
		}, msg.ErrBadRequest, "in the future"},
		{"lives a day", func(c *msg.Command) { c.ExpiresAt = msg.At(c.IssuedAt.Add(24 * time.Hour)) }, msg.ErrBadRequest, "lifetime"},
		{"expires before issued", func(c *msg.Command) { c.ExpiresAt = msg.At(c.IssuedAt.Add(-time.Hour)) }, msg.ErrBadRequest, "not after issued_at"},
		{"session with a line break", func(c *msg.Command) { c.SessionID = "S-1\r\nS-2" }, msg.ErrBadRequest, "session_id: at most"},
		{"session of 100 kB", func(c *msg.Command) { c.SessionID = long }, msg.ErrBadRequest, "session_id: at most"},
		{"buyer ref with a tab", func(c *msg.Command) { c.Buyer.Ref = "wx\t1" }, msg.ErrBadRequest, "buyer ref: at most"},
		{"buyer ref of 129 bytes", func(c *msg.Command) { c.Buyer.Ref = strings.Repeat("r", msg.MaxIDBytes+1) }, msg.ErrBadRequest, "buyer ref"},
		{"buyer org of 100 kB", func(c *msg.Command) { c.Buyer.Org = long }, msg.ErrBadRequest, "buyer org: at most 256 bytes"},
		{"buyer org with an escape", func(c *msg.Command) { c.Buyer.Org = "\x1b[2J总工会" }, msg.ErrBadRequest, "buyer org"},
		{"buyer kind of 100 kB", func(c *msg.Command) { c.Buyer.Kind = long }, msg.ErrBadRequest, "buyer kind"},
		{"empty buyer kind", func(c *msg.Command) { c.Buyer.Kind = "" }, msg.ErrBadRequest, `buyer kind ""`},
		{"nonce of 100 kB", func(c *msg.Command) { c.QRNonce = long }, msg.ErrStaleQR, "is not shown now"},
		{"nonce with a line break", func(c *msg.Command) { c.QRNonce += "\n" }, msg.ErrStaleQR, "is not shown now"},
		{"negative limit", func(c *msg.Command) { c.LimitFen = math.MinInt64 }, msg.ErrBadRequest, "negative limit_fen"},
		{"negative door", func(c *msg.Command) { c.Door = math.MinInt }, msg.ErrBadRequest, "negative door"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newTestQR(t, &QROpts{Rand: &countReader{}})
			shown := q.Nonce(fuzzNow)
			c := unlockCmd("cmd-1", shown, fuzzNow)
			tc.edit(&c)
			r := a.CheckUnlock(c, fuzzNow, seenSet{}, q, readyState)
			if r == nil || r.Code != tc.code || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("refusal %+v, want %s saying %q", r, tc.code, tc.detail)
			}
			if len(r.Detail) > 256 {
				t.Fatalf("detail of %d bytes", len(r.Detail))
			}
			if err := q.Use(shown, fuzzNow); err != nil {
				t.Fatalf("refused unlock spent the nonce: %v", err)
			}
		})
	}
	// The unedited command passes, so each row fails for its reason.
	q := newTestQR(t, &QROpts{Rand: &countReader{}})
	if r := a.CheckUnlock(unlockCmd("cmd-1", q.Nonce(fuzzNow), fuzzNow), fuzzNow, seenSet{}, q, readyState); r != nil {
		t.Fatalf("good unlock refused: %+v", r)
	}
}

// A platform amount that overflows fen is refused, never wrapped: a huge
// price times a quantity, and a sum of lines.
func TestPriceOverflowRefused(t *testing.T) {
	b := book{
		"MAX":  product("MAX", math.MaxInt64),
		"HALF": product("HALF", math.MaxInt64/2+1),
		"ONE":  product("ONE", 1),
	}
	for _, tc := range []struct {
		name  string
		items []Item
	}{
		{"max price × 2", []Item{{Shelf: 1, SKU: "MAX", Qty: 2}}},
		{"half price × 2", []Item{{Shelf: 1, SKU: "HALF", Qty: 2}}},
		{"price 1 × max int, then 1 more", []Item{{Shelf: 1, SKU: "ONE", Qty: math.MaxInt}, {Shelf: 1, SKU: "ONE", Qty: 1}}},
		{"two lines of half price", []Item{{Shelf: 1, SKU: "HALF", Qty: 1}, {Shelf: 2, SKU: "HALF", Qty: 1}}},
		{"max price and one fen", []Item{{Shelf: 1, SKU: "MAX", Qty: 1}, {Shelf: 2, SKU: "ONE", Qty: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, total, err := Price(tc.items, b, t0)
			if !errors.Is(err, ErrOverflow) || lines != nil || total != 0 {
				t.Fatalf("Price: %v, %d, %v; want ErrOverflow and nothing", lines, total, err)
			}
		})
	}
	if _, total, err := Price([]Item{{Shelf: 1, SKU: "MAX", Qty: 1}}, b, t0); err != nil || total != math.MaxInt64 {
		t.Fatalf("the largest amount that fits: %d, %v", total, err)
	}
}
