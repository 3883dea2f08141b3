package payment

import (
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// seenSet is a Replay over a set of ids.
type seenSet map[string]bool

func (s seenSet) Seen(id string) bool { return s[id] }

var readyState = CabinetState{HasCatalog: true}

func unlockCmd(id, nonce string, now time.Time) msg.Command {
	return msg.Command{
		ID: id, Type: msg.CmdUnlock, CabinetID: cab,
		IssuedAt: msg.At(now.Add(-time.Second)), ExpiresAt: msg.At(now.Add(30 * time.Second)),
		SessionID: "sess-" + id, QRNonce: nonce,
		Buyer:    &msg.Buyer{Ref: "u-123", Kind: msg.BuyerPerson},
		LimitFen: 50000,
	}
}

func TestCheckUnlock(t *testing.T) {
	now := t0.Add(10 * time.Second)
	a := Authorizer{CabinetID: cab}
	for _, tc := range []struct {
		name     string
		edit     func(c *msg.Command) // nil: unchanged
		st       CabinetState
		seen     seenSet
		noQR     bool   // pass a nil *QR
		wantCode string // "" means authorised
	}{
		// authorised
		{name: "ok", st: readyState},
		{name: "ok door omitted", edit: func(c *msg.Command) { c.Door = 0 }, st: readyState},
		{name: "ok door 2", edit: func(c *msg.Command) { c.Door = 2 }, st: readyState},
		{name: "ok no limit", edit: func(c *msg.Command) { c.LimitFen = 0 }, st: readyState},
		{name: "ok union buyer", edit: func(c *msg.Command) { c.Buyer = &msg.Buyer{Ref: "u", Kind: msg.BuyerUnion, Org: "总工会"} }, st: readyState},
		{name: "ok unit buyer", edit: func(c *msg.Command) { c.Buyer = &msg.Buyer{Ref: "u", Kind: msg.BuyerUnit} }, st: readyState},
		{name: "ok issued 5s ahead", edit: func(c *msg.Command) { c.IssuedAt = msg.At(now.Add(5 * time.Second)) }, st: readyState},
		{name: "ok ttl exactly max", edit: func(c *msg.Command) { c.ExpiresAt = msg.At(c.IssuedAt.Add(DefaultMaxTTL)) }, st: readyState},

		// bad_request
		{name: "missing id", edit: func(c *msg.Command) { c.ID = "" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "missing type", edit: func(c *msg.Command) { c.Type = "" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "unknown type", edit: func(c *msg.Command) { c.Type = "open_sesame" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "not an unlock", edit: func(c *msg.Command) { c.Type = msg.CmdCancel }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "missing cabinet_id", edit: func(c *msg.Command) { c.CabinetID = "" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "missing issued_at", edit: func(c *msg.Command) { c.IssuedAt = msg.Time{} }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "missing expires_at", edit: func(c *msg.Command) { c.ExpiresAt = msg.Time{} }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "expires before issued", edit: func(c *msg.Command) { c.ExpiresAt = msg.At(c.IssuedAt.Add(-time.Second)) }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "expires when issued", edit: func(c *msg.Command) { c.ExpiresAt = c.IssuedAt }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "lifetime over max ttl", edit: func(c *msg.Command) { c.ExpiresAt = msg.At(c.IssuedAt.Add(DefaultMaxTTL + time.Millisecond)) }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "issued too far ahead", edit: func(c *msg.Command) {
			c.IssuedAt = msg.At(now.Add(6 * time.Second))
			c.ExpiresAt = msg.At(now.Add(time.Minute))
		}, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "missing session_id", edit: func(c *msg.Command) { c.SessionID = "" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "missing qr_nonce", edit: func(c *msg.Command) { c.QRNonce = "" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "missing buyer", edit: func(c *msg.Command) { c.Buyer = nil }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "bad buyer kind", edit: func(c *msg.Command) { c.Buyer.Kind = "company" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "empty buyer kind", edit: func(c *msg.Command) { c.Buyer.Kind = "" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "empty buyer ref", edit: func(c *msg.Command) { c.Buyer.Ref = "" }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "negative limit", edit: func(c *msg.Command) { c.LimitFen = -1 }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "negative door", edit: func(c *msg.Command) { c.Door = -1 }, st: readyState, wantCode: msg.ErrBadRequest},

		// one row per other reply code
		{name: "wrong cabinet", edit: func(c *msg.Command) { c.CabinetID = "NM-150102-0008" }, st: readyState, wantCode: msg.ErrWrongCabinet},
		{name: "replayed", seen: seenSet{"cmd-1": true}, st: readyState, wantCode: msg.ErrReplayed},
		{name: "expired now", edit: func(c *msg.Command) { c.ExpiresAt = msg.At(now) }, st: readyState, wantCode: msg.ErrExpired},
		{name: "expired long ago", edit: func(c *msg.Command) {
			c.IssuedAt = msg.At(now.Add(-time.Hour))
			c.ExpiresAt = msg.At(now.Add(-time.Hour + time.Minute))
		}, st: readyState, wantCode: msg.ErrExpired},
		{name: "out of service", st: CabinetState{HasCatalog: true, OutOfService: true}, wantCode: msg.ErrOutOfService},
		{name: "no catalog", st: CabinetState{}, wantCode: msg.ErrNoCatalog},
		{name: "busy", st: CabinetState{HasCatalog: true, Busy: true}, wantCode: msg.ErrBusy},
		{name: "stale qr", edit: func(c *msg.Command) { c.QRNonce = "AAAAAAAAAAAAAAAA" }, st: readyState, wantCode: msg.ErrStaleQR},
		{name: "no qr", noQR: true, st: readyState, wantCode: msg.ErrStaleQR},

		// order between codes
		{name: "bad request before wrong cabinet", edit: func(c *msg.Command) { c.CabinetID = "X"; c.ExpiresAt = msg.Time{} }, st: readyState, wantCode: msg.ErrBadRequest},
		{name: "wrong cabinet before replayed", edit: func(c *msg.Command) { c.CabinetID = "X" }, seen: seenSet{"cmd-1": true}, st: readyState, wantCode: msg.ErrWrongCabinet},
		{name: "replayed before expired", edit: func(c *msg.Command) { c.ExpiresAt = msg.At(now) }, seen: seenSet{"cmd-1": true}, st: readyState, wantCode: msg.ErrReplayed},
		{name: "expired before unlock fields", edit: func(c *msg.Command) { c.ExpiresAt = msg.At(now); c.Buyer = nil }, st: readyState, wantCode: msg.ErrExpired},
		{name: "unlock fields before state", edit: func(c *msg.Command) { c.Buyer = nil }, st: CabinetState{OutOfService: true}, wantCode: msg.ErrBadRequest},
		{name: "out of service before no catalog", st: CabinetState{OutOfService: true, Busy: true}, wantCode: msg.ErrOutOfService},
		{name: "no catalog before busy", st: CabinetState{Busy: true}, wantCode: msg.ErrNoCatalog},
		{name: "busy before stale qr", edit: func(c *msg.Command) { c.QRNonce = "AAAAAAAAAAAAAAAA" }, st: CabinetState{HasCatalog: true, Busy: true}, wantCode: msg.ErrBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newTestQR(t, &QROpts{Rand: &countReader{}})
			nonce := q.Nonce(t0)
			cmd := unlockCmd("cmd-1", nonce, now)
			if tc.edit != nil {
				tc.edit(&cmd)
			}
			qr := q
			if tc.noQR {
				qr = nil
			}
			r := a.CheckUnlock(cmd, now, tc.seen, qr, tc.st)
			if tc.wantCode == "" {
				if r != nil {
					t.Fatalf("CheckUnlock refused: %v", r)
				}
				if again := a.CheckUnlock(unlockCmd("cmd-2", nonce, now), now, nil, q, readyState); again == nil || again.Code != msg.ErrStaleQR {
					t.Fatalf("second unlock with a used nonce = %v, want stale_qr", again)
				}
				return
			}
			if r == nil || r.Code != tc.wantCode {
				t.Fatalf("CheckUnlock = %v, want %s", r, tc.wantCode)
			}
			if r.Detail == "" || !strings.HasPrefix(r.Error(), "payment: refused "+tc.wantCode+": ") {
				t.Errorf("refusal %q lacks a detail or the payment: prefix", r.Error())
			}
			// A refused unlock changed nothing: the nonce on display still
			// opens the cabinet for the next, valid command.
			if next := a.CheckUnlock(unlockCmd("cmd-2", nonce, now), now, nil, q, readyState); next != nil {
				t.Fatalf("valid unlock after the refusal = %v; the nonce was consumed", next)
			}
		})
	}
}

func TestCheckCommandOtherTypes(t *testing.T) {
	now := t0
	a := Authorizer{CabinetID: cab, MaxSkew: time.Second, MaxTTL: time.Minute}
	base := msg.Command{ID: "c", CabinetID: cab, IssuedAt: msg.At(now), ExpiresAt: msg.At(now.Add(time.Minute))}
	for _, typ := range []string{msg.CmdUnlock, msg.CmdRestockOpen, msg.CmdCancel, msg.CmdResend, msg.CmdConfig, msg.CmdReboot} {
		t.Run(typ, func(t *testing.T) {
			c := base
			c.Type = typ
			if r := a.CheckCommand(c, now, seenSet{}); r != nil {
				t.Fatalf("CheckCommand(%s) = %v", typ, r)
			}
		})
	}
	t.Run("custom skew", func(t *testing.T) {
		c := base
		c.Type = msg.CmdReboot
		c.IssuedAt = msg.At(now.Add(2 * time.Second))
		c.ExpiresAt = msg.At(now.Add(time.Minute))
		if r := a.CheckCommand(c, now, nil); r == nil || r.Code != msg.ErrBadRequest {
			t.Fatalf("CheckCommand = %v, want bad_request", r)
		}
	})
	t.Run("custom ttl", func(t *testing.T) {
		c := base
		c.Type = msg.CmdReboot
		c.ExpiresAt = msg.At(now.Add(time.Minute + time.Millisecond))
		if r := a.CheckCommand(c, now, nil); r == nil || r.Code != msg.ErrBadRequest {
			t.Fatalf("CheckCommand = %v, want bad_request", r)
		}
	})
}

func TestUnlockDoor(t *testing.T) {
	for _, tc := range []struct{ door, want int }{{0, 1}, {1, 1}, {2, 2}} {
		if got := UnlockDoor(msg.Command{Door: tc.door}); got != tc.want {
			t.Errorf("UnlockDoor(door %d) = %d, want %d", tc.door, got, tc.want)
		}
	}
}
