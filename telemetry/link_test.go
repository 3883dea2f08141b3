package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/bangfu/cabinet/telemetry/msg"
)

func decodeState(t testing.TB, p []byte) msg.State {
	t.Helper()
	var s msg.State
	if err := msg.DecodeStrict(p, &s); err != nil {
		t.Fatalf("state %s: %v", p, err)
	}
	return s
}

// subscriber is an ordinary MQTT client (the platform, a test tool).
func subscriber(t testing.TB, b *testBroker, topic string) <-chan mqtt.Message {
	t.Helper()
	ch := make(chan mqtt.Message, 64)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("platform-test").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := wait(ctx, c.Connect()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	if err := wait(ctx, c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { ch <- m })); err != nil {
		t.Fatal(err)
	}
	return ch
}

func next(t testing.TB, ch <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(hangGuard):
		t.Fatal("no message")
		return nil
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Opts{ClientID: testCabinet}); err == nil {
		t.Error("no broker accepted")
	}
	if _, err := New(Opts{Broker: "tcp://127.0.0.1:1", ClientID: "NM 1/#"}); err == nil {
		t.Error("client id with wildcard accepted")
	}
}

// The link connects, says it is online (retained, so a platform that
// subscribes later learns it), and on ctx cancel says it is offline
// (retained), disconnects cleanly (no will) and leaves no goroutine.
func TestLinkOnlineStateAndCleanStop(t *testing.T) {
	leakCheck(t)
	b := startBroker(t, "127.0.0.1:0")
	l := runLink(t, linkOpts(b.URL()))
	waitUntil(t, "link up", l.Connected)
	if l.Epoch() != 1 || !upNow(l.Up()) {
		t.Fatalf("epoch %d, up %v", l.Epoch(), upNow(l.Up()))
	}

	states := subscriber(t, b, testTopics.State())
	m := next(t, states)
	s := decodeState(t, m.Payload())
	if !m.Retained() || !s.Online || s.FW != "1.2.3-test" || s.At == nil || s.At.IsZero() {
		t.Fatalf("retained state: retained=%v %s", m.Retained(), m.Payload())
	}
	if !bytes.HasSuffix(m.Payload(), []byte(`Z"}`)) { // "at" is last and in UTC
		t.Fatalf("state time not RFC 3339 UTC: %s", m.Payload())
	}

	if err := l.Stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	m = next(t, states)
	s = decodeState(t, m.Payload())
	if s.Online || s.FW != "1.2.3-test" || s.At == nil {
		t.Fatalf("offline state: %s", m.Payload())
	}
	if p, ok := b.retained(testTopics.State()); !ok || decodeState(t, p.Payload).Online {
		t.Fatalf("retained state after stop: %s", p.Payload)
	}
	if l.Connected() || upNow(l.Up()) {
		t.Fatal("link still reports up after Run returned")
	}
	if err := l.Publish(context.Background(), testTopics.Alarm(), 1, false, []byte("{}")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("publish after stop: %v", err)
	}
	// A clean DISCONNECT: the broker forgets the session and sends no will.
	waitUntil(t, "broker drops the session", func() bool { return !b.hasClient(testCabinet) })
	if n := b.hook.wills.Load(); n != 0 {
		t.Fatalf("%d wills sent on a clean stop", n)
	}
}

// Inbound messages on the subscribed topics reach Inbound(); others don't.
func TestLinkInbound(t *testing.T) {
	leakCheck(t)
	b := startBroker(t, "127.0.0.1:0")
	o := linkOpts(b.URL())
	o.Subscribe = []string{testTopics.Cmd(), testTopics.Catalog()}
	l := runLink(t, o)
	waitUntil(t, "link up", l.Connected)

	// Not subscribed: the broker routes it nowhere.
	if err := b.srv.Publish(testTopics.Ack(), []byte(`ack`), false, 1); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{testTopics.Cmd(): `{"cmd":1}`, testTopics.Catalog(): `{"catalog":42}`}
	for topic, p := range want {
		if err := b.srv.Publish(topic, []byte(p), topic == testTopics.Catalog(), 1); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for len(got) < len(want) { // OrderMatters(false): any order
		select {
		case in := <-l.Inbound():
			if in.Received.IsZero() {
				t.Errorf("no receive time on %s", in.Topic)
			}
			if _, dup := got[in.Topic]; dup {
				t.Fatalf("second message on %s: %s", in.Topic, in.Payload)
			}
			got[in.Topic] = string(in.Payload)
		case <-time.After(hangGuard):
			t.Fatalf("inbound: got %v of %v", got, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("inbound %v, want %v", got, want)
	}
	if l.Dropped() != 0 {
		t.Fatalf("dropped %d", l.Dropped())
	}
}

type fakeMessage struct {
	topic   string
	payload []byte
}

func (m fakeMessage) Duplicate() bool   { return false }
func (m fakeMessage) Qos() byte         { return 1 }
func (m fakeMessage) Retained() bool    { return false }
func (m fakeMessage) Topic() string     { return m.topic }
func (m fakeMessage) MessageID() uint16 { return 1 }
func (m fakeMessage) Payload() []byte   { return m.payload }
func (m fakeMessage) Ack()              {}

// paho may reuse the buffer behind Payload() once the handler returns, so
// the handler must hand over a copy.
func TestLinkHandleCopiesPayload(t *testing.T) {
	l, err := New(linkOpts("tcp://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte(`{"id":"cmd-1"}`)
	l.handle(nil, fakeMessage{testTopics.Cmd(), buf})
	copy(buf, "XXXXXXXXXXXXXX")
	in := <-l.Inbound()
	if string(in.Payload) != `{"id":"cmd-1"}` || in.Topic != testTopics.Cmd() {
		t.Fatalf("inbound %s %q shares paho's buffer", in.Topic, in.Payload)
	}
}

// An oversize payload is dropped before it is copied or queued: a flood of
// them cannot fill the device's queue.
func TestLinkDropsOversizePayload(t *testing.T) {
	l, err := New(linkOpts("tcp://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	l.handle(nil, fakeMessage{testTopics.Cmd(), make([]byte, msg.MaxPayloadBytes+1)})
	l.handle(nil, fakeMessage{testTopics.Cmd(), []byte(`{}`)})
	if l.Oversize() != 1 || l.Dropped() != 1 {
		t.Fatalf("oversize %d dropped %d, want 1 and 1", l.Oversize(), l.Dropped())
	}
	if in := <-l.Inbound(); string(in.Payload) != `{}` {
		t.Fatalf("queued %d bytes, want only the small message", len(in.Payload))
	}
}

// A consumer that stops reading must not stall paho: messages beyond the
// channel's depth are dropped and counted, and the connection keeps working
// (PUBACKs, keep-alive and our own publishes still flow).
func TestLinkFullInboundDropsInsteadOfBlocking(t *testing.T) {
	leakCheck(t)
	b := startBroker(t, "127.0.0.1:0")
	replies := b.collect(t, testTopics.Reply())
	o := linkOpts(b.URL())
	o.Subscribe = []string{testTopics.Cmd()}
	o.InboundDepth = 1
	l := runLink(t, o)
	waitUntil(t, "link up", l.Connected)

	const n = 100
	for i := range n {
		if err := b.srv.Publish(testTopics.Cmd(), fmt.Appendf(nil, `{"n":%d}`, i), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "overflow counted", func() bool { return l.Dropped() == n-1 })

	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := l.Publish(ctx, testTopics.Reply(), 1, false, []byte(`{"ok":true}`)); err != nil {
		t.Fatalf("publish with a full inbound channel: %v", err)
	}
	replies.wait(t, 1)
	if l.Epoch() != 1 || !l.Connected() {
		t.Fatalf("connection was lost: epoch %d", l.Epoch())
	}

	<-l.Inbound() // the one that fitted
	if err := b.srv.Publish(testTopics.Cmd(), []byte(`{"n":"after"}`), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-l.Inbound():
		if string(in.Payload) != `{"n":"after"}` {
			t.Fatalf("after draining: %s", in.Payload)
		}
	case <-time.After(hangGuard):
		t.Fatal("inbound did not recover after the consumer caught up")
	}
	if l.Dropped() != n-1 {
		t.Fatalf("dropped %d, want %d", l.Dropped(), n-1)
	}
}

// When the connection dies without a DISCONNECT (cable pulled, modem
// dead), the broker publishes the retained last will {"online":false}; the
// link notices, reconnects by itself and says it is online again.
func TestLinkLastWillOnAbruptDrop(t *testing.T) {
	leakCheck(t)
	b := startBroker(t, "127.0.0.1:0")
	states := b.collect(t, testTopics.State())
	px := startProxy(t, b.addr)
	l := runLink(t, linkOpts(px.URL()))
	waitUntil(t, "link up", l.Connected)
	if s := decodeState(t, states.wait(t, 1)[0].Payload); !s.Online {
		t.Fatalf("first state %+v", s)
	}

	px.Cut(true)
	got := states.wait(t, 2)[1]
	if string(got.Payload) != `{"online":false}` {
		t.Fatalf("will payload %s", got.Payload)
	}
	if p, ok := b.retained(testTopics.State()); !ok || string(p.Payload) != `{"online":false}` {
		t.Fatalf("will not retained: %s", p.Payload)
	}
	if b.hook.wills.Load() != 1 {
		t.Fatalf("wills %d", b.hook.wills.Load())
	}
	waitUntil(t, "link notices the drop", func() bool { return !l.Connected() })
	if err := l.Publish(context.Background(), testTopics.Alarm(), 1, false, []byte("{}")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("publish while down: %v", err)
	}

	px.Allow()
	waitUntil(t, "link reconnects", func() bool { return l.Connected() && l.Epoch() == 2 })
	if s := decodeState(t, states.wait(t, 3)[2].Payload); !s.Online {
		t.Fatalf("state after reconnect %+v", s)
	}
	if p, _ := b.retained(testTopics.State()); !decodeState(t, p.Payload).Online {
		t.Fatalf("retained after reconnect: %s", p.Payload)
	}
}

// A broker restart on the same port: the link reconnects by itself (a new
// epoch), resubscribes, and messages published after the restart arrive.
func TestLinkReconnectsAfterBrokerRestart(t *testing.T) {
	leakCheck(t)
	b1 := startBroker(t, "127.0.0.1:0")
	o := linkOpts(b1.URL())
	o.Subscribe = []string{testTopics.Cmd()}
	l := runLink(t, o)
	waitUntil(t, "link up", l.Connected)
	if l.Epoch() != 1 {
		t.Fatalf("epoch %d", l.Epoch())
	}
	changed := l.Changed()

	b1.Close()
	waitUntil(t, "link notices the broker is gone", func() bool { return !l.Connected() })
	if upNow(l.Up()) {
		t.Fatal("Up closed while down")
	}
	if !upNow(changed) {
		t.Fatal("Changed not closed by going down")
	}
	if err := l.Publish(context.Background(), testTopics.Alarm(), 1, false, []byte("{}")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("publish while down: %v", err)
	}
	up := l.Up()

	b2 := startBroker(t, b1.addr)
	waitUntil(t, "link reconnects", func() bool { return l.Connected() && l.Epoch() == 2 })
	if !upNow(up) {
		t.Fatal("Up taken while down was not closed by the reconnect")
	}
	if p, ok := b2.retained(testTopics.State()); !ok || !decodeState(t, p.Payload).Online {
		t.Fatal("no online state on the restarted broker")
	}
	if err := b2.srv.Publish(testTopics.Cmd(), []byte(`{"after":"restart"}`), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-l.Inbound():
		if string(in.Payload) != `{"after":"restart"}` {
			t.Fatalf("inbound %s", in.Payload)
		}
	case <-time.After(hangGuard):
		t.Fatal("not resubscribed after the restart")
	}
}

// Cancelling while the broker is unreachable returns promptly (from the
// backoff sleep or a connect attempt) and leaks nothing.
func TestLinkStopsWhileBrokerDown(t *testing.T) {
	leakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	o := linkOpts("tcp://" + addr)
	o.MinBackoff, o.MaxBackoff = time.Millisecond, 2*time.Millisecond
	l := runLink(t, o)
	// Let it fail a few times; there is nothing to observe but time.
	time.Sleep(30 * time.Millisecond)
	if l.Connected() || l.Epoch() != 0 {
		t.Fatal("connected to nothing")
	}
	if err := l.Stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// Publish gives up when its context ends even if the broker never answers.
func TestLinkPublishHonoursContext(t *testing.T) {
	leakCheck(t)
	b := startBroker(t, "127.0.0.1:0")
	l := runLink(t, linkOpts(b.URL()))
	waitUntil(t, "link up", l.Connected)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Publish(ctx, testTopics.Alarm(), 1, false, []byte("{}"))
	// Either the PUBACK won the race or the context did; never a hang.
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("publish: %v", err)
	}
}

// A broker that accepts TCP but never answers CONNECT: cancelling Run in
// the middle of that connect must still leave nothing of paho running
// once Run has returned ("on return … disconnected").
func TestLinkStopDuringConnectLeavesNothing(t *testing.T) {
	leakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { // accepts once and ends, so goleak sees only the link's goroutines
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	o := linkOpts("tcp://" + ln.Addr().String())
	o.ConnectTimeout = 1500 * time.Millisecond // well above goleak's retries
	l := runLink(t, o)
	c, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer c.Close()
	if err := l.Stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if l.Connected() || l.Epoch() != 0 {
		t.Fatal("connected to a broker that never answered")
	}
	// goleak retries for ~0.4s, far below ConnectTimeout: a paho goroutine
	// still waiting for the CONNACK is reported.
	if err := goleak.Find(); err != nil {
		t.Fatalf("paho still running after Run returned: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("link socket not closed: %v", err)
	}
}

// The contract (docs/contract.md) fixes MQTT 3.1.1. A refused CONNECT must not be retried as
// MQTT 3.1 (paho's default when no version is set), which would double
// every failed attempt and speak a protocol the contract does not cover.
func TestLinkSpeaksOnlyMQTT311(t *testing.T) {
	leakCheck(t)
	b := startBrokerAuth(t, "127.0.0.1:0", false) // refuses everyone
	l := runLink(t, linkOpts(b.URL()))
	waitUntil(t, "several refused attempts", func() bool { return len(b.hook.connects()) >= 4 })
	if err := l.Stop(t); err != nil {
		t.Fatal(err)
	}
	for i, v := range b.hook.connects() {
		if v != 4 {
			t.Fatalf("CONNECT %d used protocol version %d, want 4 (3.1.1): %v", i, v, b.hook.connects())
		}
	}
	if l.Epoch() != 0 {
		t.Fatal("connected to a broker that refuses everyone")
	}
}
