// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): one datagram per state change ("READY=1", "WATCHDOG=1",
// "STOPPING=1", "STATUS=…") to the unix socket named by NOTIFY_SOCKET.
//
// It is the whole of the protocol the firmware needs and imports the
// standard library only. Outside systemd (no NOTIFY_SOCKET) every call is a
// no-op, so the same binary runs under the simulator, by hand or in a test.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Notifier sends notifications to one socket. A nil *Notifier, as FromEnv
// returns outside systemd, accepts every call and sends nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a Notifier for socket: an absolute path, or an abstract
// socket name starting with '@' (as systemd sets NOTIFY_SOCKET). An empty
// socket gives a nil Notifier (no-op).
func New(socket string) (*Notifier, error) {
	switch {
	case socket == "":
		return nil, nil
	case socket[0] != '/' && socket[0] != '@':
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: want an absolute path or an @abstract name", socket)
	case len(socket) < 2:
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: empty name", socket)
	}
	// Go's net package maps a leading '@' to Linux's abstract namespace
	// (a leading NUL byte in sun_path), which is what systemd means by it.
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// FromEnv is New(os.Getenv("NOTIFY_SOCKET")).
func FromEnv() (*Notifier, error) {
	return New(os.Getenv("NOTIFY_SOCKET"))
}

// Enabled reports whether n sends anything.
func (n *Notifier) Enabled() bool { return n != nil }

// Notify sends state, one or more "KEY=value" lines, as one datagram.
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	// A fresh socket per message, as sd_notify does: the manager's socket
	// may be recreated (daemon-reexec) and nothing is held between calls.
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready tells the manager that start-up is finished (Type=notify).
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping tells the manager that the service is shutting down.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Watchdog is one keep-alive ping for WatchdogSec=.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Status sets the one-line status `systemctl status` shows.
func (n *Notifier) Status(s string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// WatchdogInterval is the watchdog timeout the manager expects pings
// within (WATCHDOG_USEC), or 0 when the watchdog is off or meant for
// another process (WATCHDOG_PID names a different pid).
func WatchdogInterval() (time.Duration, error) {
	return ParseWatchdog(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

// ParseWatchdog is WatchdogInterval on explicit values: usec and pid as the
// environment gives them, self the caller's pid.
func ParseWatchdog(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID %q: not a pid", pid)
		}
		if p != self {
			return 0, nil
		}
	}
	u, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || u == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q: want a positive number of microseconds", usec)
	}
	if u > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q: too large", usec)
	}
	return time.Duration(u) * time.Microsecond, nil
}

// Pinger sends WATCHDOG=1 at most once per half the watchdog interval, the
// rate systemd recommends, however often Ping is called. Call Ping from the
// loop whose health the watchdog stands for: when that loop stops, the
// pings stop and the manager restarts the service.
type Pinger struct {
	n     *Notifier
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last time.Time
	sent bool
	err  error
}

// NewPinger pings through n for a watchdog of interval (see
// WatchdogInterval); now is the clock (nil: time.Now). With a nil n or a
// zero interval, Ping does nothing.
func NewPinger(n *Notifier, interval time.Duration, now func() time.Time) *Pinger {
	if now == nil {
		now = time.Now
	}
	return &Pinger{n: n, every: interval / 2, now: now}
}

// Ping sends WATCHDOG=1 unless one went out less than half an interval
// ago. It reports whether it sent one; a failed send is kept for Err and
// tried again on the next call.
func (p *Pinger) Ping() bool {
	if p == nil || p.n == nil || p.every <= 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.sent && now.Sub(p.last) < p.every {
		return false
	}
	if err := p.n.Watchdog(); err != nil {
		p.err = err
		return false
	}
	p.last, p.sent, p.err = now, true, nil
	return true
}

// Err is the last send's error, nil after a successful one.
func (p *Pinger) Err() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
