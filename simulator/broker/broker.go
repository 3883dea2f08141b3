// Package broker embeds a mochi-mqtt broker for the simulator and the
// tests: loopback only, every client allowed, its logs routed to slog.
// It owns nothing but the broker's life; production uses an external
// broker (EMQX, Mosquitto) and never this package.
package broker

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
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
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log.With("src", "mochi")})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("broker: auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil { // Serve starts the listeners and returns
		srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	return &Broker{srv: srv, addr: tcp.Address()}, nil
}

// Addr is host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as paho wants it.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Server exposes mochi for tests that inject faults through hooks.
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Close stops the broker and disconnects every client. It may be called
// more than once (mochi panics on a second Close of its own).
func (b *Broker) Close() error {
	b.once.Do(func() { b.closeErr = b.srv.Close() })
	return b.closeErr
}
