package telemetry

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bangfu/cabinet/internal/clocktest"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// outTopics are the cabinet → platform topics the drain publishes on.
var outTopics = []string{testTopics.Sale(), testTopics.Alarm(), testTopics.Reply(), testTopics.Restock()}

// pubLog records the drain's Published callbacks (called on its goroutine).
type pubLog struct {
	mu sync.Mutex
	es []outbox.Entry
	at []time.Time
}

func (p *pubLog) add(e outbox.Entry, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.es = append(p.es, e)
	p.at = append(p.at, at)
}

func (p *pubLog) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.es)
}

func (p *pubLog) get(i int) (outbox.Entry, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.es[i], p.at[i]
}

// runDrain runs d until the test ends (its cleanup runs before the link's
// and the file's, which were registered earlier).
func runDrain(t testing.TB, d *Drainer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("drain Run: %v", err)
			}
		case <-time.After(hangGuard):
			t.Error("drain Run did not return after cancel")
		}
	})
}

// checkSigned opens every message with the cabinet's public key and
// compares it with the entries, in order.
func checkSigned(t testing.TB, ring msg.KeyRing, got []message, want []outbox.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		payload, kid, err := ring.Open(m.Payload)
		if err != nil {
			t.Fatalf("message %d on %s does not verify: %v", i, m.Topic, err)
		}
		if m.Topic != want[i].Topic || kid != testCabinet || !bytes.Equal(payload, want[i].Payload) {
			t.Fatalf("message %d: %s kid %q %s\nwant %s %s", i, m.Topic, kid, payload, want[i].Topic, want[i].Payload)
		}
		if m.Retain {
			t.Fatalf("message %d on %s retained", i, m.Topic)
		}
	}
}

// liveFirst is the order a pass publishes es in: replies, alarms and
// restocks (the live lane) first, then the sales, each in commit order.
func liveFirst(es []outbox.Entry) []outbox.Entry {
	var live, sales []outbox.Entry
	for _, e := range es {
		if e.Kind == outbox.KindSale {
			sales = append(sales, e)
		} else {
			live = append(live, e)
		}
	}
	return append(live, sales...)
}

func saleSeqs(es []outbox.Entry) []uint64 {
	var s []uint64
	for _, e := range es {
		if e.Kind == outbox.KindSale {
			s = append(s, e.SaleSeq)
		}
	}
	return s
}

// Entries go out in commit order, each as a signed envelope that verifies
// with the cabinet's public key; with platform acks, sales stay after
// their PUBACK and everything else leaves.
func TestDrainCommitOrderSignedEnvelopes(t *testing.T) {
	leakCheck(t)
	b := startBroker(t, "127.0.0.1:0")
	got := b.collect(t, outTopics...)
	l := runLink(t, linkOpts(b.URL()))
	waitUntil(t, "link up", l.Connected)
	db, ob := openOutbox(t)
	signer, ring := testKeys(t)

	// Committed before the drain starts (what a reboot finds)…
	want := []outbox.Entry{saleEntry(t, 1), plainEntry(outbox.KindAlarm, testTopics.Alarm(), 1), saleEntry(t, 2)}
	for _, e := range want {
		commit(t, db, ob, e)
	}
	rec := &pubLog{}
	runDrain(t, &Drainer{Outbox: ob, Link: l, Signer: signer, AckWait: time.Hour, Logger: discard, Published: rec.add})
	checkSigned(t, ring, got.wait(t, 3), liveFirst(want))

	// …and committed while it runs, several in one transaction.
	more := []outbox.Entry{plainEntry(outbox.KindReply, testTopics.Reply(), 1),
		plainEntry(outbox.KindRestock, testTopics.Restock(), 1), saleEntry(t, 3)}
	commit(t, db, ob, more...)
	want = append(liveFirst(want), liveFirst(more)...)
	checkSigned(t, ring, got.wait(t, 6), want)

	waitUntil(t, "non-sales removed, sales marked", func() bool {
		es := pendingOf(t, ob)
		if len(es) != 3 {
			return false
		}
		for _, e := range es {
			if e.Kind != outbox.KindSale || e.Attempts != 1 || e.PublishedAt.IsZero() {
				return false
			}
		}
		return true
	})
	if s := saleSeqs(pendingOf(t, ob)); fmt.Sprint(s) != "[1 2 3]" {
		t.Fatalf("sales left %v", s)
	}
	waitUntil(t, "published callbacks", func() bool { return rec.len() == 6 })
	for i := range 6 {
		e, _ := rec.get(i)
		if !bytes.Equal(e.Payload, want[i].Payload) {
			t.Fatalf("callback %d: %s, want %s", i, e.Payload, want[i].Payload)
		}
	}

	// Another key under the same kid does not verify: the signature is real.
	_, other := testKeys(t)
	if _, _, err := other.Open(got.all()[0].Payload); !errors.Is(err, msg.ErrBadSig) {
		t.Fatalf("open with the wrong key: %v", err)
	}
	var env msg.Envelope
	if err := json.Unmarshal(got.all()[0].Payload, &env); err != nil || env.V != 1 || env.Alg != msg.AlgEd25519 {
		t.Fatalf("envelope %+v %v", env, err)
	}
}

// With platform acks, a PUBACKed sale stays until AckSales covers it and
// is published again, byte for byte, once AckWait has passed on the
// drain's clock — a fake one here, moved by hand: not a second before,
// whatever the machine's load.
func TestDrainRepublishesUnackedSaleAfterAckWait(t *testing.T) {
	leakCheck(t)
	const ackWait, tick = time.Minute, time.Second
	b := startBroker(t, "127.0.0.1:0")
	sales := b.collect(t, testTopics.Sale())
	alarms := b.collect(t, testTopics.Alarm())
	l := runLink(t, linkOpts(b.URL()))
	waitUntil(t, "link up", l.Connected)
	db, ob := openOutbox(t)
	signer, ring := testKeys(t)
	rec := &pubLog{}
	clk := clocktest.New()
	runDrain(t, &Drainer{Outbox: ob, Link: l, Signer: signer, AckWait: ackWait, Tick: tick,
		Logger: discard, Published: rec.add, Clock: clk})
	// parked waits until the drain has finished its pass and waits for its
	// next tick (its one timer on clk).
	parked := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal("the drain did not come back to its tick")
		}
	}

	sale := saleEntry(t, 1)
	commit(t, db, ob, sale)
	sales.wait(t, 1)
	waitUntil(t, "the publish recorded", func() bool { return rec.len() == 1 })
	// Every tick up to AckWait passes without a second publish.
	for elapsed := tick; elapsed < ackWait; elapsed += tick {
		parked()
		clk.Advance(tick)
	}
	parked()
	if n := rec.len(); n != 1 {
		t.Fatalf("%d publishes before AckWait", n)
	}
	clk.Advance(tick) // AckWait has passed
	msgs := sales.wait(t, 2)
	if !bytes.Equal(msgs[0].Payload, msgs[1].Payload) {
		t.Fatalf("republished copy differs:\n%s\n%s", msgs[0].Payload, msgs[1].Payload)
	}
	checkSigned(t, ring, msgs, []outbox.Entry{sale, sale})
	waitUntil(t, "two publishes recorded", func() bool { return rec.len() >= 2 })
	_, at1 := rec.get(0)
	_, at2 := rec.get(1)
	if gap := at2.Sub(at1); gap != ackWait {
		t.Fatalf("republished %v after the first publish on the drain's clock, want AckWait %v", gap, ackWait)
	}
	es := pendingOf(t, ob)
	if len(es) != 1 || es[0].SaleSeq != 1 || es[0].Attempts < 2 {
		t.Fatalf("sale left the outbox without a platform ack: %+v", es)
	}

	n, err := ob.AckSales(1)
	if err != nil || n != 1 {
		t.Fatalf("AckSales: %d %v", n, err)
	}
	// A later entry goes through a later pass; the acked sale is gone for good.
	commit(t, db, ob, plainEntry(outbox.KindAlarm, testTopics.Alarm(), 1))
	alarms.wait(t, 1)
	waitUntil(t, "outbox empty", func() bool { return len(pendingOf(t, ob)) == 0 })
}

// With broker acks the PUBACK releases sales too.
func TestDrainBrokerAckRemovesSalesOnPuback(t *testing.T) {
	leakCheck(t)
	b := startBroker(t, "127.0.0.1:0")
	got := b.collect(t, outTopics...)
	l := runLink(t, linkOpts(b.URL()))
	waitUntil(t, "link up", l.Connected)
	db, ob := openOutbox(t)
	signer, ring := testKeys(t)
	want := []outbox.Entry{saleEntry(t, 1), saleEntry(t, 2), plainEntry(outbox.KindAlarm, testTopics.Alarm(), 1), saleEntry(t, 3)}
	commit(t, db, ob, want...)
	runDrain(t, &Drainer{Outbox: ob, Link: l, Signer: signer, AckMode: AckBroker,
		AckWait: 50 * time.Millisecond, Tick: 10 * time.Millisecond, Logger: discard})
	checkSigned(t, ring, got.wait(t, 4), liveFirst(want))
	waitUntil(t, "outbox empty", func() bool { return len(pendingOf(t, ob)) == 0 })
}

// After a broker restart the link has a new epoch: every sale still
// waiting for the platform's ack is published again at once, not after
// AckWait or the next tick (both an hour here), in commit order, followed
// by what was committed while the link was down. Nothing is lost.
func TestDrainRepublishesAfterReconnect(t *testing.T) {
	leakCheck(t)
	b1 := startBroker(t, "127.0.0.1:0")
	got1 := b1.collect(t, outTopics...)
	l := runLink(t, linkOpts(b1.URL()))
	waitUntil(t, "link up", l.Connected)
	db, ob := openOutbox(t)
	signer, ring := testKeys(t)
	rec := &pubLog{}
	runDrain(t, &Drainer{Outbox: ob, Link: l, Signer: signer, AckWait: time.Hour, Tick: time.Hour,
		Logger: discard, Published: rec.add})

	before := []outbox.Entry{saleEntry(t, 1), saleEntry(t, 2), saleEntry(t, 3)}
	for _, e := range before {
		commit(t, db, ob, e)
	}
	checkSigned(t, ring, got1.wait(t, 3), before)
	waitUntil(t, "sales marked published", func() bool { return rec.len() == 3 })

	b1.Close()
	waitUntil(t, "link down", func() bool { return !l.Connected() })
	during := []outbox.Entry{saleEntry(t, 4), plainEntry(outbox.KindAlarm, testTopics.Alarm(), 1)}
	commit(t, db, ob, during...)
	if n := len(pendingOf(t, ob)); n != 5 {
		t.Fatalf("%d entries while down, want 5", n)
	}

	var got2 *collector
	startBroker(t, b1.addr, func(b *testBroker) { got2 = b.collect(t, outTopics...) })
	want := liveFirst(append(append([]outbox.Entry(nil), before...), during...))
	checkSigned(t, ring, got2.wait(t, 5), want)
	if l.Epoch() != 2 {
		t.Fatalf("epoch %d", l.Epoch())
	}
	waitUntil(t, "alarm removed, sales kept", func() bool {
		return fmt.Sprint(saleSeqs(pendingOf(t, ob))) == "[1 2 3 4]" && len(pendingOf(t, ob)) == 4
	})
	if n, err := ob.AckSales(4); err != nil || n != 4 {
		t.Fatalf("AckSales: %d %v", n, err)
	}
}

// ---- unit tests of the pass and the wake-ups, with a fake link ----

type fakeLink struct {
	mu       sync.Mutex
	up       bool
	epoch    uint64
	upCh     chan struct{}
	changed  chan struct{}
	pubs     []message
	failFrom int // publishes from this index on fail with failErr; < 0: never
	failErr  error
	checks   atomic.Int64 // Connected calls: one per pass
}

func newFakeLink(up bool) *fakeLink {
	f := &fakeLink{upCh: make(chan struct{}), changed: make(chan struct{}), failFrom: -1}
	if up {
		f.set(true)
	}
	return f
}

func (f *fakeLink) set(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up == up {
		return
	}
	f.up = up
	if up {
		f.epoch++
		close(f.upCh)
	} else {
		f.upCh = make(chan struct{})
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeLink) Publish(_ context.Context, topic string, _ byte, retained bool, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up {
		return ErrNotConnected
	}
	if f.failFrom >= 0 && len(f.pubs) >= f.failFrom {
		return f.failErr
	}
	f.pubs = append(f.pubs, message{topic, bytes.Clone(payload), retained})
	return nil
}

func (f *fakeLink) Connected() bool {
	f.checks.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up
}

func (f *fakeLink) Up() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upCh
}

func (f *fakeLink) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeLink) Epoch() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch
}

func (f *fakeLink) published() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pubs)
}

func newTestDrainer(t testing.TB, ob *outbox.Outbox, link Publisher) *Drainer {
	signer, _ := testKeys(t)
	d := &Drainer{Outbox: ob, Link: link, Signer: signer, AckWait: time.Hour, Tick: time.Hour, Logger: discard}
	d.init()
	return d
}

// While the link is down nothing is published, marked or removed; when it
// drops in the middle of a pass, only what the broker acknowledged moves.
func TestDrainNothingRemovedWhileDown(t *testing.T) {
	db, ob := openOutbox(t)
	commit(t, db, ob, saleEntry(t, 1), plainEntry(outbox.KindAlarm, testTopics.Alarm(), 1),
		saleEntry(t, 2), plainEntry(outbox.KindReply, testTopics.Reply(), 1))
	before := pendingOf(t, ob)

	f := newFakeLink(false)
	d := newTestDrainer(t, ob, f)
	if d.pass(context.Background()) {
		t.Fatal("pass while down reported more to do")
	}
	if f.published() != 0 {
		t.Fatalf("%d publishes while down", f.published())
	}
	if fmt.Sprint(pendingOf(t, ob)) != fmt.Sprint(before) {
		t.Fatal("outbox changed while down")
	}

	for _, failErr := range []error{ErrNotConnected, context.DeadlineExceeded} {
		t.Run(failErr.Error(), func(t *testing.T) {
			db, ob := openOutbox(t)
			commit(t, db, ob, saleEntry(t, 1), plainEntry(outbox.KindAlarm, testTopics.Alarm(), 1),
				saleEntry(t, 2), plainEntry(outbox.KindReply, testTopics.Reply(), 1))
			f := newFakeLink(true)
			// The alarm and the reply go first (the live lane) and get
			// PUBACKs; then the link fails on sale 1.
			f.failFrom, f.failErr = 2, failErr
			d := newTestDrainer(t, ob, f)
			if d.pass(context.Background()) {
				t.Fatal("failed pass reported more to do")
			}
			es := pendingOf(t, ob)
			if len(es) != 2 || es[0].SaleSeq != 1 || es[0].Attempts != 0 ||
				es[1].SaleSeq != 2 || es[1].Attempts != 0 {
				t.Fatalf("after a failure mid-pass: %+v", es)
			}
		})
	}
}

// Batch bounds the publishes of one pass; sales waiting for the platform's
// ack do not count against it. A new epoch makes them due again.
func TestDrainBatchBoundsOnePass(t *testing.T) {
	db, ob := openOutbox(t)
	for i := range 8 {
		commit(t, db, ob, plainEntry(outbox.KindAlarm, testTopics.Alarm(), i))
	}
	f := newFakeLink(true)
	d := newTestDrainer(t, ob, f)
	d.Batch = 3
	for i, want := range []struct {
		more  bool
		total int
		left  int
	}{{true, 3, 5}, {true, 6, 2}, {false, 8, 0}, {false, 8, 0}} {
		more := d.pass(context.Background())
		if more != want.more || f.published() != want.total || len(pendingOf(t, ob)) != want.left {
			t.Fatalf("pass %d: more=%v published=%d left=%d, want %+v", i, more, f.published(), len(pendingOf(t, ob)), want)
		}
	}

	for seq := uint64(1); seq <= 4; seq++ {
		commit(t, db, ob, saleEntry(t, seq))
	}
	f = newFakeLink(true)
	d = newTestDrainer(t, ob, f)
	d.Batch = 2
	steps := []struct {
		bump  bool // new epoch before the pass
		more  bool
		total int
	}{
		{false, true, 2},  // sales 1, 2
		{false, false, 4}, // 1, 2 wait for the ack; 3, 4
		{false, false, 4}, // all wait
		{true, true, 6},   // reconnected: 1, 2 again, more due
		{false, false, 8}, // 3, 4 again
	}
	for i, s := range steps {
		if s.bump {
			f.set(false)
			f.set(true)
		}
		more := d.pass(context.Background())
		if more != s.more || f.published() != s.total {
			t.Fatalf("step %d: more=%v published=%d, want %+v", i, more, f.published(), s)
		}
	}
	if n := len(pendingOf(t, ob)); n != 4 {
		t.Fatalf("%d sales left, want 4 (no platform ack yet)", n)
	}
	// A restarted drain has no proof of any PUBACK: it sends them all again.
	f2 := newFakeLink(true)
	newTestDrainer(t, ob, f2).pass(context.Background())
	if f2.published() != 4 {
		t.Fatalf("restarted drain published %d, want 4", f2.published())
	}
}

// A typo in the ack mode must not turn into "release sales on PUBACK".
func TestDrainUnknownAckModeKeepsSales(t *testing.T) {
	db, ob := openOutbox(t)
	commit(t, db, ob, saleEntry(t, 1))
	f := newFakeLink(true)
	signer, _ := testKeys(t)
	d := &Drainer{Outbox: ob, Link: f, Signer: signer, AckMode: "Broker ", Logger: discard}
	d.init()
	d.pass(context.Background())
	es := pendingOf(t, ob)
	if f.published() != 1 || len(es) != 1 || es[0].Attempts != 1 {
		t.Fatalf("published %d, left %+v", f.published(), es)
	}
}

// Nonsense settings fall back to the defaults instead of busy-looping,
// panicking or republishing on every pass.
func TestDrainDefaults(t *testing.T) {
	db, ob := openOutbox(t)
	commit(t, db, ob, saleEntry(t, 1))
	signer, _ := testKeys(t)
	f := newFakeLink(true)
	d := &Drainer{Outbox: ob, Link: f, Signer: signer, Batch: -1, Tick: -time.Second, AckWait: -time.Second, Logger: discard}
	d.init()
	if d.AckMode != AckPlatform || d.Batch != 64 || d.Tick != time.Second || d.AckWait != time.Minute {
		t.Fatalf("defaults: %+v", d)
	}
	for range 3 {
		if d.pass(context.Background()) {
			t.Fatal("pass reported more with one entry")
		}
	}
	if f.published() != 1 {
		t.Fatalf("published %d, want 1 (no republish inside AckWait)", f.published())
	}
}

// Run reacts to the link's transitions without waiting for a tick, and does
// not spin while the link is steadily up or down.
func TestDrainRunWakesOnTransitionsWithoutSpinning(t *testing.T) {
	leakCheck(t)
	db, ob := openOutbox(t)
	f := newFakeLink(false)
	signer, _ := testKeys(t)
	runDrain(t, &Drainer{Outbox: ob, Link: f, Signer: signer, AckWait: time.Hour, Tick: time.Hour, Logger: discard})

	commit(t, db, ob, saleEntry(t, 1))
	waitUntil(t, "a pass after the wake", func() bool { return f.checks.Load() >= 2 })
	f.set(true)
	waitUntil(t, "published once the link is up", func() bool { return f.published() == 1 })

	// Up and idle: a spinning loop would make thousands of passes here.
	idle := f.checks.Load()
	time.Sleep(100 * time.Millisecond)
	if n := f.checks.Load() - idle; n > 2 {
		t.Fatalf("%d passes while idle and up", n)
	}

	// Down and up again while the drain sleeps: the sale, PUBACKed on the
	// old connection, goes again at once.
	f.set(false)
	f.set(true)
	waitUntil(t, "republished after the reconnect", func() bool { return f.published() == 2 })

	f.set(false)
	idle = f.checks.Load()
	time.Sleep(100 * time.Millisecond)
	if n := f.checks.Load() - idle; n > 2 {
		t.Fatalf("%d passes while idle and down", n)
	}
	if es := pendingOf(t, ob); len(es) != 1 {
		t.Fatalf("outbox %+v", es)
	}
}

// BenchmarkDrain measures entries per second moved from a real bbolt
// outbox to the embedded broker (publish, PUBACK, fsynced removal each).
func BenchmarkDrain(b *testing.B) {
	benchDrain(b, startBroker(b, "127.0.0.1:0").URL())
}

// A backlog larger than several pages drains in platform-ack mode with
// every sale published exactly once, in seq order, across batch-limited
// passes (the cursor carries on where the last pass stopped); acks then
// release them all, and a reconnect republishes what is still unacked.
func TestDrainBacklogAcrossPagesOnceInOrder(t *testing.T) {
	db, ob := openOutbox(t)
	const n = 3*pageSize + 17
	es := make([]outbox.Entry, 0, n)
	for i := range n {
		es = append(es, saleEntry(t, uint64(i+1)))
	}
	commit(t, db, ob, es...)
	f := newFakeLink(true)
	d := newTestDrainer(t, ob, f)
	d.Batch = 50
	passes := 0
	for d.pass(context.Background()) {
		passes++
		if passes > n {
			t.Fatal("drain never finished the backlog")
		}
	}
	if f.published() != n {
		t.Fatalf("published %d, want each of %d once", f.published(), n)
	}
	ring := msg.KeyRing{d.Signer.Kid: d.Signer.Key.Public().(ed25519.PublicKey)}
	for i, m := range f.pubs {
		var s msg.Sale
		if _, err := ring.OpenInto(m.Payload, &s); err != nil || s.Seq != uint64(i+1) {
			t.Fatalf("publish %d: seq %d err %v, want seq %d", i, s.Seq, err, i+1)
		}
	}
	// Nothing more is due before AckWait.
	if d.pass(context.Background()) || f.published() != n {
		t.Fatalf("a pass with everything awaiting acks published %d more", f.published()-n)
	}
	// A reconnect makes the unacked ones due again, from the head.
	if _, err := ob.AckSales(n - 10); err != nil {
		t.Fatal(err)
	}
	f.set(false)
	f.set(true)
	for d.pass(context.Background()) {
	}
	if got := f.published() - n; got != 10 {
		t.Fatalf("after reconnect republished %d, want the 10 unacked", got)
	}
}

// A reply queued behind a backlog of sales goes out first, and the sales
// go out in seq order at no more than SaleRate a second.
func TestDrainLiveLaneAndSaleRate(t *testing.T) {
	db, ob := openOutbox(t)
	for i := 1; i <= 300; i++ {
		commit(t, db, ob, saleEntry(t, uint64(i)))
	}
	commit(t, db, ob, plainEntry(outbox.KindReply, testTopics.Reply(), 1))
	f := newFakeLink(true)
	d := newTestDrainer(t, ob, f)
	d.Batch, d.SaleRate = 1000, 100
	t0 := time.Now()
	d.pass(context.Background())
	f.mu.Lock()
	first := f.pubs[0].Topic
	n := len(f.pubs)
	f.mu.Unlock()
	if first != testTopics.Reply() {
		t.Fatalf("first publish on %q, want the reply ahead of the sales", first)
	}
	// One second's burst (SaleRate) of sales, plus the reply.
	if n != 101 {
		t.Fatalf("%d publishes in the first pass, want the reply and 100 sales", n)
	}
	// Half a second later (plus however long the passes took on this
	// machine), 100/s more.
	d.tokensAt = d.tokensAt.Add(-500 * time.Millisecond)
	d.pass(context.Background())
	most := 50 + int(100*time.Since(t0).Seconds()) + 1
	if got := f.published() - n; got < 50 || got > most {
		t.Fatalf("%d sales after half a second at 100/s, want 50..%d", got, most)
	}
	es := pendingOf(t, ob)
	var seqs []uint64
	for _, e := range es {
		if e.Attempts > 0 {
			seqs = append(seqs, e.SaleSeq)
		}
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("published sales %v are not the first ones in seq order", seqs)
		}
	}
}
