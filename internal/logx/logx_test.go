package logx

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bangfu/cabinet/internal/clocktest"
)

// out is a text handler's output without times, one string per line.
type out struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *out) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *out) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := strings.TrimSpace(o.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func newLogger(t *testing.T, o Options) (*slog.Logger, *out, *clocktest.Clock) {
	t.Helper()
	w := &out{}
	clk := clocktest.New()
	if o.Now == nil {
		o.Now = clk.Now
	}
	text := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
	return slog.New(New(text, o)), w, clk
}

func TestLimitOnePerKeyPerInterval(t *testing.T) {
	log, w, clk := newLogger(t, Options{Every: time.Minute})
	for range 5 {
		log.Warn("mqtt connect failed", Limit("connect"), "err", "refused")
	}
	log.Warn("door sensor", Limit("door1"))
	log.Info("no key: never limited")
	log.Info("no key: never limited")
	want := []string{
		`level=WARN msg="mqtt connect failed" err=refused`,
		`level=WARN msg="door sensor"`,
		`level=INFO msg="no key: never limited"`,
		`level=INFO msg="no key: never limited"`,
	}
	if got := w.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Just short of the interval: still quiet.
	clk.Advance(time.Minute - time.Nanosecond)
	log.Warn("mqtt connect failed", Limit("connect"), "err", "refused")
	if n := len(w.lines()); n != 4 {
		t.Fatalf("%d lines before the interval ran out, want 4", n)
	}
	// Once it has, the next line passes and says how many it hid.
	clk.Advance(time.Nanosecond)
	log.Warn("mqtt connect failed", Limit("connect"), "err", "refused")
	got := w.lines()
	if len(got) != 5 || got[4] != `level=WARN msg="mqtt connect failed" err=refused suppressed=5` {
		t.Fatalf("lines %q: want a fifth with suppressed=5", got)
	}
	// The count starts again from there.
	clk.Advance(time.Minute)
	log.Warn("mqtt connect failed", Limit("connect"), "err", "refused")
	if got := w.lines(); got[5] != `level=WARN msg="mqtt connect failed" err=refused` {
		t.Fatalf("line after a clean interval %q", got[5])
	}
}

// A key given with With applies to every record of that logger; the limit
// attribute itself never reaches the output.
func TestLimitWithLogger(t *testing.T) {
	log, w, _ := newLogger(t, Options{})
	th := log.With(Limit("thermometer"), "sensor", "28-0001")
	th.Warn("thermometer", "err", "crc")
	th.Warn("thermometer", "err", "timeout") // same key, other text: still limited
	got := w.lines()
	if len(got) != 1 || got[0] != `level=WARN msg=thermometer sensor=28-0001 err=crc` {
		t.Fatalf("lines %q", got)
	}
}

// Loggers derived with different attributes (two cabinets in one process)
// limit the same key apart; the same attributes share it.
func TestLimitScopedByAttrs(t *testing.T) {
	log, w, _ := newLogger(t, Options{})
	a, b := log.With("cabinet", "A"), log.With("cabinet", "B")
	a.Warn("door sensor", Limit("door1"))
	b.Warn("door sensor", Limit("door1"))
	log.With("cabinet", "A").Warn("door sensor", Limit("door1")) // a's scope again
	a.WithGroup("g").Warn("door sensor", Limit("door1"))         // another scope
	got := w.lines()
	want := []string{
		`level=WARN msg="door sensor" cabinet=A`,
		`level=WARN msg="door sensor" cabinet=B`,
		`level=WARN msg="door sensor" cabinet=A`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A clock set back does not silence a key until it catches up.
func TestLimitClockSetBack(t *testing.T) {
	w := &out{}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	log := slog.New(New(slog.NewTextHandler(w, nil), Options{Now: func() time.Time { return now }}))
	log.Warn("x", Limit("k"))
	now = now.Add(-24 * time.Hour)
	log.Warn("x", Limit("k"))
	if n := len(w.lines()); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
}

// Ever-new keys cannot grow the table without bound: past MaxKeys they
// share one key, and keys whose interval ran out make room again.
func TestLimitMaxKeys(t *testing.T) {
	log, w, clk := newLogger(t, Options{MaxKeys: 3})
	for i := range 10 {
		log.Warn("read error", Limit(fmt.Sprintf("port %d", i)))
	}
	// Three own keys, then the overflow key once.
	if n := len(w.lines()); n != 4 {
		t.Fatalf("%d lines, want 4: %q", n, w.lines())
	}
	h := log.Handler().(*Handler)
	if n := len(h.st.keys); n > 4 {
		t.Fatalf("%d keys remembered, want at most MaxKeys+1", n)
	}
	clk.Advance(time.Minute)
	log.Warn("read error", Limit("port 42"))
	got := w.lines()
	if len(got) != 5 || strings.Contains(got[4], "suppressed") {
		t.Fatalf("after the interval a new key passes on its own: %q", got)
	}
	if n := len(h.st.keys); n != 1 {
		t.Fatalf("%d keys after the sweep, want 1", n)
	}
}

// A level the wrapped handler does not take is neither written nor
// counted as suppressed.
func TestLimitDisabledLevelNotCounted(t *testing.T) {
	w := &out{}
	clk := clocktest.New()
	log := slog.New(New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}), Options{Now: clk.Now}))
	log.Warn("x", Limit("k"))
	log.Debug("x", Limit("k"))
	clk.Advance(time.Hour)
	log.Warn("x", Limit("k"))
	got := w.lines()
	if len(got) != 2 || strings.Contains(got[1], "suppressed") {
		t.Fatalf("lines %q", got)
	}
}

func TestWrapOnce(t *testing.T) {
	base := slog.New(slog.DiscardHandler)
	l := Wrap(base, Options{})
	if _, ok := l.Handler().(*Handler); !ok {
		t.Fatal("Wrap did not wrap")
	}
	if again := Wrap(l, Options{}); again != l {
		t.Fatal("Wrap wrapped a limited logger again")
	}
	if derived := l.With("cabinet", "A"); Wrap(derived, Options{}) != derived {
		t.Fatal("Wrap wrapped a derived limited logger again")
	}
	if Wrap(nil, Options{}) == nil {
		t.Fatal("Wrap(nil) is nil")
	}
}

// Many goroutines on the same keys: one line per key per interval, and
// every suppressed record is accounted for on the next line. Run with
// -race.
func TestLimitConcurrent(t *testing.T) {
	log, w, clk := newLogger(t, Options{})
	const goroutines, each, keys = 16, 200, 4
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			l := log.With("cabinet", "A")
			for i := range each {
				l.Warn("tick", Limit(fmt.Sprintf("k%d", (g+i)%keys)))
			}
		})
	}
	wg.Wait()
	if n := len(w.lines()); n != keys {
		t.Fatalf("%d lines, want %d (one per key)", n, keys)
	}
	clk.Advance(time.Minute)
	total := 0
	for k := range keys {
		log.With("cabinet", "A").Warn("tick", Limit(fmt.Sprintf("k%d", k)))
	}
	for _, line := range w.lines()[keys:] {
		var n int
		i := strings.Index(line, "suppressed=")
		if i < 0 {
			t.Fatalf("line %q has no suppressed count", line)
		}
		fmt.Sscanf(line[i:], "suppressed=%d", &n)
		total += n
	}
	if want := goroutines*each - keys; total != want {
		t.Fatalf("suppressed %d in all, want %d", total, want)
	}
}
