package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/bangfu/cabinet/internal/logx"
)

// paho's loggers (mqtt.ERROR, CRITICAL, WARN, DEBUG) are package globals,
// shared by every client in the process, and its lines name neither the
// client nor its client id (v1.5.1: a component such as "[client]" and a
// text). So they cannot be told apart per cabinet: they are logged once,
// process-wide, with src=paho, through the logger RoutePahoLogs was given.
// In the device binary a process is one cabinet, and that logger carries
// its id; where many cabinets share a process (the simulator) the lines
// carry none rather than a wrong one. Every Link logs, per cabinet, what
// matters of the same events itself ("mqtt connect failed", "mqtt
// connection lost", with paho's error).
//
// paho's levels are shifted one down, as their lines repeat what the link
// reports: ERROR → WARN, CRITICAL → ERROR, WARN (routine store
// housekeeping) → DEBUG, DEBUG (a line per packet) → logx.LevelTrace. Every
// line but trace is rate-limited per text (digits aside) with logx, so an
// offline cabinet writes a paho line a minute, not several per attempt.

// pahoSink is the logger RoutePahoLogs set, already limited;
// nil means slog.Default(). paho reads its logger globals from every
// client goroutine, so they are set once, at init, before any client
// exists; later only this pointer changes.
var pahoSink atomic.Pointer[slog.Logger]

// pahoDefault limits paho's lines while no logger was routed.
var pahoDefault = slog.New(logx.New(defaultHandler{}, logx.Options{}))

func init() {
	mqtt.ERROR = pahoLogger{slog.LevelWarn}
	mqtt.CRITICAL = pahoLogger{slog.LevelError}
	mqtt.WARN = pahoLogger{slog.LevelDebug}
	mqtt.DEBUG = pahoLogger{logx.LevelTrace}
}

// RoutePahoLogs sends paho's log lines, process-wide, to l (wrapped with
// logx unless it already is); nil sends them to slog.Default() again. The
// last call wins. The process that owns the logging calls it once: the
// device binary with its cabinet's logger, the simulator with its own.
func RoutePahoLogs(l *slog.Logger) {
	if l == nil {
		pahoSink.Store(nil)
		return
	}
	pahoSink.Store(logx.Wrap(l, logx.Options{}))
}

type pahoLogger struct{ level slog.Level }

func (p pahoLogger) sink() *slog.Logger {
	if l := pahoSink.Load(); l != nil {
		return l
	}
	return pahoDefault
}

func (p pahoLogger) Println(v ...any) { p.log(func() string { return fmt.Sprintln(v...) }) }
func (p pahoLogger) Printf(format string, v ...any) {
	p.log(func() string { return fmt.Sprintf(format, v...) })
}

// log formats the line only when some handler takes its level: paho calls
// DEBUG for every packet.
func (p pahoLogger) log(format func() string) {
	l := p.sink()
	ctx := context.Background()
	if !l.Enabled(ctx, p.level) {
		return
	}
	text := strings.Join(strings.Fields(format()), " ") // paho pads its component names
	level := p.level
	if strings.Contains(text, pahoNilReconnect) {
		level = slog.LevelDebug
		if !l.Enabled(ctx, level) {
			return
		}
	}
	if level == logx.LevelTrace {
		l.Log(ctx, level, text, "src", "paho")
		return
	}
	l.Log(ctx, level, text, "src", "paho", logx.Limit("paho "+level.String()+" "+digitless(text)))
}

// pahoNilReconnect is what paho v1.5.1 logs at ERROR every time a
// connection ends while AutoReconnect is off, as ours is (the link
// reconnects itself, with jitter): its connection-lost handler returns no
// reconnect function, as it should, and paho calls that a bug. No option
// avoids it short of paho reconnecting on its own. Reported upstream as
// eclipse-paho/paho.mqtt.golang#697 and fixed by #750, which no release
// holds yet (v1.5.1 is the latest); until then it is demoted to DEBUG.
const pahoNilReconnect = "BUG BUG BUG reconnection function is nil"

// digitless replaces each run of digits with '#', so that a key does not
// change with a port or a packet id.
func digitless(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inDigits := false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if !inDigits {
				b.WriteByte('#')
			}
			inDigits = true
			continue
		}
		inDigits = false
		b.WriteRune(r)
	}
	return b.String()
}

// defaultHandler is slog.Default()'s handler at the time of each record,
// so that a program that sets its default logger after start-up is
// followed.
type defaultHandler struct{}

func (defaultHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return slog.Default().Handler().Enabled(ctx, l)
}
func (defaultHandler) Handle(ctx context.Context, r slog.Record) error {
	return slog.Default().Handler().Handle(ctx, r)
}
func (defaultHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return slog.Default().Handler().WithAttrs(as)
}
func (defaultHandler) WithGroup(name string) slog.Handler {
	return slog.Default().Handler().WithGroup(name)
}
