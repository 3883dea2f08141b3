package firmware

// FuzzInbound and FuzzAck drive a whole Device through its inbound path
// (handle, as Run calls it for every message from the link) on a running
// virtual cabinet. The committed seeds in testdata/fuzz/Fuzz*/ are signed
// with a fixed platform key at the fixed time fuzzT0, which is also the
// Device's clock, so they are real messages the cabinet acts on;
// TestFuzzSeedsCommitted checks them, and rewrites them with
//
//	go test ./firmware -run TestFuzzSeedsCommitted -update-corpus

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/catalog"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/internal/clocktest"
	"github.com/bangfu/cabinet/internal/fuzzseed"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// fuzzT0 is when every seed was issued and where the inbound rig's clock
// starts.
var fuzzT0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// platformSigner signs as the platform with a fixed key, so committed
// seeds verify on every run.
func platformSigner() msg.Signer {
	return msg.Signer{Kid: "plat-test", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))}
}

func seal(body any) []byte {
	b, err := platformSigner().Seal(body)
	if err != nil {
		panic(err)
	}
	return b
}

func sealBytes(payload []byte) []byte {
	b, err := platformSigner().SealBytes(payload)
	if err != nil {
		panic(err)
	}
	return b
}

// inboundRig is a Device for inbound messages: a virtual cabinet with the
// demo shelves running in the background, the Device on the test clock
// trusting platformSigner, the demo catalog and planogram (version 1) taken
// in through handle itself, and three sales in the ledger awaiting the
// platform's ack. Its test helpers are the rig's (set rig.t with use).
type inboundRig struct {
	*rig
	clock *clocktest.Clock // moves only when told
}

func newInboundRig(tb testing.TB) *inboundRig {
	tb.Helper()
	plan := demo.Planogram(testCabinet)
	hw := demoHardware(tb, "inbound", nil, nil)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.Default()
	cfg.CabinetID, cfg.Region, cfg.DataDir = testCabinet, demo.Region, tb.TempDir()
	cfg.Broker = "tcp://127.0.0.1:1" // the link is never started
	cfg.PlatformKeys = map[string]string{platformSigner().Kid: msg.EncodeKey(platformSigner().Key.Public().(ed25519.PublicKey))}
	clock := clocktest.At(fuzzT0)
	d, err := New(Opts{Config: cfg, Hardware: hw.Hardware(), DeviceKey: key,
		Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("close device: %v", err)
		}
	})
	r := &inboundRig{rig: &rig{ctx: context.Background(), hw: hw, cfg: cfg, key: key, d: d,
		cat: demo.Catalog(fuzzT0), plan: plan, stock: demo.Stock()}, clock: clock}
	for _, m := range []struct {
		topic string
		body  any
	}{{d.topics.Catalog(), r.cat}, {d.topics.Planogram(), r.plan}} {
		if err := d.handle(r.ctx, telemetry.Inbound{Topic: m.topic, Payload: seal(m.body), Received: fuzzT0}); err != nil {
			tb.Fatal(err)
		}
	}
	if p, ok := d.catalog.Planogram(); d.catalog.Version() != 1 || !ok || p.Version != 1 {
		tb.Fatal("the demo catalog and planogram were not taken in")
	}
	for i := range 3 {
		_, err := d.ledger.CommitSale(d.topics.Sale(), func(seq uint64) msg.Sale {
			return msg.Sale{SaleID: msg.NewID(fuzzT0), Seq: seq, CabinetID: testCabinet, SessionID: fmt.Sprintf("S-%d", i),
				Buyer: msg.Buyer{Ref: "wx-1", Kind: msg.BuyerPerson}, OpenedAt: msg.At(fuzzT0), ClosedAt: msg.At(fuzzT0),
				SettledAt: msg.At(fuzzT0), Status: msg.SaleEmpty, Lines: []msg.SaleLine{}, Evidence: []msg.Evidence{},
				CatalogVersion: 1, FW: FW}
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// deliver hands the Device one inbound message, as Run does.
func (r *inboundRig) deliver(topic string, payload []byte) error {
	return r.d.handle(r.ctx, telemetry.Inbound{Topic: topic, Payload: payload, Received: r.clock.Now()})
}

// inboundState is everything an inbound message could change.
type inboundState struct {
	counters  msg.Counters
	catalog   string // JSON of what the store holds
	planogram string
	session   string // JSON of the persisted session ("null": none)
	inMemory  bool   // a session in memory
	cfg       string // JSON of the running config
	outbox    []outbox.Entry
	bad       uint64
	nonce     string // the QR nonce shown
}

func (r *inboundRig) state() inboundState {
	r.t.Helper()
	j := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			r.t.Fatal(err)
		}
		return string(b)
	}
	cat, _ := r.d.catalog.Catalog()
	plan, _ := r.d.catalog.Planogram()
	return inboundState{
		counters: r.counters(), catalog: j(cat), planogram: j(plan), session: j(r.session()),
		inMemory: r.d.sess != nil, cfg: j(r.d.cfg), outbox: r.pending(), bad: r.d.Status().BadMessages,
		nonce: r.d.qr.Nonce(r.clock.Now()),
	}
}

// outboxDiff returns the entries of after that before lacks and the ids of
// those it lost.
func outboxDiff(before, after []outbox.Entry) (added []outbox.Entry, removed []uint64) {
	had := map[uint64]bool{}
	for _, e := range before {
		had[e.ID] = true
	}
	has := map[uint64]bool{}
	for _, e := range after {
		has[e.ID] = true
		if !had[e.ID] {
			added = append(added, e)
		}
	}
	for _, e := range before {
		if !has[e.ID] {
			removed = append(removed, e.ID)
		}
	}
	return added, removed
}

// alarmOf decodes an outbox alarm entry (the zero Alarm for other kinds).
func alarmOf(t *testing.T, e outbox.Entry) msg.Alarm {
	t.Helper()
	var a msg.Alarm
	if e.Kind == outbox.KindAlarm {
		if err := json.Unmarshal(e.Payload, &a); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// onlyBadMessage fails unless after differs from before at most by
// bad_message alarms and the bad counter.
func onlyBadMessage(t *testing.T, before, after inboundState) {
	t.Helper()
	added, removed := outboxDiff(before.outbox, after.outbox)
	if len(removed) > 0 {
		t.Fatalf("outbox entries %v removed", removed)
	}
	for _, e := range added {
		if a := alarmOf(t, e); a.Kind != msg.AlarmBadMessage {
			t.Fatalf("queued %s %s", e.Kind, e.Payload)
		}
	}
	before.outbox, after.outbox, before.bad, after.bad = nil, nil, 0, 0
	if d := stateDiff(before, after); d != "" {
		t.Fatalf("state changed:\n%s", d)
	}
}

// stateDiff says where a and b differ, briefly ("" if nowhere).
func stateDiff(a, b inboundState) string {
	var d []string
	field := func(name string, x, y any) {
		if xs, ys := fmt.Sprint(x), fmt.Sprint(y); xs != ys {
			d = append(d, fmt.Sprintf("%s: %.200s → %.200s", name, xs, ys))
		}
	}
	ids := func(es []outbox.Entry) (out []uint64) {
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	field("counters", a.counters, b.counters)
	field("catalog", a.catalog, b.catalog)
	field("planogram", a.planogram, b.planogram)
	field("session", a.session, b.session)
	field("session in memory", a.inMemory, b.inMemory)
	field("config", a.cfg, b.cfg)
	field("outbox", ids(a.outbox), ids(b.outbox))
	field("bad messages", a.bad, b.bad)
	field("QR nonce", a.nonce, b.nonce)
	return strings.Join(d, "\n")
}

// FuzzInbound feeds (topic, payload) to a running Device; with sign the
// payload is first sealed with the platform key, so that content the
// platform signed reaches the parsers. Nothing panics. What does not verify
// (or arrives on a topic the cabinet does not take) changes nothing: no
// counter, catalog, planogram, session, setting or QR nonce moves, and the
// outbox gains at most a bad_message alarm. What verifies may change only
// what its topic owns: never the sale counters; the catalog only forward,
// to one that validates, from the catalog topic; the planogram only
// forward; settings only by a command, to ones that validate and keep the
// cabinet's identity.
func FuzzInbound(f *testing.F) {
	r := newInboundRig(f)
	tp := r.d.topics
	inbound := map[string]bool{tp.Catalog(): true, tp.Planogram(): true, tp.Cmd(): true, tp.Ack(): true}
	f.Fuzz(func(t *testing.T, topic string, payload []byte, sign bool) {
		defer r.use(t)()
		if sign {
			payload = sealBytes(payload)
		}
		before := r.state()
		_, _, openErr := r.d.keys.Open(payload)
		err := r.deliver(topic, payload)
		after := r.state()
		if openErr != nil || !inbound[topic] {
			if err != nil {
				t.Fatalf("handle: %v", err)
			}
			if wantBad := inbound[topic] && openErr != nil; after.bad != before.bad+map[bool]uint64{true: 1}[wantBad] {
				t.Fatalf("bad_message count %d → %d", before.bad, after.bad)
			}
			onlyBadMessage(t, before, after)
			return
		}
		if err != nil && (topic != tp.Cmd() || !errors.Is(err, ErrReboot)) {
			t.Fatalf("handle: %v", err)
		}
		if after.counters != before.counters {
			t.Fatalf("an inbound message moved the counters %+v → %+v", before.counters, after.counters)
		}
		if after.bad > before.bad+1 {
			t.Fatalf("bad_message count %d → %d", before.bad, after.bad)
		}
		if after.catalog != before.catalog {
			c, _ := r.d.catalog.Catalog()
			var was msg.Catalog
			if err := json.Unmarshal([]byte(before.catalog), &was); err != nil {
				t.Fatal(err)
			}
			if topic != tp.Catalog() || c.Version <= was.Version || c.Region != demo.Region || catalog.Validate(c) != nil {
				t.Fatalf("catalog %d → %d from %s", was.Version, c.Version, topic)
			}
		}
		if after.planogram != before.planogram {
			var was, now msg.Planogram
			if err := errors.Join(json.Unmarshal([]byte(before.planogram), &was), json.Unmarshal([]byte(after.planogram), &now)); err != nil {
				t.Fatal(err)
			}
			if topic == tp.Cmd() || topic == tp.Ack() || now.Version <= was.Version || now.CabinetID != testCabinet {
				t.Fatalf("planogram %d → %d from %s", was.Version, now.Version, topic)
			}
		}
		if (after.session != before.session || after.inMemory != before.inMemory) && topic != tp.Cmd() {
			t.Fatalf("session changed by a message on %s", topic)
		}
		if after.cfg != before.cfg {
			if topic != tp.Cmd() || r.d.cfg.Validate() != nil {
				t.Fatalf("settings changed by %s to %s", topic, after.cfg)
			}
			fixed := func(c config.Config) string {
				return fmt.Sprint(c.CabinetID, c.Broker, c.TopicPrefix, c.DataDir, c.PlatformKeys, c.QRBase, c.QRRotateS, c.AckMode, c.AckWaitS, c.Region)
			}
			if fixed(r.d.cfg) != fixed(r.cfg) {
				t.Fatalf("a command changed what may not change at run time: %s", after.cfg)
			}
		}
		added, removed := outboxDiff(before.outbox, after.outbox)
		if len(removed) > 0 && topic != tp.Ack() {
			t.Fatalf("a message on %s removed outbox entries %v", topic, removed)
		}
		for _, e := range added {
			if e.Kind == outbox.KindSale && topic != tp.Cmd() {
				t.Fatalf("a message on %s queued a sale", topic)
			}
		}
	})
}

// FuzzAck feeds signed ack payloads to the Device. One that does not
// decode, or acknowledges beyond the last sale, releases nothing (a
// bad_message alarm at most); one that does releases exactly the pending
// sales up to its seq, and nothing else changes.
func FuzzAck(f *testing.F) {
	r := newInboundRig(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		defer r.use(t)()
		if !slices.ContainsFunc(r.pending(), func(e outbox.Entry) bool { return e.Kind == outbox.KindSale }) {
			// Everything acknowledged: queue the sales again.
			if _, err := r.d.ledger.ResendSales(r.d.topics.Sale(), 1, r.counters().LastSeq); err != nil {
				t.Fatal(err)
			}
		}
		before := r.state()
		if err := r.deliver(r.d.topics.Ack(), sealBytes(payload)); err != nil {
			t.Fatalf("handle: %v", err)
		}
		after := r.state()
		var a msg.Ack
		if err := msg.DecodeStrict(payload, &a); err != nil || a.SalesUptoSeq > before.counters.LastSeq {
			if after.bad != before.bad+map[bool]uint64{true: 1}[err != nil] {
				t.Fatalf("bad_message count %d → %d (decode: %v)", before.bad, after.bad, err)
			}
			onlyBadMessage(t, before, after)
			return
		}
		var want []outbox.Entry
		for _, e := range before.outbox {
			if e.Kind != outbox.KindSale || e.SaleSeq > a.SalesUptoSeq {
				want = append(want, e)
			}
		}
		before.outbox = want
		if d := stateDiff(before, after); d != "" {
			t.Fatalf("ack %d: state differs from the expected:\n%s", a.SalesUptoSeq, d)
		}
	})
}

// inboundSeeds are FuzzInbound's seeds: (topic, payload, sign).
func inboundSeeds() map[string][]any {
	tp := msg.Topics{Prefix: msg.DefaultPrefix, Cabinet: testCabinet}
	cmd := func(id, typ string, f func(c *msg.Command)) msg.Command {
		c := msg.Command{ID: id, Type: typ, CabinetID: testCabinet, IssuedAt: msg.At(fuzzT0), ExpiresAt: msg.At(fuzzT0.Add(time.Minute))}
		if f != nil {
			f(&c)
		}
		return c
	}
	cat2 := demo.Catalog(fuzzT0)
	cat2.Version = 2
	plan2 := demo.Planogram(testCabinet)
	plan2.Version = 2
	plan2.Shelves[1].SKUs = plan2.Shelves[1].SKUs[:1]
	goodCat := seal(cat2)
	var env msg.Envelope
	if err := json.Unmarshal(goodCat, &env); err != nil {
		panic(err)
	}
	forged := env
	raw, err := base64.RawURLEncoding.DecodeString(env.Payload)
	if err != nil {
		panic(err)
	}
	forged.Payload = base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte(`"price_fen":2680`), []byte(`"price_fen":1`), 1))
	unknownKid := env
	unknownKid.Kid = "plat-other"
	asJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	catJSON := asJSON(cat2)
	unlock := cmd("cmd-unlock", msg.CmdUnlock, func(c *msg.Command) {
		c.SessionID, c.QRNonce, c.LimitFen, c.Door = "S-1", "AQIDBAUGBwgJCgsM", 50000, 1
		c.Buyer = &msg.Buyer{Ref: "wx-1", Kind: msg.BuyerUnion, Org: "呼和浩特市总工会"}
	})
	setting := func(k, v string) func(c *msg.Command) {
		return func(c *msg.Command) { c.Settings = map[string]json.RawMessage{k: json.RawMessage(v)} }
	}
	expired := func(c *msg.Command) {
		c.IssuedAt, c.ExpiresAt = msg.At(fuzzT0.Add(-time.Hour)), msg.At(fuzzT0.Add(-time.Minute))
	}
	return map[string][]any{
		"catalog-v2":            {tp.Catalog(), goodCat, false},
		"planogram-v2":          {tp.Planogram(), seal(plan2), false},
		"ack-1":                 {tp.Ack(), seal(msg.Ack{SalesUptoSeq: 1, At: msg.At(fuzzT0)}), false},
		"ack-beyond":            {tp.Ack(), seal(msg.Ack{SalesUptoSeq: 999, At: msg.At(fuzzT0)}), false},
		"cmd-config":            {tp.Cmd(), seal(cmd("cmd-config", msg.CmdConfig, setting("heartbeat_s", "15"))), false},
		"cmd-config-broker":     {tp.Cmd(), seal(cmd("cmd-config-2", msg.CmdConfig, setting("broker", `"tcp://evil:1"`))), false},
		"cmd-reboot":            {tp.Cmd(), seal(cmd("cmd-reboot", msg.CmdReboot, nil)), false},
		"cmd-resend":            {tp.Cmd(), seal(cmd("cmd-resend", msg.CmdResend, func(c *msg.Command) { c.FromSeq, c.ToSeq = 1, 3 })), false},
		"cmd-cancel":            {tp.Cmd(), seal(cmd("cmd-cancel", msg.CmdCancel, func(c *msg.Command) { c.SessionID = "S-9" })), false},
		"cmd-unlock":            {tp.Cmd(), seal(unlock), false},
		"cmd-expired":           {tp.Cmd(), seal(cmd("cmd-old", msg.CmdReboot, expired)), false},
		"cmd-other-cabinet":     {tp.Cmd(), seal(cmd("cmd-other", msg.CmdReboot, func(c *msg.Command) { c.CabinetID = "NM-150102-0008" })), false},
		"signed-dup-price":      {tp.Catalog(), bytes.Replace(catJSON, []byte(`"version":2`), []byte(`"version":2,"version":3`), 1), true},
		"signed-bad-price":      {tp.Catalog(), bytes.Replace(catJSON, []byte(`"price_fen":2680`), []byte(`"price_fen":-2680`), 1), true},
		"signed-planogram-junk": {tp.Planogram(), []byte(`{"version":3,"cabinet_id":"` + testCabinet + `","shelves":[{"shelf":99,"door":1,"skus":["XX"]}]}`), true},
		"signed-id-control":     {tp.Cmd(), asJSON(cmd("cmd\x00", msg.CmdReboot, nil)), true},
		"signed-ack-string":     {tp.Ack(), []byte(`{"sales_upto_seq":"3","at":null}`), true},
		"forged-catalog":        {tp.Catalog(), asJSON(forged), false},
		"unknown-kid":           {tp.Catalog(), asJSON(unknownKid), false},
		"unsigned-catalog":      {tp.Catalog(), catJSON, false},
		"trailing-garbage":      {tp.Ack(), append(seal(msg.Ack{SalesUptoSeq: 1}), "}"...), false},
		"garbage":               {tp.Cmd(), []byte("\x00\xff{"), false},
		"empty":                 {tp.Planogram(), []byte{}, false},
		"other-topic":           {tp.Prefix + "/c/" + testCabinet + "/state", goodCat, false},
		"other-cabinet-topic":   {tp.Prefix + "/c/NM-150102-0008/cmd", seal(cmd("cmd-x", msg.CmdReboot, nil)), false},
		"wildcard-topic":        {tp.Prefix + "/#", goodCat, false},
	}
}

func ackSeeds() map[string][]byte {
	return map[string][]byte{
		"upto-1":         []byte(`{"sales_upto_seq":1,"at":"2026-11-26T03:00:00.000Z"}`),
		"upto-3":         []byte(`{"sales_upto_seq":3,"at":"2026-11-26T03:00:00.000Z"}`),
		"upto-0":         []byte(`{"sales_upto_seq":0,"at":null}`),
		"beyond":         []byte(`{"sales_upto_seq":4,"at":null}`),
		"max-uint64":     []byte(`{"sales_upto_seq":18446744073709551615,"at":null}`),
		"negative":       []byte(`{"sales_upto_seq":-1,"at":null}`),
		"string":         []byte(`{"sales_upto_seq":"3","at":null}`),
		"duplicate-key":  []byte(`{"sales_upto_seq":1,"sales_upto_seq":3,"at":null}`),
		"case-variant":   []byte(`{"sales_upto_seq":1,"Sales_Upto_Seq":3}`),
		"unknown-field":  []byte(`{"sales_upto_seq":1,"sale_ids":["x"]}`),
		"trailing":       []byte(`{"sales_upto_seq":1}]`),
		"bad-time":       []byte(`{"sales_upto_seq":1,"at":"9999-12-31T23:59:59-23:59"}`),
		"null":           []byte(`null`),
		"missing-fields": []byte(`{}`),
	}
}

func TestFuzzSeedsCommitted(t *testing.T) {
	in := map[string][]byte{}
	for name, a := range inboundSeeds() {
		in[name] = fuzzseed.File(a[0], a[1], a[2])
	}
	fuzzseed.Check(t, "FuzzInbound", in)
	acks := map[string][]byte{}
	for name, p := range ackSeeds() {
		acks[name] = fuzzseed.File(p)
	}
	fuzzseed.Check(t, "FuzzAck", acks)
}
