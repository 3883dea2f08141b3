package telemetry

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/bangfu/cabinet/internal/clocktest"
	"github.com/bangfu/cabinet/internal/logx"
)

// paho's lines are process-wide: tests that do not look at them keep them
// out of their output, as the links they start log to discard.
func TestMain(m *testing.M) {
	RoutePahoLogs(discard)
	os.Exit(m.Run())
}

// recHandler records what reaches it.
type recHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recHandler) WithGroup(string) slog.Handler      { return h }

type line struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *recHandler) lines() []line {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []line
	for _, r := range h.recs {
		l := line{level: r.Level, msg: r.Message, attrs: map[string]string{}}
		r.Attrs(func(a slog.Attr) bool {
			l.attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, l)
	}
	return out
}

func (h *recHandler) find(match func(line) bool) []line {
	var out []line
	for _, l := range h.lines() {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// routePaho sends paho's lines to log for the rest of the test.
func routePaho(t *testing.T, log *slog.Logger) {
	t.Helper()
	prev := pahoSink.Load()
	RoutePahoLogs(log)
	t.Cleanup(func() { pahoSink.Store(prev) })
}

// Each of paho's package loggers arrives at the routed handler, tagged
// src=paho, a level down, rate-limited per text; its spurious "BUG BUG
// BUG" line on every connection end arrives at debug.
func TestPahoLoggersRouted(t *testing.T) {
	rec := &recHandler{}
	clk := clocktest.New()
	routePaho(t, slog.New(logx.New(rec, logx.Options{Now: clk.Now})))

	mqtt.ERROR.Println(mqtt.CLI, "dial tcp 127.0.0.1:41234: connect: connection refused")
	mqtt.ERROR.Println(mqtt.CLI, "dial tcp 127.0.0.1:41234: connect: connection refused")
	mqtt.ERROR.Println(mqtt.CLI, "dial tcp 127.0.0.1:41999: connect: connection refused") // another port, same key
	mqtt.CRITICAL.Printf("%smemorystore get: message %d not found", mqtt.STR, 7)
	mqtt.WARN.Println(mqtt.STR, "memorystore wiped")
	mqtt.ERROR.Println(mqtt.CLI, "BUG BUG BUG reconnection function is nil", nil)
	mqtt.DEBUG.Println(mqtt.NET, "obound msg to write", 3)
	mqtt.DEBUG.Println(mqtt.NET, "obound msg to write", 3) // trace is not limited

	got := rec.lines()
	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelWarn, "[client] dial tcp 127.0.0.1:41234: connect: connection refused"},
		{slog.LevelError, "[store] memorystore get: message 7 not found"},
		{slog.LevelDebug, "[store] memorystore wiped"},
		{slog.LevelDebug, "[client] BUG BUG BUG reconnection function is nil <nil>"},
		{logx.LevelTrace, "[net] obound msg to write 3"},
		{logx.LevelTrace, "[net] obound msg to write 3"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].level != w.level || got[i].msg != w.msg || got[i].attrs["src"] != "paho" {
			t.Errorf("line %d: %v %q %v; want %v %q src=paho", i, got[i].level, got[i].msg, got[i].attrs, w.level, w.msg)
		}
		if _, ok := got[i].attrs[logx.LimitKey]; ok {
			t.Errorf("line %d carries the limit attribute: %v", i, got[i].attrs)
		}
	}
	clk.Advance(time.Minute)
	mqtt.ERROR.Println(mqtt.CLI, "dial tcp 127.0.0.1:41234: connect: connection refused")
	if l := rec.lines()[len(want)]; l.attrs[logx.SuppressedKey] != "2" {
		t.Fatalf("line after the interval %+v, want suppressed=2", l)
	}
}

// A real client's lines arrive too: a link dialing a port where nothing
// listens.
func TestPahoClientLinesRouted(t *testing.T) {
	leakCheck(t)
	rec := &recHandler{}
	routePaho(t, slog.New(rec))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := linkOpts("tcp://" + addr)
	l := runLink(t, o)
	waitUntil(t, "paho's dial error at the handler", func() bool {
		return len(rec.find(func(l line) bool {
			return l.attrs["src"] == "paho" && l.level == slog.LevelWarn && strings.Contains(l.msg, "connection refused")
		})) > 0
	})
	if err := l.Stop(t); err != nil {
		t.Fatal(err)
	}
}

// acceptCloser accepts connections and closes them at once (a broker that
// refuses to talk), counting them: each is one connect attempt.
type acceptCloser struct {
	ln net.Listener
	mu sync.Mutex
	n  int
	wg sync.WaitGroup
}

func startAcceptCloser(t *testing.T) *acceptCloser {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptCloser{ln: ln}
	a.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			a.mu.Lock()
			a.n++
			a.mu.Unlock()
		}
	})
	t.Cleanup(func() { ln.Close(); a.wg.Wait() })
	return a
}

func (a *acceptCloser) attempts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// The link's own "mqtt connect failed" is written once per interval however
// often it retries, and the next one says how many attempts it stood for.
func TestLinkConnectFailureRateLimited(t *testing.T) {
	leakCheck(t)
	acc := startAcceptCloser(t)
	rec := &recHandler{}
	clk := clocktest.New()
	o := linkOpts("tcp://" + acc.ln.Addr().String())
	o.MinBackoff, o.MaxBackoff = time.Millisecond, 2*time.Millisecond
	o.Logger = slog.New(logx.New(rec, logx.Options{Now: clk.Now})) // Opts.Logger already limited: used as is
	l := runLink(t, o)
	failed := func() []line {
		return rec.find(func(l line) bool { return l.msg == "mqtt connect failed" })
	}
	waitUntil(t, "five connect attempts", func() bool { return acc.attempts() >= 5 })
	waitUntil(t, "the first failure logged", func() bool { return len(failed()) > 0 })
	if n := len(failed()); n != 1 {
		t.Fatalf("%d connect failures logged within the interval, want 1", n)
	}
	clk.Advance(time.Minute)
	waitUntil(t, "a failure logged after the interval", func() bool { return len(failed()) == 2 })
	if err := l.Stop(t); err != nil {
		t.Fatal(err)
	}
	// Five attempts had begun before the clock moved: at least three
	// more had failed and been counted.
	second := failed()[1]
	if n, err := strconv.Atoi(second.attrs[logx.SuppressedKey]); err != nil || n < 3 {
		t.Fatalf("second failure line %+v: want suppressed ≥ 3", second)
	}
	if n := len(failed()); n != 2 {
		t.Fatalf("%d failure lines, want 2", n)
	}
}

// paho v1.5.1 logs "BUG BUG BUG reconnection function is nil" at ERROR
// whenever a connection of a client without AutoReconnect ends (upstream
// issue #697): a broker going away shows it, and it must arrive at debug.
func TestPahoNilReconnectLineDemoted(t *testing.T) {
	leakCheck(t)
	rec := &recHandler{}
	routePaho(t, slog.New(rec))
	b := startBroker(t, "127.0.0.1:0")
	l := runLink(t, linkOpts(b.URL()))
	waitUntil(t, "link up", l.Connected)
	b.Close()
	bug := func(l line) bool { return strings.Contains(l.msg, pahoNilReconnect) }
	waitUntil(t, "paho's nil-reconnect line", func() bool { return len(rec.find(bug)) > 0 })
	for _, l := range rec.find(bug) {
		if l.level != slog.LevelDebug {
			t.Errorf("%v %q, want it at DEBUG", l.level, l.msg)
		}
	}
	if err := l.Stop(t); err != nil {
		t.Fatal(err)
	}
}
