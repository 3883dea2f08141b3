// Package telemetry is the cabinet's link to the platform: the MQTT client
// (paho) and its mutual TLS to the broker, the drain that moves the bbolt
// outbox onto the wire, the backoff between connection attempts, and the
// routing of paho's process-wide log lines (RoutePahoLogs). The
// wire types live in telemetry/msg, the durable queue in telemetry/outbox.
//
// telemetry never imports firmware or simulator and decides nothing about
// sessions or sales: it delivers bytes and hands inbound messages over.
package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/bangfu/cabinet/internal/logx"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// ErrNotConnected is returned by Publish while the link is down.
var ErrNotConnected = errors.New("telemetry: not connected")

// Inbound is one message received from the broker.
type Inbound struct {
	Topic    string
	Payload  []byte
	Received time.Time
}

// Opts configures a Link.
type Opts struct {
	Broker   string // tcp://host:port, or ssl://host:port (also tls://, mqtts://) with TLS
	ClientID string // the cabinet id: one client id per cabinet
	// TLS names the CA, certificate and key files for a TLS broker; it
	// must be nil for tcp:// and set for ssl://, tls:// and mqtts://. The
	// files are read at every connection attempt.
	TLS    *TLSFiles
	Topics msg.Topics
	FW     string
	// Subscribe lists the topics to subscribe to (QoS 1) on every connect.
	Subscribe []string
	// Dial, when set, opens each connection to a tcp:// broker instead of
	// the network stack: the simulator's in-process cabinets dial through
	// it so that each one's network can be cut alone. It gets a context
	// bounded by ConnectTimeout.
	Dial func(ctx context.Context) (net.Conn, error)

	KeepAlive      time.Duration // default 30s
	ConnectTimeout time.Duration // default 10s
	MinBackoff     time.Duration // default 500ms
	MaxBackoff     time.Duration // default 60s
	InboundDepth   int           // default 256
	// Logger takes the link's own lines, rate-limited with logx (wrapped
	// unless it already is). paho's lines go where RoutePahoLogs says.
	Logger *slog.Logger
	// Now stamps the state messages and what arrives (Inbound.Received):
	// the device's clock (default time.Now). The link's timeouts and
	// backoff are the network's and run on real time.
	Now func() time.Time
}

func (o *Opts) defaults() {
	if o.KeepAlive == 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 60 * time.Second
	}
	if o.InboundDepth == 0 {
		o.InboundDepth = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Logger = logx.Wrap(o.Logger, logx.Options{})
}

// Link keeps one MQTT connection alive and exposes publish and inbound.
//
// Each connection uses a fresh paho client: paho clients must not be reused
// after Disconnect, and our outbox, not paho's store, is the record, so
// nothing is lost by starting clean.
type Link struct {
	o        Opts
	host     string // the broker URL's host, the default TLS server name
	inbound  chan Inbound
	dropped  atomic.Uint64
	oversize atomic.Uint64 // of dropped: payloads over msg.MaxPayloadBytes
	epoch    atomic.Uint64 // incremented on every successful connect

	mu      sync.Mutex
	client  mqtt.Client   // nil while down
	up      chan struct{} // closed while up; replaced when the link goes down
	changed chan struct{} // closed and replaced at every up or down transition
}

// New checks the options and returns a Link; Run connects it.
func New(o Opts) (*Link, error) {
	o.defaults()
	if o.Broker == "" {
		return nil, errors.New("telemetry: no broker address")
	}
	if !msg.ValidCabinetID(o.ClientID) {
		return nil, fmt.Errorf("telemetry: bad client id %q", o.ClientID)
	}
	u, err := url.Parse(o.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("telemetry: bad broker address %q", o.Broker)
	}
	if err := CheckTLS(o.Broker, o.TLS); err != nil {
		return nil, err
	}
	if o.Dial != nil && o.TLS != nil {
		return nil, errors.New("telemetry: a custom dialer is for tcp:// brokers only")
	}
	if o.TLS != nil {
		f := *o.TLS // the caller's struct may change; the files are read per attempt
		o.TLS = &f
	}
	return &Link{o: o, host: u.Hostname(), inbound: make(chan Inbound, o.InboundDepth),
		up: make(chan struct{}), changed: make(chan struct{})}, nil
}

// customDial is paho's connection opener for Opts.Dial, or nil (paho's
// own dialer) without it.
func (l *Link) customDial(ctx context.Context) mqtt.OpenConnectionFunc {
	if l.o.Dial == nil {
		return nil
	}
	return func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, l.o.ConnectTimeout)
		defer cancel()
		return l.o.Dial(dctx)
	}
}

// Inbound delivers received messages. Handlers never block paho: when the
// channel is full, the message is dropped and counted (commands expire and
// acks are cumulative, so a later one repairs the loss).
func (l *Link) Inbound() <-chan Inbound { return l.inbound }

// Dropped counts inbound messages dropped because the consumer was slow or
// the payload was over msg.MaxPayloadBytes.
func (l *Link) Dropped() uint64 { return l.dropped.Load() }

// Oversize counts the inbound payloads dropped for their size.
func (l *Link) Oversize() uint64 { return l.oversize.Load() }

// Epoch counts successful connections; a change means the session with the
// broker was new and in-flight deliveries are unproven.
func (l *Link) Epoch() uint64 { return l.epoch.Load() }

// Connected reports whether the link is up.
func (l *Link) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client != nil
}

// Up returns a channel closed when the link next comes up (or is up now).
func (l *Link) Up() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// Changed returns a channel closed at the link's next transition (up or
// down) after the call. Unlike Up, it is not closed in the steady state, so
// a loop can wait on it without spinning; take it before checking the
// state, and a transition in between is not missed.
func (l *Link) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// transitionLocked wakes everyone waiting on Changed; l.mu must be held.
func (l *Link) transitionLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Publish sends one message and waits for the broker's PUBACK (QoS 1) or
// the write (QoS 0), or for ctx.
func (l *Link) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	l.mu.Lock()
	c := l.client
	l.mu.Unlock()
	if c == nil {
		return ErrNotConnected
	}
	return wait(ctx, c.Publish(topic, qos, retained, payload))
}

func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run connects and keeps connecting with jittered backoff until ctx ends.
// On return the link has published its offline state (when it could) and
// disconnected. Cancelled in the middle of a connect attempt, it returns
// when that attempt ends (at most ConnectTimeout).
func (l *Link) Run(ctx context.Context) error {
	bo := NewBackoff(l.o.MinBackoff, l.o.MaxBackoff, nil)
	for {
		lost := make(chan error, 1)
		c, err := l.connect(ctx, lost)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.o.Logger.Warn("mqtt connect failed", logx.Limit("connect"), "broker", l.o.Broker, "err", err)
			if !bo.Sleep(ctx) {
				return nil
			}
			continue
		}
		bo.Reset()
		// A flapping broker (up, lost, up again every second) writes a
		// line a minute of each, not a line a cycle.
		l.o.Logger.Info("mqtt connected", logx.Limit("connected"), "broker", l.o.Broker, "tls", l.o.TLS != nil)
		l.mu.Lock()
		l.client = c
		l.epoch.Add(1)
		close(l.up)
		l.transitionLocked()
		l.mu.Unlock()

		select {
		case <-ctx.Done():
			l.goDown()
			off, _ := json.Marshal(msg.State{Online: false, FW: l.o.FW, At: ptr(msg.At(l.o.Now()))})
			pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := wait(pctx, c.Publish(l.o.Topics.State(), 1, true, off)); err != nil {
				l.o.Logger.Warn("publish offline state", "err", err)
			}
			cancel()
			c.Disconnect(250)
			return nil
		case err := <-lost:
			l.goDown()
			l.o.Logger.Warn("mqtt connection lost", logx.Limit("lost"), "err", err)
			if !bo.Sleep(ctx) {
				return nil
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func (l *Link) goDown() {
	l.mu.Lock()
	l.client = nil
	l.up = make(chan struct{})
	l.transitionLocked()
	l.mu.Unlock()
}

func (l *Link) connect(ctx context.Context, lost chan error) (mqtt.Client, error) {
	will, _ := json.Marshal(msg.State{Online: false})
	opts := mqtt.NewClientOptions()
	if l.o.TLS != nil {
		// Read now, not once in New: a certificate renewed on disk is used
		// from the next connection on.
		tc, err := l.o.TLS.Load(l.host)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
		if na := certNotAfter(tc); !na.IsZero() {
			l.o.Logger.Debug("mqtt client certificate", "not_after", na.UTC())
		}
	}
	opts.
		AddBroker(l.o.Broker).
		SetClientID(l.o.ClientID).
		SetProtocolVersion(4). // MQTT 3.1.1 only: no silent retry of every failed handshake as 3.1
		SetCleanSession(true).
		SetAutoReconnect(false). // our loop reconnects, with jitter
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetKeepAlive(l.o.KeepAlive).
		SetConnectTimeout(l.o.ConnectTimeout).
		// paho's default dialer waits 30s for TCP and the TLS handshake,
		// longer than ConnectTimeout, which Run promises as the bound.
		SetDialer(&net.Dialer{Timeout: l.o.ConnectTimeout}).
		SetCustomOpenConnectionFn(l.customDial(ctx)).
		SetWriteTimeout(10*time.Second).
		SetBinaryWill(l.o.Topics.State(), will, 1, true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	c := mqtt.NewClient(opts)
	ct := c.Connect()
	if err := wait(ctx, ct); err != nil {
		// Cancelled mid-connect: paho's attempt runs on until its own
		// ConnectTimeout and Disconnect cannot cut it short. Wait for it,
		// so that nothing of this client (a socket, a late CONNECT under
		// our client id) outlives Run.
		<-ct.Done()
		c.Disconnect(0)
		return nil, err
	}
	fail := func(err error) (mqtt.Client, error) {
		c.Disconnect(0)
		return nil, err
	}
	on, _ := json.Marshal(msg.State{Online: true, FW: l.o.FW, At: ptr(msg.At(l.o.Now()))})
	if err := wait(ctx, c.Publish(l.o.Topics.State(), 1, true, on)); err != nil {
		return fail(fmt.Errorf("publish state: %w", err))
	}
	if len(l.o.Subscribe) > 0 {
		filters := make(map[string]byte, len(l.o.Subscribe))
		for _, t := range l.o.Subscribe {
			filters[t] = 1
		}
		st := c.SubscribeMultiple(filters, l.handle)
		if err := wait(ctx, st); err != nil {
			return fail(fmt.Errorf("subscribe: %w", err))
		}
		l.logRefused(st)
	}
	return c, nil
}

// subRefused is the SUBACK return code of a refused subscription (MQTT
// 3.1.1, 3.9.3).
const subRefused = 0x80

// logRefused reports subscriptions the broker refused. paho completes the
// token without an error for them, and the cabinet would then silently
// never hear its commands: the usual cause is a broker ACL that does not
// match the cabinet id (the certificate's CN). The link stays up; what it
// can publish still flows.
func (l *Link) logRefused(t mqtt.Token) {
	st, ok := t.(*mqtt.SubscribeToken)
	if !ok {
		return
	}
	for topic, code := range st.Result() {
		if code == subRefused {
			l.o.Logger.Error("mqtt subscription refused by the broker; check its ACL", "topic", topic)
		}
	}
}

// handle runs on paho's router goroutine: copy and hand off, never block.
func (l *Link) handle(_ mqtt.Client, m mqtt.Message) {
	if len(m.Payload()) > msg.MaxPayloadBytes {
		// Refused before it is copied or queued: a flood of big payloads
		// must not fill the device's queue with things it will refuse.
		l.oversize.Add(1)
		l.dropped.Add(1)
		return
	}
	in := Inbound{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Received: l.o.Now()}
	select {
	case l.inbound <- in:
	default:
		l.dropped.Add(1)
	}
}
