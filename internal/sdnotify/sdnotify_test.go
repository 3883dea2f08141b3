package sdnotify

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/internal/clocktest"
)

// listen is the service manager's end: a unixgram socket at name (a path
// or an @abstract name) and the datagrams it receives.
func listen(t *testing.T, name string) <-chan string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return got
}

func recv(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram")
		return ""
	}
}

// none checks that nothing arrived: every send is synchronous (the
// datagram is queued on the socket when Notify returns), so a message sent
// after the ones already read would be there behind a marker sent now.
func none(t *testing.T, n *Notifier, got <-chan string) {
	t.Helper()
	if err := n.Notify("MARKER=1"); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got); s != "MARKER=1" {
		t.Fatalf("unexpected datagram %q", s)
	}
}

func TestNotifyPathSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	got := listen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	n, err := FromEnv()
	if err != nil || !n.Enabled() {
		t.Fatalf("FromEnv = %v, %v", n, err)
	}
	for _, tc := range []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{n.Watchdog, "WATCHDOG=1"},
		{func() error { return n.Status("serving\nline two") }, "STATUS=serving line two"},
		{n.Stopping, "STOPPING=1"},
	} {
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		if s := recv(t, got); s != tc.want {
			t.Errorf("got %q, want %q", s, tc.want)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	b := make([]byte, 8)
	rand.Read(b)
	name := "@bangfu-sdnotify-test-" + hex.EncodeToString(b)
	got := listen(t, name)
	n, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got); s != "READY=1" {
		t.Fatalf("got %q", s)
	}
}

func TestNotifyUnsetIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := FromEnv()
	if err != nil || n != nil || n.Enabled() {
		t.Fatalf("FromEnv without NOTIFY_SOCKET = %v, %v", n, err)
	}
	for _, f := range []func() error{n.Ready, n.Watchdog, n.Stopping} {
		if err := f(); err != nil {
			t.Fatalf("no-op notifier: %v", err)
		}
	}
	if NewPinger(n, time.Second, nil).Ping() {
		t.Fatal("a pinger without a socket says it sent")
	}
}

func TestNotifyBadSocket(t *testing.T) {
	for _, s := range []string{"relative.sock", "@", "vsock:2:1234"} {
		if _, err := New(s); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
	// A socket nobody listens on is an error the caller sees.
	n, err := New(filepath.Join(t.TempDir(), "gone.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err == nil {
		t.Fatal("sent to a socket that does not exist")
	}
}

func TestParseWatchdog(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       string
	}{
		{"", "", 0, ""},
		{"30000000", "", 30 * time.Second, ""},
		{"30000000", "42", 30 * time.Second, ""},
		{"30000000", "43", 0, ""}, // another process's watchdog
		{"500", "", 500 * time.Microsecond, ""},
		{"0", "", 0, "positive"},
		{"-5", "", 0, "positive"},
		{"30s", "", 0, "positive"},
		{"99999999999999999999", "", 0, "positive"},
		{"18446744073709551", "", 0, "too large"},
		{"30000000", "x", 0, "not a pid"},
	} {
		got, err := ParseWatchdog(tc.usec, tc.pid, 42)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseWatchdog(%q, %q) = %v, %v; want %v, %q", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", "")
	if d, err := WatchdogInterval(); d != 2*time.Second || err != nil {
		t.Fatalf("WatchdogInterval = %v, %v", d, err)
	}
}

// Ping is rate-limited to half the interval on the injected clock.
func TestPingerRate(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	got := listen(t, sock)
	n, err := New(sock)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New()
	p := NewPinger(n, 10*time.Second, clk.Now)
	if !p.Ping() {
		t.Fatal("first ping not sent")
	}
	if s := recv(t, got); s != "WATCHDOG=1" {
		t.Fatalf("got %q", s)
	}
	for range 100 { // a busy loop calling Ping every tick
		if p.Ping() {
			t.Fatal("ping sent before half the interval")
		}
	}
	clk.Advance(4999 * time.Millisecond)
	if p.Ping() {
		t.Fatal("ping sent before half the interval")
	}
	none(t, n, got)
	clk.Advance(time.Millisecond)
	if !p.Ping() {
		t.Fatal("no ping at half the interval")
	}
	if s := recv(t, got); s != "WATCHDOG=1" {
		t.Fatalf("got %q", s)
	}
	// A loop that stops calling Ping sends nothing, however long it is
	// stuck: the manager's timer runs out.
	clk.Advance(time.Hour)
	none(t, n, got)
	if p.Err() != nil {
		t.Fatal(p.Err())
	}
}

func TestPingerKeepsSendError(t *testing.T) {
	n, err := New(filepath.Join(t.TempDir(), "gone.sock"))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPinger(n, time.Second, clocktest.New().Now)
	if p.Ping() || p.Err() == nil {
		t.Fatal("a failed ping reported as sent")
	}
	if NewPinger(n, 0, nil).Ping() {
		t.Fatal("a pinger without a watchdog interval sent")
	}
}
