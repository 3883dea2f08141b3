package cabsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"
)

// proxy is one cabinet's switch on its link to the broker, so that the
// simulator can cut that one cabinet's network (POST …/network) without
// touching the broker or the others. An in-process cabinet dials through
// it (Dial): its own socket to the broker and nothing more. A cabinet
// process is pointed at a loopback TCP relay instead (listen, Run).
type proxy struct {
	ln     net.Listener // the relay's, for a cabinet process; nil for in-process ones
	target string       // broker host:port
	scheme string
	log    *slog.Logger

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{} // both ends of every relayed connection
	wg    sync.WaitGroup
}

// errNetworkCut is what a dial through a cut network fails with.
var errNetworkCut = errors.New("cabsim: the cabinet's network is cut")

// newProxy is the switch for a link to brokerURL, or nil when the URL is
// not plain TCP (a TLS broker checks its name, which a relay on 127.0.0.1
// would not carry, and a TLS dial is the link's own). With relay it
// listens on a free loopback port for a cabinet process (URL).
func newProxy(brokerURL string, relay bool, log *slog.Logger) (*proxy, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, fmt.Errorf("cabsim: broker %q: %w", brokerURL, err)
	}
	if u.Scheme != "tcp" && u.Scheme != "mqtt" {
		return nil, nil
	}
	p := &proxy{target: u.Host, scheme: u.Scheme, log: log, conns: map[net.Conn]struct{}{}}
	if relay {
		if p.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("cabsim: network relay: %w", err)
		}
	}
	return p, nil
}

// Dial opens a connection to the broker (telemetry.Opts.Dial): refused
// while the network is cut, and closed when it is cut.
func (p *proxy) Dial(ctx context.Context) (net.Conn, error) {
	if p.Down() {
		return nil, errNetworkCut
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		return nil, errNetworkCut // cut while dialling
	}
	tc := &switchedConn{Conn: c, p: p}
	p.conns[tc] = struct{}{}
	return tc, nil
}

// switchedConn is a dialled connection that leaves the switch's set when
// closed.
type switchedConn struct {
	net.Conn
	p *proxy
}

// cut ends the connection as a lost network does for the cabinet: its
// reads see the end of the stream and its writes fail, while the socket
// stays the MQTT client's to close (closing it under the client would
// leave it writing into a closed descriptor, which it does not take for a
// lost connection). The broker sees the connection end too.
func (c *switchedConn) cut() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.CloseRead()
		tc.CloseWrite()
		return
	}
	c.Conn.Close()
}

func (c *switchedConn) Close() error {
	err := c.Conn.Close()
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	return err
}

// URL is the broker URL the cabinet uses.
func (p *proxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// Run relays connections until ctx ends, then closes everything and
// waits for its goroutines. Without a relay (ln nil) it only closes what
// Dial opened when ctx ends.
func (p *proxy) Run(ctx context.Context) error {
	if p.ln == nil {
		context.AfterFunc(ctx, p.closeAll)
		return nil
	}
	stop := context.AfterFunc(ctx, func() { p.ln.Close() })
	defer stop()
	defer func() {
		p.closeAll()
		p.wg.Wait()
	}()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("cabsim: network relay: %w", err)
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close() // refused: the cabinet sees its link fail at once
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.relay(ctx, c)
	}
}

// relay joins one cabinet connection to the broker.
func (p *proxy) relay(ctx context.Context, c net.Conn) {
	defer p.wg.Done()
	defer p.forget(c)
	d := net.Dialer{Timeout: 5 * time.Second}
	b, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		p.log.Debug("network relay: broker unreachable", "err", err)
		return
	}
	defer p.forget(b)
	p.mu.Lock()
	if p.down || ctx.Err() != nil {
		p.mu.Unlock()
		return // cut while dialling
	}
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		io.Copy(dst, src) // ends when either side closes; the other is closed below
		done <- struct{}{}
	}
	go copyHalf(b, c)
	go copyHalf(c, b)
	<-done
	c.Close()
	b.Close()
	<-done
}

// forget closes c and drops it from the set.
func (p *proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns { // outside p.mu: a switchedConn's Close takes it
		if sc, ok := c.(*switchedConn); ok {
			sc.cut()
			continue
		}
		c.Close()
	}
}

// SetDown cuts the network (every relayed connection closed, new ones
// refused) or restores it.
func (p *proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.closeAll()
	}
}

// Down reports whether the network is cut.
func (p *proxy) Down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}
