// Package logx is the cabinet's logging policy in one slog.Handler: a
// wrapper that lets through at most one record per key per interval, so a
// standing fault (a dead sensor, an unreachable broker, a full disk) writes
// a line a minute to the SD card instead of a line a tick, and the line
// that does pass says how many it stands for (suppressed=N).
//
// A record opts in by carrying the Limit attribute, or by coming from a
// logger made with With(Limit(key)); every other record passes untouched,
// so the handler can sit at the root of a process's logging. Keys are
// scoped by the attributes and groups a logger was derived with: two
// cabinets' loggers (With("cabinet", id)) in one process limit the same
// key apart. The clock is injected (Options.Now), so tests move time
// instead of sleeping.
//
// logx imports the standard library only, so that every package of the
// module (firmware, telemetry, hal, simulator, the commands) may use it;
// keep it so.
package logx

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LimitKey is the attribute that names a record's rate-limit key. The
// handler consumes it: it never reaches the output.
const LimitKey = "limit"

// SuppressedKey is the attribute added to a record that passes after
// others under its key were suppressed: how many.
const SuppressedKey = "suppressed"

// LevelTrace is below debug: for chatter (a library's per-packet lines)
// that only a handler explicitly set this low shows.
const LevelTrace = slog.LevelDebug - 4

// Defaults of Options.
const (
	DefaultEvery   = time.Minute
	DefaultMaxKeys = 1024
)

// overflowKey is where new keys go while the table is full of live ones.
const overflowKey = "\x00overflow"

// Limit returns the attribute that puts a record under rate limiting with
// key: log.Warn("door sensor", logx.Limit("door1"), "err", err).
func Limit(key string) slog.Attr { return slog.String(LimitKey, key) }

// Options configure a Handler.
type Options struct {
	Every   time.Duration    // at most one record per key per Every; default DefaultEvery
	Now     func() time.Time // default time.Now
	MaxKeys int              // keys remembered at once (default DefaultMaxKeys); see New
}

// Handler is the rate-limiting wrapper; see the package comment. It is
// safe for concurrent use; handlers derived from it (WithAttrs, WithGroup)
// share its table.
type Handler struct {
	next  slog.Handler
	st    *state
	scope string // the attributes and groups this handler was derived with
	key   string // a limit key set with WithAttrs
}

// New wraps next. A key idle for a whole interval is forgotten when the
// table is full, and with it a count of suppressed records not yet
// reported; while the table is full of keys seen within the interval, new
// keys share one, so a stream of ever-new keys cannot grow the table or
// flood the output.
func New(next slog.Handler, o Options) *Handler {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	return &Handler{next: next, st: &state{every: o.Every, now: o.Now, max: o.MaxKeys, keys: map[string]*entry{}}}
}

// Wrap returns l unchanged when its handler is already a *Handler (one
// table and one clock for whatever shares that root), else a logger whose
// handler is l's wrapped by New with o. A nil l is slog.Default().
func Wrap(l *slog.Logger, o Options) *slog.Logger {
	if l == nil {
		l = slog.Default()
	}
	if _, ok := l.Handler().(*Handler); ok {
		return l
	}
	return slog.New(New(l.Handler(), o))
}

// Enabled reports whether the wrapped handler takes records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on unless its key was let through less than the interval
// ago; records without a key always pass.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	key, found := h.key, false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == LimitKey {
			key, found = a.Value.String(), true
			return false
		}
		return true
	})
	if found {
		r = without(r, LimitKey)
	}
	if key == "" {
		return h.next.Handle(ctx, r)
	}
	n, pass := h.st.admit(h.scope+"\x00"+key, h.st.now())
	if !pass {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(SuppressedKey, n))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a handler whose records carry as; a Limit among them
// becomes the key of every record it handles.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	kept := make([]slog.Attr, 0, len(as))
	var b strings.Builder
	b.WriteString(h.scope)
	for _, a := range as {
		if a.Key == LimitKey {
			h2.key = a.Value.String()
			continue
		}
		kept = append(kept, a)
		b.WriteByte(' ')
		b.WriteString(a.String())
	}
	h2.scope = b.String()
	if len(kept) > 0 {
		h2.next = h.next.WithAttrs(kept)
	}
	return &h2
}

// WithGroup returns a handler that puts later attributes in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.scope = h.scope + " " + name + "{"
	h2.next = h.next.WithGroup(name)
	return &h2
}

// without returns a copy of r minus its attributes named key.
func without(r slog.Record, key string) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != key {
			out.AddAttrs(a)
		}
		return true
	})
	return out
}

type entry struct {
	last  time.Time // when a record under the key last passed
	quiet int       // records suppressed since
}

type state struct {
	every time.Duration
	now   func() time.Time
	max   int

	mu   sync.Mutex
	keys map[string]*entry
	// calm is before the earliest time an entry can expire: a full table
	// is not swept again before it.
	calm time.Time
}

// admit reports whether a record under key k passes at now and, if it
// does, how many under k were suppressed since the last that passed.
func (s *state) admit(k string, now time.Time) (suppressed int, pass bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.keys[k]
	if e == nil && len(s.keys) >= s.max {
		s.sweep(now)
		if len(s.keys) >= s.max {
			k = overflowKey
			e = s.keys[k]
		}
	}
	if e == nil {
		s.keys[k] = &entry{last: now}
		return 0, true
	}
	// A clock set back (an injected one, or a wall clock without its
	// monotonic reading) must not silence a key until it catches up.
	if d := now.Sub(e.last); d >= 0 && d < s.every {
		e.quiet++
		return 0, false
	}
	n := e.quiet
	e.last, e.quiet = now, 0
	return n, true
}

// sweep forgets the keys whose interval has run out.
func (s *state) sweep(now time.Time) {
	if now.Before(s.calm) {
		return
	}
	var earliest time.Time
	for k, e := range s.keys {
		if d := now.Sub(e.last); d < 0 || d >= s.every {
			delete(s.keys, k)
			continue
		}
		if earliest.IsZero() || e.last.Before(earliest) {
			earliest = e.last
		}
	}
	if !earliest.IsZero() {
		s.calm = earliest.Add(s.every)
	}
}
