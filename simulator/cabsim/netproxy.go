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

// proxy is one cabinet's link to the broker: a loopback TCP relay the
// cabinet's config points at, so the simulator can cut that one cabinet's
// network (POST …/network) without touching the broker or the others.
type proxy struct {
	ln     net.Listener
	target string // broker host:port
	scheme string
	log    *slog.Logger

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{} // both ends of every relayed connection
	wg    sync.WaitGroup
}

// newProxy listens on a free loopback port for a relay to brokerURL, or
// returns nil when the URL is not plain TCP (a TLS broker checks its
// name, which a relay on 127.0.0.1 would not carry).
func newProxy(brokerURL string, log *slog.Logger) (*proxy, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, fmt.Errorf("cabsim: broker %q: %w", brokerURL, err)
	}
	if u.Scheme != "tcp" && u.Scheme != "mqtt" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cabsim: network relay: %w", err)
	}
	return &proxy{ln: ln, target: u.Host, scheme: u.Scheme, log: log, conns: map[net.Conn]struct{}{}}, nil
}

// URL is the broker URL the cabinet uses.
func (p *proxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// Run relays connections until ctx ends, then closes everything and
// waits for its goroutines.
func (p *proxy) Run(ctx context.Context) error {
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
	defer p.mu.Unlock()
	for c := range p.conns {
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
