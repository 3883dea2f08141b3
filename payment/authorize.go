package payment

import (
	"fmt"
	"strings"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// Authorizer defaults.
const (
	DefaultMaxSkew = 5 * time.Second
	DefaultMaxTTL  = 5 * time.Minute
)

// Replay is the firmware's persisted cache of command ids already acted
// on. payment only asks; the firmware records ids.
type Replay interface {
	Seen(cmdID string) bool
}

// Refusal is why a command is refused: Code is one of the msg.Err* reply
// codes and Detail is for the reply's detail field.
//
// The checks return *Refusal, not error, so that a nil result cannot turn
// into a non-nil error interface by accident; convert only after comparing
// with nil.
type Refusal struct {
	Code   string
	Detail string
}

// Error formats the refusal as "payment: refused <code>: <detail>".
func (r *Refusal) Error() string {
	return "payment: refused " + r.Code + ": " + r.Detail
}

// textRule is the refusal detail of an id msg.ValidText refuses; the id
// itself is not echoed.
var textRule = fmt.Sprintf("at most %d bytes, no control or format characters", msg.MaxIDBytes)

func refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// CabinetState is what the firmware knows about itself when a command
// arrives.
type CabinetState struct {
	Busy         bool // a session is authorised or a door is open
	OutOfService bool
	HasCatalog   bool // a verified catalog is loaded
}

// Authorizer checks verified platform commands for one cabinet. Envelope
// signatures are checked in telemetry before this; these checks assume the
// payload came from the platform. Zero fields take the defaults.
type Authorizer struct {
	CabinetID string
	// MaxSkew is how far in the future issued_at may be; default
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxTTL is the longest expires_at − issued_at accepted; default
	// DefaultMaxTTL. A longer-lived command is a bad_request: it would
	// have to stay in the replay cache that long.
	MaxTTL time.Duration
}

func (a Authorizer) maxSkew() time.Duration {
	if a.MaxSkew > 0 {
		return a.MaxSkew
	}
	return DefaultMaxSkew
}

func (a Authorizer) maxTTL() time.Duration {
	if a.MaxTTL > 0 {
		return a.MaxTTL
	}
	return DefaultMaxTTL
}

// MaxSkewOrDefault is the skew in force.
func (a Authorizer) MaxSkewOrDefault() time.Duration { return a.maxSkew() }

// MaxTTLOrDefault is the longest command lifetime in force.
func (a Authorizer) MaxTTLOrDefault() time.Duration { return a.maxTTL() }

var knownCommands = map[string]bool{
	msg.CmdUnlock: true, msg.CmdRestockOpen: true, msg.CmdCancel: true,
	msg.CmdResend: true, msg.CmdConfig: true, msg.CmdReboot: true, msg.CmdUpdate: true,
}

// CheckCommand runs the header checks every command must pass, and returns
// nil if it may be acted on. seen may be nil (no id seen), for tests.
//
// The order is bad_request, wrong_cabinet, replayed, expired:
//   - a malformed header (missing id, type, cabinet_id, issued_at or
//     expires_at; an id msg.ValidText refuses; unknown type; expires_at
//     not after issued_at; a lifetime over MaxTTL; issued_at more than
//     MaxSkew ahead of now) cannot be judged any further, so it is
//     reported as such first;
//   - a command for another cabinet says nothing about our replay cache
//     or our clock, and the platform needs to learn that it routed
//     wrongly, so wrong_cabinet comes before anything that reads them;
//   - a command already acted on is usually also expired by the time it is
//     redelivered; answering replayed tells the platform it was received
//     and executed (its first reply was lost), where expired would suggest
//     it never ran and invite a retry under a new id.
func (a Authorizer) CheckCommand(cmd msg.Command, now time.Time, seen Replay) *Refusal {
	switch {
	case cmd.ID == "":
		return refuse(msg.ErrBadRequest, "missing id")
	case !msg.ValidText(cmd.ID, msg.MaxIDBytes):
		// The id becomes a key of the firmware's replay cache (bbolt
		// refuses keys over 32 KiB) and is echoed in every reply.
		return refuse(msg.ErrBadRequest, "id: %s", textRule)
	case cmd.Type == "":
		return refuse(msg.ErrBadRequest, "missing type")
	case !knownCommands[cmd.Type]:
		return refuse(msg.ErrBadRequest, "unknown type %.32q", cmd.Type)
	case cmd.CabinetID == "":
		return refuse(msg.ErrBadRequest, "missing cabinet_id")
	case cmd.IssuedAt.IsZero():
		return refuse(msg.ErrBadRequest, "missing issued_at")
	case cmd.ExpiresAt.IsZero():
		return refuse(msg.ErrBadRequest, "missing expires_at")
	case !cmd.ExpiresAt.After(cmd.IssuedAt.Time):
		return refuse(msg.ErrBadRequest, "expires_at %s not after issued_at %s",
			cmd.ExpiresAt.Format(msg.TimeLayout), cmd.IssuedAt.Format(msg.TimeLayout))
	case cmd.ExpiresAt.Sub(cmd.IssuedAt.Time) > a.maxTTL():
		return refuse(msg.ErrBadRequest, "lifetime %v over %v", cmd.ExpiresAt.Sub(cmd.IssuedAt.Time), a.maxTTL())
	case cmd.IssuedAt.Sub(now) > a.maxSkew():
		return refuse(msg.ErrBadRequest, "issued_at %v in the future", cmd.IssuedAt.Sub(now))
	case cmd.CabinetID != a.CabinetID:
		return refuse(msg.ErrWrongCabinet, "cabinet_id %.64q is not %q", cmd.CabinetID, a.CabinetID)
	case seen != nil && seen.Seen(cmd.ID):
		return refuse(msg.ErrReplayed, "command %q already seen", cmd.ID)
	case !now.Before(cmd.ExpiresAt.Time):
		return refuse(msg.ErrExpired, "expired %v ago", now.Sub(cmd.ExpiresAt.Time))
	}
	return nil
}

// CheckUnlock runs CheckCommand and then the unlock checks, in this order:
// type unlock, session_id, qr_nonce, buyer (kind person, union or unit;
// ref non-empty; session_id, ref and org short text as msg.ValidText
// says), limit_fen ≥ 0 and door ≥ 0 → bad_request;
// st.OutOfService → out_of_service; !st.HasCatalog → no_catalog; st.Busy →
// busy; and last qr.Use(qr_nonce) → stale_qr (also when qr is nil).
//
// The nonce is consumed only when every other check has passed, so a
// refused unlock changes nothing. On nil the nonce is used and the QR has
// rotated: the firmware opens the session now or the shopper scans again.
func (a Authorizer) CheckUnlock(cmd msg.Command, now time.Time, seen Replay, qr *QR, st CabinetState) *Refusal {
	if r := a.CheckCommand(cmd, now, seen); r != nil {
		return r
	}
	switch {
	case cmd.Type != msg.CmdUnlock:
		return refuse(msg.ErrBadRequest, "type %q is not %q", cmd.Type, msg.CmdUnlock)
	case cmd.SessionID == "":
		return refuse(msg.ErrBadRequest, "missing session_id")
	case !msg.ValidText(cmd.SessionID, msg.MaxIDBytes):
		return refuse(msg.ErrBadRequest, "session_id: %s", textRule)
	case cmd.QRNonce == "":
		return refuse(msg.ErrBadRequest, "missing qr_nonce")
	case cmd.Buyer == nil:
		return refuse(msg.ErrBadRequest, "missing buyer")
	case cmd.Buyer.Kind != msg.BuyerPerson && cmd.Buyer.Kind != msg.BuyerUnion && cmd.Buyer.Kind != msg.BuyerUnit:
		return refuse(msg.ErrBadRequest, "buyer kind %.16q", cmd.Buyer.Kind)
	case cmd.Buyer.Ref == "":
		return refuse(msg.ErrBadRequest, "missing buyer ref")
	case !msg.ValidText(cmd.Buyer.Ref, msg.MaxIDBytes):
		return refuse(msg.ErrBadRequest, "buyer ref: %s", textRule)
	case !msg.ValidText(cmd.Buyer.Org, msg.MaxTextBytes):
		return refuse(msg.ErrBadRequest, "buyer org: at most %d bytes, no control or format characters", msg.MaxTextBytes)
	case cmd.LimitFen < 0:
		return refuse(msg.ErrBadRequest, "negative limit_fen %d", cmd.LimitFen)
	case cmd.Door < 0:
		return refuse(msg.ErrBadRequest, "negative door %d", cmd.Door)
	case st.OutOfService:
		return refuse(msg.ErrOutOfService, "cabinet out of service")
	case !st.HasCatalog:
		return refuse(msg.ErrNoCatalog, "no verified catalog loaded")
	case st.Busy:
		return refuse(msg.ErrBusy, "a session is in progress")
	case qr == nil:
		return refuse(msg.ErrStaleQR, "no qr code shown")
	}
	if err := qr.Use(cmd.QRNonce, now); err != nil {
		return refuse(msg.ErrStaleQR, "%s", strings.TrimPrefix(err.Error(), "payment: "))
	}
	return nil
}

// UnlockDoor is the door an unlock opens: its door field, 1 when omitted.
func UnlockDoor(cmd msg.Command) int {
	if cmd.Door == 0 {
		return 1
	}
	return cmd.Door
}
