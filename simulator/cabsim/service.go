package cabsim

// What systemd does for the bangfu-cabinet unit, emulated for process
// mode: a boot id per power-on (BANGFU_BOOT_ID), a notification socket
// (NOTIFY_SOCKET) and the watchdog (WATCHDOG_USEC): a firmware that does
// not report READY=1 within the start timeout, or stops sending
// WATCHDOG=1 for longer than the watchdog time, is killed (SIGKILL) and
// started again, like TimeoutStartSec= and WatchdogSec= do.

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The unit's TimeoutStartSec= and WatchdogSec= (packaging/deb).
const (
	DefaultStartTimeout = 2 * time.Minute
	DefaultWatchdog     = 30 * time.Second
)

var (
	startTimeout atomic.Int64
	watchdogTime atomic.Int64
)

func init() {
	startTimeout.Store(int64(DefaultStartTimeout))
	watchdogTime.Store(int64(DefaultWatchdog))
}

// SetServiceTimeouts sets the start timeout and the watchdog time process
// mode applies to firmware processes started from now on (tests use a few
// seconds), and returns a function restoring the previous values.
func SetServiceTimeouts(start, watchdog time.Duration) (restore func()) {
	ps, pw := startTimeout.Swap(int64(start)), watchdogTime.Swap(int64(watchdog))
	return func() { startTimeout.Store(ps); watchdogTime.Store(pw) }
}

// newBootID is a fresh boot id, as the kernel makes one per boot.
func newBootID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serviceWatch listens on a cabinet's notification socket for one
// firmware run.
type serviceWatch struct {
	path     string
	conn     *net.UnixConn
	start    time.Duration
	watchdog time.Duration
	ready    atomic.Bool
	last     atomic.Int64 // unix nanos of the last WATCHDOG=1 (or READY=1)
	killed   atomic.Bool
	done     chan struct{}
}

// listenService opens the notification socket beside the hardware socket.
func listenService(hwSocket string) (*serviceWatch, error) {
	path := strings.TrimSuffix(hwSocket, ".sock") + ".ntf"
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	w := &serviceWatch{path: path, conn: conn, start: time.Duration(startTimeout.Load()),
		watchdog: time.Duration(watchdogTime.Load()), done: make(chan struct{})}
	return w, nil
}

// env is what the firmware process gets.
func (w *serviceWatch) env(boot string) []string {
	return []string{"NOTIFY_SOCKET=" + w.path, "WATCHDOG_USEC=" + strconv.FormatInt(w.watchdog.Microseconds(), 10), "BANGFU_BOOT_ID=" + boot}
}

// run reads notifications and calls kill when the process misses its
// start or its watchdog, until stop is closed.
func (w *serviceWatch) run(stop <-chan struct{}, started time.Time, kill func()) {
	defer close(w.done)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := w.conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				switch line {
				case "READY=1":
					w.ready.Store(true)
					w.last.Store(time.Now().UnixNano())
				case "WATCHDOG=1":
					w.last.Store(time.Now().UnixNano())
				}
			}
		}
	}()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		switch {
		case !w.ready.Load() && now.Sub(started) > w.start:
		case w.ready.Load() && now.Sub(time.Unix(0, w.last.Load())) > w.watchdog:
		default:
			continue
		}
		w.killed.Store(true)
		kill()
		return
	}
}

// close removes the socket, after run has returned.
func (w *serviceWatch) close() {
	w.conn.Close()
	os.Remove(w.path)
}
