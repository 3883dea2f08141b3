// Package broker embeds a mochi-mqtt broker for the simulator and the
// tests: loopback only, every client allowed, its logs routed to slog.
// It owns nothing but the broker's life; production uses an external
// broker (EMQX, Mosquitto) and never this package.
package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

const listenerID = "tcp"

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	ln   *connListener
	addr string

	once     sync.Once
	closeErr error
}

// Start listens on addr (host:port; "127.0.0.1:0" picks a free port) and
// serves until Close. Only loopback addresses are accepted: the simulator
// is not a production broker.
func Start(addr string, log *slog.Logger) (*Broker, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("broker: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("broker: %q is not a loopback address", addr)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// mochi logs every dropped connection at warn: routine for a simulator
	// whose cabinets come and go, so only its errors pass.
	quiet := slog.New(minLevel{log.Handler(), slog.LevelError}).With("src", "mochi")
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quiet})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil { // mochi refuses everyone without an auth hook
		return nil, fmt.Errorf("broker: auth hook: %w", err)
	}
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", addr, err)
	}
	ln := &connListener{Listener: inner}
	if err := srv.AddListener(listeners.NewNet(listenerID, ln)); err != nil {
		inner.Close()
		return nil, fmt.Errorf("broker: listener: %w", err)
	}
	if err := srv.Serve(); err != nil { // Serve starts the listeners and returns
		ln.cutAll()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	return &Broker{srv: srv, ln: ln, addr: inner.Addr().String()}, nil
}

// Addr is host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as paho wants it.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Server exposes mochi for tests that inject faults through hooks.
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Close stops the broker and drops every client, as a crash would. It may
// be called more than once (mochi panics on a second Close of its own).
//
// mochi v2.7.9's own shutdown walks its client list under a read lock it
// takes twice, and deadlocks if a client connects or leaves meanwhile
// (upstream issue #488). So the listener is closed without that walk and
// the connections are cut here; mochi's read loops then end on their own.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.srv.Listeners.Close(listenerID, func(string) {})
		b.ln.cutAll()
		b.closeErr = b.srv.Close()
	})
	return b.closeErr
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(a), m.min}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{m.Handler.WithGroup(g), m.min} }

// connListener remembers the connections it accepted so Close can cut
// them.
type connListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut { // accepted in the instant before Close
		c.Close()
		return c, nil // mochi's first read fails and the client is never added
	}
	l.conns = append(l.conns, c)
	return c, nil
}

func (l *connListener) cutAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	l.Listener.Close()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}
