package payment

// FuzzCommand (a verified command payload through CheckCommand and
// CheckUnlock) and FuzzQR (ParseQR and VerifyQR). The committed seeds in
// testdata/fuzz/Fuzz*/ are built at the fixed time t0 with the fixed key
// testKey(1) and the counting nonce source, so they are real commands and
// codes; TestFuzzSeedsCommitted checks them, and rewrites them with
//
//	go test ./payment -run TestFuzzSeedsCommitted -update-corpus

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/internal/fuzzseed"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// fuzzNow is when the fuzz targets judge; the seeds were issued at t0.
var fuzzNow = t0.Add(10 * time.Second)

// firstNonce is the nonce a fresh QR over countReader draws first.
func firstNonce(t testing.TB) string {
	return newTestQR(t, &QROpts{Rand: &countReader{}}).Nonce(fuzzNow)
}

var replyCodes = []string{msg.ErrBadRequest, msg.ErrWrongCabinet, msg.ErrExpired, msg.ErrReplayed,
	msg.ErrStaleQR, msg.ErrBusy, msg.ErrOutOfService, msg.ErrNoCatalog}

// checkRefusal fails unless r is a reply code with a short detail.
func checkRefusal(t *testing.T, r *Refusal) {
	t.Helper()
	if !slices.Contains(replyCodes, r.Code) || r.Detail == "" {
		t.Fatalf("refusal %q %q", r.Code, r.Detail)
	}
	if len(r.Detail) > 1024 {
		t.Fatalf("refusal detail of %d bytes echoes the input", len(r.Detail))
	}
}

// wellFormed fails unless cmd's header passes every rule CheckCommand
// promises.
func wellFormed(t *testing.T, a Authorizer, cmd msg.Command, seen Replay) {
	t.Helper()
	switch {
	case cmd.ID == "" || !msg.ValidText(cmd.ID, msg.MaxIDBytes):
		t.Fatalf("accepted id %q", cmd.ID)
	case !knownCommands[cmd.Type]:
		t.Fatalf("accepted type %q", cmd.Type)
	case cmd.CabinetID != a.CabinetID:
		t.Fatalf("accepted a command for %q", cmd.CabinetID)
	case cmd.IssuedAt.IsZero() || !cmd.ExpiresAt.After(cmd.IssuedAt.Time):
		t.Fatalf("accepted issued_at %v expires_at %v", cmd.IssuedAt, cmd.ExpiresAt)
	case cmd.ExpiresAt.Sub(cmd.IssuedAt.Time) > DefaultMaxTTL:
		t.Fatalf("accepted a lifetime of %v", cmd.ExpiresAt.Sub(cmd.IssuedAt.Time))
	case cmd.IssuedAt.Sub(fuzzNow) > DefaultMaxSkew:
		t.Fatalf("accepted a command issued %v ahead", cmd.IssuedAt.Sub(fuzzNow))
	case !fuzzNow.Before(cmd.ExpiresAt.Time):
		t.Fatalf("accepted an expired command")
	case seen.Seen(cmd.ID):
		t.Fatalf("accepted a replay of %q", cmd.ID)
	}
}

// FuzzCommand: a payload that decodes as the firmware decodes it never
// panics the checks; a refusal carries a reply code and a short detail and
// leaves the QR nonce unspent; an accepted command is well-formed, and an
// accepted unlock names the nonce shown, a valid buyer and session, and
// spends the nonce.
func FuzzCommand(f *testing.F) {
	a := Authorizer{CabinetID: cab}
	seen := seenSet{"cmd-seen": true}
	states := []CabinetState{readyState, {HasCatalog: true, Busy: true}, {HasCatalog: true, OutOfService: true}, {}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var cmd msg.Command
		if err := msg.DecodeStrict(payload, &cmd); err != nil {
			return // refused before the checks, as bad_message
		}
		if r := a.CheckCommand(cmd, fuzzNow, seen); r != nil {
			checkRefusal(t, r)
		} else {
			wellFormed(t, a, cmd, seen)
		}
		for _, st := range states {
			q := newTestQR(t, &QROpts{Rand: &countReader{}})
			shown := q.Nonce(fuzzNow)
			if r := a.CheckUnlock(cmd, fuzzNow, seen, q, st); r != nil {
				checkRefusal(t, r)
				if q.Nonce(fuzzNow) != shown {
					t.Fatalf("refused unlock (%s) rotated the QR", r.Code)
				}
				if err := q.Use(shown, fuzzNow); err != nil {
					t.Fatalf("refused unlock (%s) spent the nonce: %v", r.Code, err)
				}
				continue
			}
			wellFormed(t, a, cmd, seen)
			switch {
			case st != readyState:
				t.Fatalf("unlock accepted in state %+v", st)
			case cmd.Type != msg.CmdUnlock || cmd.QRNonce != shown:
				t.Fatalf("accepted %s with nonce %q, shown %q", cmd.Type, cmd.QRNonce, shown)
			case cmd.SessionID == "" || !msg.ValidText(cmd.SessionID, msg.MaxIDBytes):
				t.Fatalf("accepted session_id %q", cmd.SessionID)
			case cmd.Buyer == nil || cmd.Buyer.Ref == "" || !msg.ValidText(cmd.Buyer.Ref, msg.MaxIDBytes) ||
				!msg.ValidText(cmd.Buyer.Org, msg.MaxTextBytes) ||
				!slices.Contains([]string{msg.BuyerPerson, msg.BuyerUnion, msg.BuyerUnit}, cmd.Buyer.Kind):
				t.Fatalf("accepted buyer %+v", cmd.Buyer)
			case cmd.LimitFen < 0 || cmd.Door < 0:
				t.Fatalf("accepted limit_fen %d door %d", cmd.LimitFen, cmd.Door)
			}
			if err := q.Use(shown, fuzzNow); err == nil {
				t.Fatal("the nonce of an accepted unlock can be used again")
			}
		}
	})
}

// FuzzQR: ParseQR never panics; what it accepts has one spelling (the
// fields rebuilt from the parse give the same fields back) and parses the
// same again; what it refuses is ErrBadQR with a short reason; VerifyQR
// accepts only a code signed by the cabinet key, no older than 2·rotate and
// at most QRFutureSkew ahead.
func FuzzQR(f *testing.F) {
	pub := testKey(1).Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseQR(s)
		if err != nil {
			if !errors.Is(err, ErrBadQR) || len(err.Error()) > 1024 {
				t.Fatalf("refusal %v", err)
			}
			if _, verr := VerifyQR(s, pub, fuzzNow, 0); !errors.Is(verr, ErrBadQR) {
				t.Fatalf("ParseQR refused (%v), VerifyQR said %v", err, verr)
			}
			return
		}
		base, query, _ := strings.Cut(s, "?")
		canon := []string{"c=" + p.Cabinet, "n=" + p.Nonce, "t=" + strconv.FormatInt(p.Unix, 10), "s=" + b64.EncodeToString(p.Sig)}
		fields := strings.Split(query, "&")
		slices.Sort(fields)
		if want := slices.Sorted(slices.Values(canon)); !slices.Equal(fields, want) {
			t.Fatalf("accepted a second spelling: %q is not %q", fields, want)
		}
		again, err := ParseQR(base + "?" + strings.Join(canon, "&"))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("rebuilt payload parses as %+v, %v; want %+v", again, err, p)
		}
		v, err := VerifyQR(s, pub, fuzzNow, 0)
		if err != nil {
			if !errors.Is(err, ErrQRSignature) && !errors.Is(err, ErrStaleQR) {
				t.Fatalf("verify: %v", err)
			}
			return
		}
		if !reflect.DeepEqual(v, p) || !ed25519.Verify(pub, qrMessage(p.Cabinet, p.Nonce, p.Unix), p.Sig) {
			t.Fatal("VerifyQR accepted a code the cabinet key did not sign")
		}
		if age := fuzzNow.Unix() - p.Unix; age > int64(2*DefaultQRRotate/time.Second) || -age > int64(QRFutureSkew/time.Second) {
			t.Fatalf("VerifyQR accepted a code %ds old", age)
		}
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func commandSeeds(t testing.TB) map[string][]byte {
	nonce := firstNonce(t)
	unlock := func(f func(c *msg.Command)) []byte {
		c := unlockCmd("cmd-1", nonce, fuzzNow)
		c.IssuedAt, c.ExpiresAt = msg.At(t0), msg.At(t0.Add(time.Minute))
		f(&c)
		return mustJSON(c)
	}
	other := func(typ string, f func(c *msg.Command)) []byte {
		c := msg.Command{ID: "cmd-2", Type: typ, CabinetID: cab, IssuedAt: msg.At(t0), ExpiresAt: msg.At(t0.Add(time.Minute))}
		f(&c)
		return mustJSON(c)
	}
	good := unlock(func(*msg.Command) {})
	union := func(c *msg.Command) {
		c.Buyer = &msg.Buyer{Ref: "u-9", Kind: msg.BuyerUnion, Org: "呼和浩特市总工会"}
	}
	at := func(issued, expires time.Duration) func(c *msg.Command) {
		return func(c *msg.Command) { c.IssuedAt, c.ExpiresAt = msg.At(t0.Add(issued)), msg.At(t0.Add(expires)) }
	}
	heartbeat := map[string]json.RawMessage{"heartbeat_s": json.RawMessage("15")}
	return map[string][]byte{
		"valid-unlock":         good,
		"valid-unlock-union":   unlock(union),
		"valid-cancel":         other(msg.CmdCancel, func(c *msg.Command) { c.SessionID = "S-1" }),
		"valid-resend":         other(msg.CmdResend, func(c *msg.Command) { c.FromSeq, c.ToSeq = 1, 118 }),
		"valid-config":         other(msg.CmdConfig, func(c *msg.Command) { c.Settings = heartbeat }),
		"valid-reboot":         other(msg.CmdReboot, func(*msg.Command) {}),
		"replayed":             unlock(func(c *msg.Command) { c.ID = "cmd-seen" }),
		"expired":              unlock(at(-time.Hour, -time.Minute)),
		"issued-in-future":     unlock(at(time.Hour, time.Hour+time.Minute)),
		"ttl-too-long":         unlock(func(c *msg.Command) { c.ExpiresAt = msg.At(t0.Add(time.Hour)) }),
		"wrong-cabinet":        unlock(func(c *msg.Command) { c.CabinetID = "NM-150102-0008" }),
		"unknown-type":         unlock(func(c *msg.Command) { c.Type = "open_all" }),
		"stale-nonce":          unlock(func(c *msg.Command) { c.QRNonce = "AAAAAAAAAAAAAAAA" }),
		"id-control-char":      unlock(func(c *msg.Command) { c.ID = "cmd-1\x00" }),
		"id-over-long":         unlock(func(c *msg.Command) { c.ID = strings.Repeat("c", 200) }),
		"session-line-break":   unlock(func(c *msg.Command) { c.SessionID = "S-1\nS-2" }),
		"buyer-kind":           unlock(func(c *msg.Command) { c.Buyer.Kind = "vip" }),
		"buyer-org-bidi":       unlock(func(c *msg.Command) { c.Buyer.Org = "\u202e会工总" }),
		"negative-limit":       unlock(func(c *msg.Command) { c.LimitFen = -1 }),
		"negative-door":        unlock(func(c *msg.Command) { c.Door = -1 }),
		"no-buyer":             unlock(func(c *msg.Command) { c.Buyer = nil }),
		"duplicate-nonce-key":  bytes.Replace(good, []byte(`"qr_nonce":`), []byte(`"qr_nonce":"AAAAAAAAAAAAAAAA","qr_nonce":`), 1),
		"upper-case-key":       bytes.Replace(good, []byte(`"limit_fen":50000`), []byte(`"limit_fen":50000,"LIMIT_FEN":-1`), 1),
		"limit-over-int64":     bytes.Replace(good, []byte(`"limit_fen":50000`), []byte(`"limit_fen":9223372036854775808`), 1),
		"expires-year-10000":   bytes.Replace(good, []byte(`"expires_at":"2026-03-01T09:31:00.000Z"`), []byte(`"expires_at":"9999-12-31T23:59:59-23:59"`), 1),
		"issued-null":          bytes.Replace(good, []byte(`"issued_at":"2026-03-01T09:30:00.000Z"`), []byte(`"issued_at":null`), 1),
		"not-json":             []byte(`{"id":`),
		"valid-unlock-no-door": unlock(func(c *msg.Command) { c.Door = 0 }),
	}
}

func qrSeeds(t testing.TB) map[string]string {
	q := newTestQR(t, &QROpts{Rand: &countReader{}})
	good := q.Current(t0)
	next := q.Rotate(t0.Add(5 * time.Second))
	old := q.Rotate(t0.Add(-2 * time.Minute))
	other, err := NewQR(cab, testKey(2), &QROpts{Rand: &countReader{}})
	if err != nil {
		t.Fatal(err)
	}
	base, query, _ := strings.Cut(good, "?")
	f := map[string]string{}
	for field := range strings.SplitSeq(query, "&") {
		k, v, _ := strings.Cut(field, "=")
		f[k] = v
	}
	build := func(fields ...string) string { return base + "?" + strings.Join(fields, "&") }
	return map[string]string{
		"valid":              good,
		"valid-rotated":      next,
		"valid-reordered":    build("s="+f["s"], "t="+f["t"], "n="+f["n"], "c="+f["c"]),
		"too-old":            old,
		"other-key":          other.Current(t0),
		"future":             build("c="+f["c"], "n="+f["n"], "t="+strconv.FormatInt(t0.Unix()+3600, 10), "s="+f["s"]),
		"missing-sig":        build("c="+f["c"], "n="+f["n"], "t="+f["t"]),
		"duplicate-nonce":    build("c="+f["c"], "n="+f["n"], "n=AAAAAAAAAAAAAAAA", "t="+f["t"], "s="+f["s"]),
		"unknown-field":      good + "&x=1",
		"empty-field":        good + "&",
		"no-query":           base,
		"time-leading-zero":  build("c="+f["c"], "n="+f["n"], "t=0"+f["t"], "s="+f["s"]),
		"time-negative":      build("c="+f["c"], "n="+f["n"], "t=-1", "s="+f["s"]),
		"time-overflow":      build("c="+f["c"], "n="+f["n"], "t=9223372036854775808", "s="+f["s"]),
		"time-max":           build("c="+f["c"], "n="+f["n"], "t=9223372036854775807", "s="+f["s"]),
		"nonce-short":        build("c="+f["c"], "n=AAAA", "t="+f["t"], "s="+f["s"]),
		"nonce-line-break":   build("c="+f["c"], "n="+f["n"][:8]+"\n"+f["n"][8:], "t="+f["t"], "s="+f["s"]),
		"nonce-padding-bits": build("c="+f["c"], "n="+f["n"]+"AB", "t="+f["t"], "s="+f["s"]),
		"sig-short":          build("c="+f["c"], "n="+f["n"], "t="+f["t"], "s="+f["s"][:80]),
		"sig-padded":         build("c="+f["c"], "n="+f["n"], "t="+f["t"], "s="+f["s"]+"=="),
		"cabinet-invalid":    build("c=NM_1", "n="+f["n"], "t="+f["t"], "s="+f["s"]),
		"cabinet-escaped":    build("c=NM%2D150102%2D0007", "n="+f["n"], "t="+f["t"], "s="+f["s"]),
	}
}

func TestFuzzSeedsCommitted(t *testing.T) {
	cmds := map[string][]byte{}
	for name, p := range commandSeeds(t) {
		cmds[name] = fuzzseed.File(p)
	}
	fuzzseed.Check(t, "FuzzCommand", cmds)
	qrs := map[string][]byte{}
	for name, s := range qrSeeds(t) {
		qrs[name] = fuzzseed.File(s)
	}
	fuzzseed.Check(t, "FuzzQR", qrs)
}

// The seeds named valid… pass (an unlock in the ready state; a code when
// verified at fuzzNow) and the others are refused, so the corpus covers both
// sides of the checks.
func TestFuzzSeedsAcceptedOrRefused(t *testing.T) {
	a := Authorizer{CabinetID: cab}
	for name, p := range commandSeeds(t) {
		var cmd msg.Command
		err := msg.DecodeStrict(p, &cmd)
		ok := err == nil
		if ok {
			if cmd.Type == msg.CmdUnlock {
				ok = a.CheckUnlock(cmd, fuzzNow, seenSet{"cmd-seen": true}, newTestQR(t, &QROpts{Rand: &countReader{}}), readyState) == nil
			} else {
				ok = a.CheckCommand(cmd, fuzzNow, seenSet{"cmd-seen": true}) == nil
			}
		}
		if strings.HasPrefix(name, "valid") != ok {
			t.Errorf("command %s: accepted %v (decode: %v)", name, ok, err)
		}
	}
	pub := testKey(1).Public().(ed25519.PublicKey)
	for name, s := range qrSeeds(t) {
		_, err := VerifyQR(s, pub, fuzzNow, 0)
		if strings.HasPrefix(name, "valid") != (err == nil) {
			t.Errorf("qr %s: %v", name, err)
		}
	}
}
