package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// pahoSink is where paho's package-level loggers write. paho reads its
// logger globals from every client goroutine, so they are set once, at
// init, before any client exists; later only this pointer changes.
var pahoSink atomic.Pointer[slog.Logger]

func init() {
	mqtt.ERROR = pahoLogger{slog.LevelError}
	mqtt.CRITICAL = pahoLogger{slog.LevelError}
	// paho warns about routine store housekeeping: keep it at debug.
	mqtt.WARN = pahoLogger{slog.LevelDebug}
}

// bridgePahoLogs routes paho's logs to l (the first caller wins: paho's
// loggers are process-wide, not per client).
func bridgePahoLogs(l *slog.Logger) {
	pahoSink.CompareAndSwap(nil, l.With("src", "paho"))
}

type pahoLogger struct{ level slog.Level }

func (p pahoLogger) log(s string) {
	l := pahoSink.Load()
	if l == nil {
		l = slog.Default().With("src", "paho")
	}
	l.Log(context.Background(), p.level, strings.TrimSpace(s))
}

func (p pahoLogger) Println(v ...any)               { p.log(fmt.Sprintln(v...)) }
func (p pahoLogger) Printf(format string, v ...any) { p.log(fmt.Sprintf(format, v...)) }
