package telemetry

// Test helpers: an embedded mochi broker on a free loopback port, a TCP
// proxy that can cut connections abruptly, a Link runner, a real bbolt
// outbox in t.TempDir(). telemetry's tests import neither firmware nor
// simulator.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

const testCabinet = "NM-150102-0007"

var (
	discard     = slog.New(slog.DiscardHandler)
	testTopics  = msg.Topics{Prefix: msg.DefaultPrefix, Cabinet: testCabinet}
	listenerSeq atomic.Int64
	inlineSubID atomic.Int64
)

// hangGuard bounds every wait in these tests. It only turns a hang into a
// failure; nothing asserts that anything is fast.
const hangGuard = 30 * time.Second

// leakCheck must be the first call of a test: cleanups run last-in
// first-out, so goleak runs after the broker, links and files are closed.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// waitUntil polls cond until it holds or the hang guard fires.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	tk := time.NewTicker(2 * time.Millisecond)
	defer tk.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting: %s", what)
		case <-tk.C:
		}
	}
}

// ---- embedded broker ----

type testBroker struct {
	srv  *mochi.Server
	ln   *trackingListener
	lid  string
	addr string // host:port the listener really bound
	hook *brokerHook
	once sync.Once
}

func (b *testBroker) URL() string { return "tcp://" + b.addr }

func (b *testBroker) hasClient(id string) bool {
	_, ok := b.srv.Clients.Get(id)
	return ok
}

// brokerHook counts the last wills the broker issued and records the
// protocol version of every CONNECT.
type brokerHook struct {
	mochi.HookBase
	wills    atomic.Int64
	mu       sync.Mutex
	versions []byte
}

func (h *brokerHook) ID() string { return "test-hook" }
func (h *brokerHook) Provides(b byte) bool {
	return b == mochi.OnWillSent || b == mochi.OnConnect
}
func (h *brokerHook) OnWillSent(*mochi.Client, packets.Packet) { h.wills.Add(1) }
func (h *brokerHook) OnConnect(_ *mochi.Client, pk packets.Packet) error {
	h.mu.Lock()
	h.versions = append(h.versions, pk.ProtocolVersion)
	h.mu.Unlock()
	return nil
}
func (h *brokerHook) connects() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.versions...)
}

// Close stops the broker the way a crash or a power cut does: every
// connection is cut, with no DISCONNECT, so clients' wills are published.
//
// It works around a deadlock in mochi v2.7.9 (mochi-mqtt/server issue
// #488, unfixed there): Server.Close walks the clients with
// Clients.GetByListener, which takes the same RWMutex read lock twice, so
// a client connecting or disconnecting at that moment (our link's own
// disconnect, or its reconnect) deadlocks the broker for good. So the
// listener is closed first with a no-op closer (which makes Server.Close
// skip that walk), the connections are cut here, and Server.Close is left
// with waiting for the client goroutines and stopping its loop and hooks.
func (b *testBroker) Close() {
	b.once.Do(func() {
		b.srv.Listeners.Close(b.lid, func(string) {})
		b.ln.cutAll()
		_ = b.srv.Close()
	})
}

func (b *testBroker) retained(topic string) (packets.Packet, bool) {
	ms := b.srv.Topics.Messages(topic)
	if len(ms) == 0 {
		return packets.Packet{}, false
	}
	return ms[0], true
}

// startBroker runs a mochi broker on addr ("127.0.0.1:0" for a free port).
// before runs after the listener is bound but before the broker accepts
// connections: inline subscriptions made there miss nothing.
func startBroker(t testing.TB, addr string, before ...func(*testBroker)) *testBroker {
	t.Helper()
	return startBrokerAuth(t, addr, true, before...)
}

// startBrokerAuth is startBroker; with allow false no auth hook is added,
// and mochi refuses every CONNECT.
func startBrokerAuth(t testing.TB, addr string, allow bool, before ...func(*testBroker)) *testBroker {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: discard})
	if allow {
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil { // mochi denies everyone without an auth hook
			t.Fatal(err)
		}
	}
	wh := &brokerHook{}
	if err := srv.AddHook(wh, nil); err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("broker listen on %s: %v", addr, err)
	}
	tl := &trackingListener{Listener: inner}
	lid := fmt.Sprintf("t%d", listenerSeq.Add(1))
	l := listeners.NewNet(lid, tl)
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	b := &testBroker{srv: srv, ln: tl, lid: lid, addr: l.Address(), hook: wh}
	t.Cleanup(b.Close)
	for _, f := range before {
		f(b)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	return b
}

// trackingListener remembers the connections it accepted, so that Close
// can cut them (see testBroker.Close).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut { // accepted in the instant before the listener closed
		_ = c.Close()
		return c, nil // mochi's read fails at once; it never reaches the client list
	}
	l.conns = append(l.conns, c)
	return c, nil
}

func (l *trackingListener) cutAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	_ = l.Listener.Close()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

type message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// collector records what an inline subscription receives. mochi calls
// inline handlers synchronously on the publisher's read loop, so one
// publisher's messages arrive in its order.
type collector struct {
	mu   sync.Mutex
	msgs []message
}

func (b *testBroker) collect(t testing.TB, filters ...string) *collector {
	t.Helper()
	c := &collector{}
	h := func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		c.mu.Lock()
		c.msgs = append(c.msgs, message{pk.TopicName, bytes.Clone(pk.Payload), pk.FixedHeader.Retain})
		c.mu.Unlock()
	}
	for _, f := range filters {
		if err := b.srv.Subscribe(f, int(inlineSubID.Add(1)), h); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *collector) all() []message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]message(nil), c.msgs...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// wait returns the first n messages once they have arrived.
func (c *collector) wait(t testing.TB, n int) []message {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d messages at the broker", n), func() bool { return c.len() >= n })
	return c.all()[:n]
}

// ---- a proxy that cuts the link's TCP connection abruptly ----

type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	refuse bool
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

func (p *cutProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.refuse {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
		p.mu.Unlock()
	}
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// Cut resets every proxied connection (no FIN handshake, no MQTT
// DISCONNECT: what a pulled cable or a dead modem looks like) and, while
// refuse is set, closes new connections at once.
func (p *cutProxy) Cut(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = refuse
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) Allow() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

func (p *cutProxy) Close() {
	_ = p.ln.Close()
	p.Cut(true)
	p.wg.Wait()
}

// ---- a running Link ----

type runningLink struct {
	*Link
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func linkOpts(broker string) Opts {
	return Opts{
		Broker: broker, ClientID: testCabinet, Topics: testTopics, FW: "1.2.3-test",
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		ConnectTimeout: 5 * time.Second, Logger: discard,
	}
}

func runLink(t testing.TB, o Opts) *runningLink {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningLink{Link: l, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- l.Run(ctx) }()
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Stop cancels the link's context and waits for Run to return.
func (r *runningLink) Stop(t testing.TB) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(hangGuard):
			t.Fatal("Link.Run did not return after cancel")
		}
	})
	return r.err
}

func upNow(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ---- a real bbolt outbox ----

func openOutbox(t testing.TB) (*bolt.DB, *outbox.Outbox) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ledger.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				t.Errorf("bbolt check: %v", err)
			}
			return nil
		})
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := db.Update(outbox.Init); err != nil {
		t.Fatal(err)
	}
	return db, outbox.New(db)
}

// commit appends entries in one transaction and wakes the drain, as the
// ledger does.
func commit(t testing.TB, db *bolt.DB, ob *outbox.Outbox, es ...outbox.Entry) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		for _, e := range es {
			if _, err := outbox.Append(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ob.Notify()
}

func saleEntry(t testing.TB, seq uint64) outbox.Entry {
	t.Helper()
	now := time.Now()
	s := msg.Sale{
		SaleID: msg.NewID(now), Seq: seq, CabinetID: testCabinet, SessionID: fmt.Sprintf("S-%d", seq),
		Buyer:    msg.Buyer{Ref: "u1", Kind: msg.BuyerPerson},
		OpenedAt: msg.At(now), ClosedAt: msg.At(now), SettledAt: msg.At(now), Status: msg.SaleExact,
		Lines: []msg.SaleLine{{SKU: "NM-0001", CertNo: "C-1", Name: "羊肉", SupplierID: "S1", Supplier: "草原",
			OriginCode: "150121", Shelf: 1, Qty: 2, UnitPriceFen: 2990, AmountFen: 5980}},
		TotalFen:       5980,
		Evidence:       []msg.Evidence{{Shelf: 1, BeforeG: 8012.4, AfterG: 7012.9, DeltaG: -999.5, ResidualG: 0.5}},
		CatalogVersion: 42, FW: "1.2.3-test",
	}
	p, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return outbox.Entry{Kind: outbox.KindSale, Topic: testTopics.Sale(), SaleSeq: seq, Payload: p, CreatedAt: now.UTC()}
}

func plainEntry(kind, topic string, n int) outbox.Entry {
	return outbox.Entry{Kind: kind, Topic: topic, Payload: fmt.Appendf(nil, `{"%s":%d}`, kind, n), CreatedAt: time.Now().UTC()}
}

func testKeys(t testing.TB) (msg.Signer, msg.KeyRing) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return msg.Signer{Kid: testCabinet, Key: priv}, msg.KeyRing{testCabinet: pub}
}

func pendingOf(t testing.TB, ob *outbox.Outbox) []outbox.Entry {
	t.Helper()
	es, err := ob.Pending(0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}
