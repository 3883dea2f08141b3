package firmware

// Malformed inbound messages through the Device's handler, one row per way
// to be wrong. What does not verify or decode is dropped, counted and
// alarmed (bad_message, whose detail says why); what verifies but is
// refused is answered (a reply with its code and reason) or, for a catalog,
// logged; in every case nothing else changes.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

type inboundCase struct {
	name    string
	topic   func(tp msg.Topics) string
	payload []byte
	bad     string // the bad_message alarm's err says this; "" means no alarm
	replyID string // a reply to this id is queued…
	code    string // …with this error code…
	detail  string // …and this in its detail
}

func TestMalformedInboundChangesNothing(t *testing.T) {
	var (
		catTopic  = func(tp msg.Topics) string { return tp.Catalog() }
		planTopic = func(tp msg.Topics) string { return tp.Planogram() }
		ackTopic  = func(tp msg.Topics) string { return tp.Ack() }
		cmdTopic  = func(tp msg.Topics) string { return tp.Cmd() }
	)
	asJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cat := func(edit func(c *msg.Catalog)) msg.Catalog {
		c := demo.Catalog(fuzzT0)
		c.Version = 2
		edit(&c)
		return c
	}
	catJSON := asJSON(cat(func(*msg.Catalog) {}))
	plan := func(edit func(p *msg.Planogram)) msg.Planogram {
		p := demo.Planogram(testCabinet)
		p.Version = 2
		edit(&p)
		return p
	}
	cmd := func(id, typ string, edit func(c *msg.Command)) msg.Command {
		c := msg.Command{ID: id, Type: typ, CabinetID: testCabinet, IssuedAt: msg.At(fuzzT0), ExpiresAt: msg.At(fuzzT0.Add(time.Minute))}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	unlock := func(edit func(c *msg.Command)) msg.Command {
		return cmd("cmd-u", msg.CmdUnlock, func(c *msg.Command) {
			c.SessionID, c.QRNonce, c.LimitFen, c.Door = "S-1", "AQIDBAUGBwgJCgsM", 50000, 1
			c.Buyer = &msg.Buyer{Ref: "wx-1", Kind: msg.BuyerPerson}
			edit(c)
		})
	}
	good := seal(cat(func(*msg.Catalog) {}))
	env := func(edit func(e *msg.Envelope)) []byte {
		var e msg.Envelope
		if err := json.Unmarshal(good, &e); err != nil {
			t.Fatal(err)
		}
		edit(&e)
		return asJSON(e)
	}
	b64 := base64.RawURLEncoding
	otherSig := b64.EncodeToString(ed25519.Sign(platformSigner().Key, []byte(`{"version":99}`)))
	oversize := bytes.Repeat([]byte("{"), msg.MaxPayloadBytes+1)
	signedOversize := sealBytes(append(bytes.Clone(catJSON[:len(catJSON)-1]), []byte(`,"pad":"`+strings.Repeat(" ", msg.MaxPayloadBytes)+`"}`)...))

	for _, tc := range []inboundCase{
		// The size cap, on every topic, signed or not.
		{name: "oversize catalog", topic: catTopic, payload: oversize, bad: "too large"},
		{name: "oversize planogram", topic: planTopic, payload: oversize, bad: "too large"},
		{name: "oversize ack", topic: ackTopic, payload: oversize, bad: "too large"},
		{name: "oversize command", topic: cmdTopic, payload: oversize, bad: "too large"},
		{name: "oversize, validly signed", topic: catTopic, payload: signedOversize, bad: "too large"},

		// Envelopes that do not verify.
		{name: "malformed JSON", topic: catTopic, payload: good[:len(good)/2], bad: "malformed"},
		{name: "trailing garbage", topic: catTopic, payload: append(bytes.Clone(good), "\n{}"...), bad: "trailing data"},
		{name: "trailing brace", topic: ackTopic, payload: append(seal(msg.Ack{SalesUptoSeq: 3}), '}'), bad: "trailing data"},
		{name: "unknown envelope field", topic: catTopic, payload: bytes.Replace(good, []byte(`{"v":1`), []byte(`{"v":1,"exp":9`), 1), bad: `unknown field "exp"`},
		{name: "envelope key in upper case", topic: catTopic, payload: bytes.Replace(good, []byte(`"sig"`), []byte(`"SIG"`), 1), bad: "unknown field"},
		{name: "wrong v", topic: catTopic, payload: env(func(e *msg.Envelope) { e.V = 2 }), bad: "v=2"},
		{name: "wrong alg", topic: catTopic, payload: env(func(e *msg.Envelope) { e.Alg = "HS256" }), bad: "alg"},
		{name: "unknown kid", topic: catTopic, payload: env(func(e *msg.Envelope) { e.Kid = "plat-old" }), bad: "unknown key id"},
		{name: "bad base64 payload", topic: catTopic, payload: env(func(e *msg.Envelope) { e.Payload = "%%%" }), bad: "payload"},
		{name: "padded base64 payload", topic: catTopic, payload: env(func(e *msg.Envelope) { e.Payload += "=" }), bad: "payload"},
		{name: "bad base64 sig", topic: catTopic, payload: env(func(e *msg.Envelope) { e.Sig = e.Sig[:40] + "*" + e.Sig[41:] }), bad: "sig"},
		{name: "signature over different bytes", topic: catTopic, payload: env(func(e *msg.Envelope) { e.Sig = otherSig }), bad: "does not verify"},
		{name: "payload changed under its signature", topic: catTopic,
			payload: env(func(e *msg.Envelope) {
				e.Payload = b64.EncodeToString(bytes.Replace(catJSON, []byte(`"price_fen":2680`), []byte(`"price_fen":1`), 1))
			}),
			bad: "does not verify"},
		{name: "two payload keys", topic: catTopic, payload: bytes.Replace(good, []byte(`"payload":`), []byte(`"payload":"e30","payload":`), 1), bad: `duplicate key "payload"`},
		{name: "unsigned catalog", topic: catTopic, payload: catJSON, bad: "malformed"},
		{name: "unsigned command", topic: cmdTopic, payload: asJSON(cmd("cmd-1", msg.CmdReboot, nil)), bad: "malformed"},
		{name: "empty", topic: ackTopic, payload: []byte{}, bad: "no JSON value"},

		// Signed, but the payload does not decode strictly.
		{name: "signed: unknown product field", topic: catTopic, payload: sealBytes(bytes.Replace(catJSON, []byte(`"price_fen":2680`), []byte(`"price_fen":2680,"vip_fen":1`), 1)), bad: `unknown field "vip_fen"`},
		{name: "signed: two price_fen keys", topic: catTopic, payload: sealBytes(bytes.Replace(catJSON, []byte(`"price_fen":2680`), []byte(`"price_fen":2680,"price_fen":1`), 1)), bad: `duplicate key "price_fen"`},
		{name: "signed: price_fen and PRICE_FEN", topic: catTopic, payload: sealBytes(bytes.Replace(catJSON, []byte(`"price_fen":2680`), []byte(`"price_fen":2680,"PRICE_FEN":1`), 1)), bad: "PRICE_FEN"},
		{name: "signed: trailing garbage", topic: catTopic, payload: sealBytes(append(bytes.Clone(catJSON), "]"...)), bad: "trailing data"},
		{name: "signed: valid_until past year 9999", topic: catTopic, payload: sealBytes(bytes.Replace(catJSON, []byte(`"valid_until":"2027-11-26T03:00:00.000Z"`), []byte(`"valid_until":"9999-12-31T23:59:59-23:59"`), 1)), bad: "year 10000"},
		{name: "signed: price over int64", topic: catTopic, payload: sealBytes(bytes.Replace(catJSON, []byte(`"price_fen":2680`), []byte(`"price_fen":99999999999999999999`), 1)), bad: "cannot unmarshal"},
		{name: "signed: null", topic: planTopic, payload: sealBytes([]byte("null")), bad: "want a JSON object"},
		{name: "signed: ack seq negative", topic: ackTopic, payload: sealBytes([]byte(`{"sales_upto_seq":-1,"at":null}`)), bad: "cannot unmarshal"},
		{name: "signed: two ack seqs", topic: ackTopic, payload: sealBytes([]byte(`{"sales_upto_seq":1,"sales_upto_seq":3,"at":null}`)), bad: "duplicate key"},
		{name: "signed: two settings", topic: cmdTopic, payload: sealBytes([]byte(`{"id":"c-1","type":"config","cabinet_id":"` + testCabinet +
			`","issued_at":"2026-11-26T03:00:00Z","expires_at":"2026-11-26T03:01:00Z","settings":{"heartbeat_s":15,"heartbeat_s":1}}`)), bad: "duplicate key"},
		{name: "signed: nested too deep", topic: cmdTopic, payload: sealBytes([]byte(`{"id":"c-1","settings":{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`)), bad: "nested deeper"},

		// Signed catalogs the store refuses: logged, nothing else.
		{name: "catalog negative price", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].PriceFen = -1 }))},
		{name: "catalog zero price", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].PriceFen = 0 }))},
		{name: "catalog huge price", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].PriceFen = 1 << 60 }))},
		{name: "catalog duplicate SKU", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[1].SKU = c.Products[0].SKU }))},
		{name: "catalog version equal", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Version = 1 }))},
		{name: "catalog version backwards", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Version = 0 }))},
		{name: "catalog of another region", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Region = "500000" }))},
		{name: "catalog empty sku", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].SKU = "" }))},
		{name: "catalog empty name", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].Name = "" }))},
		{name: "catalog over-long name", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].Name = strings.Repeat("羊", 100) }))},
		{name: "catalog control character in sku", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].SKU = "NM-0001\x1b" }))},
		{name: "catalog zero weight", topic: catTopic, payload: seal(cat(func(c *msg.Catalog) { c.Products[0].UnitWeightG, c.Products[0].WeightTolG = 0, 0 }))},

		// Signed planograms the store refuses: answered.
		{name: "planogram naming an unknown SKU", topic: planTopic, payload: seal(plan(func(p *msg.Planogram) { p.Shelves[0].SKUs[0] = "XX-0001" })),
			replyID: "planogram/2", code: msg.ErrBadRequest, detail: `SKU "XX-0001" is not in catalog 1`},
		{name: "planogram with a shelf the cabinet lacks", topic: planTopic, payload: seal(plan(func(p *msg.Planogram) { p.Shelves[0].Shelf = 9 })),
			replyID: "planogram/2", code: msg.ErrBadRequest, detail: "shelf 9: this cabinet has no such shelf"},
		{name: "planogram for another cabinet", topic: planTopic, payload: seal(plan(func(p *msg.Planogram) { p.CabinetID = "NM-150102-0008" })),
			replyID: "planogram/2", code: msg.ErrBadRequest, detail: "planogram for"},
		{name: "planogram version equal", topic: planTopic, payload: seal(plan(func(p *msg.Planogram) { p.Version = 1 }))},

		// Acks that release nothing.
		{name: "ack beyond the last sale", topic: ackTopic, payload: seal(msg.Ack{SalesUptoSeq: 4, At: msg.At(fuzzT0)})},
		{name: "ack of seq 0", topic: ackTopic, payload: seal(msg.Ack{At: msg.At(fuzzT0)})},

		// Signed commands that are refused: answered.
		{name: "expired command", topic: cmdTopic, payload: seal(cmd("cmd-x", msg.CmdReboot, func(c *msg.Command) {
			c.IssuedAt, c.ExpiresAt = msg.At(fuzzT0.Add(-2*time.Minute)), msg.At(fuzzT0.Add(-time.Minute))
		})), replyID: "cmd-x", code: msg.ErrExpired, detail: "expired 1m0s ago"},
		{name: "command issued in the future", topic: cmdTopic, payload: seal(cmd("cmd-x", msg.CmdReboot, func(c *msg.Command) {
			c.IssuedAt, c.ExpiresAt = msg.At(fuzzT0.Add(time.Hour)), msg.At(fuzzT0.Add(time.Hour+time.Minute))
		})), replyID: "cmd-x", code: msg.ErrBadRequest, detail: "in the future"},
		{name: "command for another cabinet", topic: cmdTopic, payload: seal(cmd("cmd-x", msg.CmdReboot, func(c *msg.Command) { c.CabinetID = "NM-150102-0008" })),
			replyID: "cmd-x", code: msg.ErrWrongCabinet, detail: `"NM-150102-0008"`},
		{name: "command of unknown type", topic: cmdTopic, payload: seal(cmd("cmd-x", "format_disk", nil)),
			replyID: "cmd-x", code: msg.ErrBadRequest, detail: `unknown type "format_disk"`},
		{name: "command id with a control character", topic: cmdTopic, payload: seal(cmd("cmd\x07", msg.CmdReboot, nil)),
			replyID: "cmd\x07", code: msg.ErrBadRequest, detail: "id: at most 128 bytes"},
		// The reply echoes only the first MaxIDBytes of the id.
		{name: "command id of 40 kB", topic: cmdTopic, payload: seal(cmd(strings.Repeat("c", 40_000), msg.CmdReboot, nil)),
			replyID: strings.Repeat("c", msg.MaxIDBytes), code: msg.ErrBadRequest, detail: "id: at most 128 bytes"},
		{name: "config changing the broker", topic: cmdTopic, payload: seal(cmd("cmd-x", msg.CmdConfig, func(c *msg.Command) {
			c.Settings = map[string]json.RawMessage{"broker": json.RawMessage(`"tcp://evil:1883"`)}
		})), replyID: "cmd-x", code: msg.ErrBadRequest, detail: `"broker" cannot be changed`},
		{name: "config with a negative interval", topic: cmdTopic, payload: seal(cmd("cmd-x", msg.CmdConfig, func(c *msg.Command) {
			c.Settings = map[string]json.RawMessage{"heartbeat_s": json.RawMessage(`-5`)}
		})), replyID: "cmd-x", code: msg.ErrBadRequest, detail: "heartbeat_s = -5"},
		{name: "resend from 0", topic: cmdTopic, payload: seal(cmd("cmd-x", msg.CmdResend, func(c *msg.Command) { c.ToSeq = 3 })),
			replyID: "cmd-x", code: msg.ErrBadRequest, detail: "from_seq"},
		{name: "unlock with a negative limit", topic: cmdTopic, payload: seal(unlock(func(c *msg.Command) { c.LimitFen = -1 })),
			replyID: "cmd-u", code: msg.ErrBadRequest, detail: "negative limit_fen"},
		{name: "unlock for a door the cabinet lacks", topic: cmdTopic, payload: seal(unlock(func(c *msg.Command) { c.Door = 7 })),
			replyID: "cmd-u", code: msg.ErrBadRequest, detail: "no door 7"},
		{name: "unlock with a session id of 200 bytes", topic: cmdTopic, payload: seal(unlock(func(c *msg.Command) { c.SessionID = strings.Repeat("S", 200) })),
			replyID: "cmd-u", code: msg.ErrBadRequest, detail: "session_id: at most"},
		{name: "unlock with a buyer kind of 10 kB", topic: cmdTopic, payload: seal(unlock(func(c *msg.Command) { c.Buyer.Kind = strings.Repeat("k", 10_000) })),
			replyID: "cmd-u", code: msg.ErrBadRequest, detail: "buyer kind"},

		// Not a topic the cabinet takes: ignored, not even counted.
		{name: "valid envelope on the state topic", topic: func(tp msg.Topics) string { return tp.State() }, payload: good},
		{name: "command on another cabinet's topic", topic: func(tp msg.Topics) string { return tp.Prefix + "/c/NM-150102-0008/cmd" },
			payload: seal(cmd("cmd-x", msg.CmdReboot, func(c *msg.Command) { c.CabinetID = "NM-150102-0008" }))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newInboundRig(t)
			defer r.use(t)()
			checkRefused(t, r, tc)
		})
	}
}

// checkRefused delivers tc's message and checks what it left.
func checkRefused(t *testing.T, r *inboundRig, tc inboundCase) {
	t.Helper()
	before := r.state()
	if err := r.deliver(tc.topic(r.d.topics), tc.payload); err != nil {
		t.Fatalf("handle: %v", err)
	}
	after := r.state()
	added, removed := outboxDiff(before.outbox, after.outbox)
	if len(removed) > 0 {
		t.Fatalf("outbox entries %v removed", removed)
	}
	var alarms []msg.Alarm
	var replies []msg.Reply
	for _, e := range added {
		switch e.Kind {
		case outbox.KindAlarm:
			alarms = append(alarms, alarmOf(t, e))
		case outbox.KindReply:
			var rep msg.Reply
			if err := json.Unmarshal(e.Payload, &rep); err != nil {
				t.Fatal(err)
			}
			replies = append(replies, rep)
		default:
			t.Fatalf("queued a %s: %s", e.Kind, e.Payload)
		}
	}
	if tc.bad == "" {
		if len(alarms) > 0 || after.bad != before.bad {
			t.Fatalf("alarms %+v, bad count %d → %d; want none", alarms, before.bad, after.bad)
		}
	} else {
		if after.bad != before.bad+1 || len(alarms) != 1 || alarms[0].Kind != msg.AlarmBadMessage {
			t.Fatalf("alarms %+v, bad count %d → %d; want one bad_message", alarms, before.bad, after.bad)
		}
		why, _ := alarms[0].Detail["err"].(string)
		if !strings.Contains(why, tc.bad) || len(why) > 512 {
			t.Fatalf("bad_message says %q, want %q", why, tc.bad)
		}
	}
	if tc.replyID == "" {
		if len(replies) > 0 {
			t.Fatalf("replies %+v, want none", replies)
		}
	} else if len(replies) != 1 || replies[0].CmdID != tc.replyID || replies[0].OK || replies[0].Error != tc.code ||
		!strings.Contains(replies[0].Detail, tc.detail) {
		t.Fatalf("replies %+v, want one to %.40q: %s saying %q", replies, tc.replyID, tc.code, tc.detail)
	}
	before.outbox, after.outbox, before.bad, after.bad = nil, nil, 0, 0
	if d := stateDiff(before, after); d != "" {
		t.Fatalf("state changed:\n%s", d)
	}
}

// The rig acts on good messages, so the rows above fail for their reason:
// a newer catalog is taken, an ack releases its sales, a config command
// changes its setting and is answered, a reboot returns ErrReboot.
func TestInboundRigTakesGoodMessages(t *testing.T) {
	r := newInboundRig(t)
	defer r.use(t)()
	tp := r.d.topics
	c := demo.Catalog(fuzzT0)
	c.Version = 2
	if err := r.deliver(tp.Catalog(), seal(c)); err != nil || r.d.catalog.Version() != 2 {
		t.Fatalf("catalog 2: version %d, %v", r.d.catalog.Version(), err)
	}
	if err := r.deliver(tp.Ack(), seal(msg.Ack{SalesUptoSeq: 2, At: msg.At(fuzzT0)})); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range r.pending() {
		if e.Kind == outbox.KindSale {
			seqs = append(seqs, e.SaleSeq)
		}
	}
	if len(seqs) != 1 || seqs[0] != 3 {
		t.Fatalf("pending sales %v after ack 2, want [3]", seqs)
	}
	cfg := msg.Command{ID: "cmd-cfg", Type: msg.CmdConfig, CabinetID: testCabinet, IssuedAt: msg.At(fuzzT0),
		ExpiresAt: msg.At(fuzzT0.Add(time.Minute)), Settings: map[string]json.RawMessage{"heartbeat_s": json.RawMessage("15")}}
	if err := r.deliver(tp.Cmd(), seal(cfg)); err != nil || r.d.cfg.HeartbeatS != 15 {
		t.Fatalf("config: heartbeat %d, %v", r.d.cfg.HeartbeatS, err)
	}
	r.reply("cmd-cfg", "")
	reboot := msg.Command{ID: "cmd-reboot", Type: msg.CmdReboot, CabinetID: testCabinet, IssuedAt: msg.At(fuzzT0), ExpiresAt: msg.At(fuzzT0.Add(time.Minute))}
	if err := r.deliver(tp.Cmd(), seal(reboot)); !errors.Is(err, ErrReboot) {
		t.Fatalf("reboot: %v", err)
	}
	// A replay of the config command is refused and changes nothing.
	checkRefused(t, r, inboundCase{topic: func(tp msg.Topics) string { return tp.Cmd() }, payload: seal(cfg),
		replyID: "cmd-cfg", code: msg.ErrReplayed, detail: "already seen"})
}

// Acks bound to a cabinet (cabinet_id, an addition to v1): one naming
// another cabinet releases nothing and counts as a bad message; one naming
// this cabinet releases its sales; after it, an unbound ack (an old one
// replayed) is refused.
func TestAckBoundToItsCabinet(t *testing.T) {
	r := newInboundRig(t)
	defer r.use(t)()
	tp := r.d.topics
	pendingSeqs := func() []uint64 {
		var seqs []uint64
		for _, e := range r.pending() {
			if e.Kind == outbox.KindSale {
				seqs = append(seqs, e.SaleSeq)
			}
		}
		return seqs
	}
	start := pendingSeqs()
	if len(start) != 3 {
		t.Fatalf("rig holds pending sales %v, want 3", start)
	}
	bad := r.d.Status().BadMessages
	_ = r.deliver(tp.Ack(), seal(msg.Ack{SalesUptoSeq: 2, At: msg.At(fuzzT0), CabinetID: "NM-150102-9999"}))
	if got := pendingSeqs(); !slices.Equal(got, start) {
		t.Fatalf("an ack for another cabinet released sales: pending %v", got)
	}
	if r.d.Status().BadMessages != bad+1 {
		t.Errorf("bad messages %d, want %d", r.d.Status().BadMessages, bad+1)
	}
	if err := r.deliver(tp.Ack(), seal(msg.Ack{SalesUptoSeq: 1, At: msg.At(fuzzT0), CabinetID: testCabinet})); err != nil {
		t.Fatal(err)
	}
	if got := pendingSeqs(); !slices.Equal(got, start[1:]) {
		t.Fatalf("pending %v after a bound ack of 1, want %v", got, start[1:])
	}
	_ = r.deliver(tp.Ack(), seal(msg.Ack{SalesUptoSeq: 2, At: msg.At(fuzzT0)}))
	if got := pendingSeqs(); !slices.Equal(got, start[1:]) {
		t.Fatalf("an unbound ack after a bound one released sales: pending %v", got)
	}
}
