package telemetry

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

var pahoOnce sync.Once

// bridgePahoLogs routes paho's package-level loggers to slog, once per
// process (they are globals).
func bridgePahoLogs(l *slog.Logger) {
	pahoOnce.Do(func() {
		mqtt.ERROR = pahoLogger{l, slog.LevelError}
		mqtt.CRITICAL = pahoLogger{l, slog.LevelError}
		mqtt.WARN = pahoLogger{l, slog.LevelDebug} // paho warns about routine store housekeeping
	})
}

type pahoLogger struct {
	l     *slog.Logger
	level slog.Level
}

func (p pahoLogger) Println(v ...any) {
	p.l.Log(nil, p.level, strings.TrimSpace(fmt.Sprintln(v...)), "src", "paho")
}

func (p pahoLogger) Printf(format string, v ...any) {
	p.l.Log(nil, p.level, strings.TrimSpace(fmt.Sprintf(format, v...)), "src", "paho")
}
