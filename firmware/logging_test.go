package firmware

import (
	"context"
	"github.com/bangfu/cabinet/firmware/fsm"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/internal/clocktest"
	"github.com/bangfu/cabinet/internal/logx"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// logRec records what reaches the end of a logger.
type logRec struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRec) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRec) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRec) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRec) WithGroup(string) slog.Handler      { return h }

// named returns the records with message msg, each as level and attrs.
func (h *logRec) named(msg string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		m := map[string]string{"level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

// logCount counts every record by message before rate limiting, in front
// of the handler it wraps.
type logCount struct {
	next slog.Handler
	mu   *sync.Mutex
	n    map[string]int
}

func (c logCount) Enabled(ctx context.Context, l slog.Level) bool { return c.next.Enabled(ctx, l) }
func (c logCount) Handle(ctx context.Context, r slog.Record) error {
	c.mu.Lock()
	c.n[r.Message]++
	c.mu.Unlock()
	return c.next.Handle(ctx, r)
}
func (c logCount) WithAttrs(as []slog.Attr) slog.Handler {
	c.next = c.next.WithAttrs(as)
	return c
}
func (c logCount) WithGroup(name string) slog.Handler {
	c.next = c.next.WithGroup(name)
	return c
}

func (c logCount) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// recordLogs makes the rig's device log, rate-limited on clk as New would
// wrap it, to a recorder; the counter sees every record before the limit.
func recordLogs(r *rig, clk *clocktest.Clock) (*logRec, logCount) {
	rec := &logRec{}
	cnt := logCount{next: logx.New(rec, logx.Options{Now: clk.Now}), mu: &sync.Mutex{}, n: map[string]int{}}
	r.d.log = slog.New(cnt).With("cabinet", testCabinet)
	r.d.badLog = limitedLog{r.d.log}
	return rec, cnt
}

// An alarm is logged at the level of its severity.
func TestAlarmLogLevelFollowsSeverity(t *testing.T) {
	r := newRig(t)
	rec, _ := recordLogs(r, clocktest.New())
	r.d.alarm(msg.AlarmDoorForced, msg.SevCritical, map[string]any{"door": 1})
	r.d.alarm(msg.AlarmWeightWhileLocked, msg.SevWarning, nil)
	r.d.alarm(msg.AlarmPowerRestored, msg.SevInfo, nil)
	r.d.logAlarm(msg.AlarmRevokedInStock, msg.SevCritical, nil)
	got := rec.named("alarm")
	want := []struct{ kind, level string }{
		{msg.AlarmDoorForced, "ERROR"},
		{msg.AlarmWeightWhileLocked, "WARN"},
		{msg.AlarmPowerRestored, "INFO"},
		{msg.AlarmRevokedInStock, "ERROR"},
	}
	if len(got) != len(want) {
		t.Fatalf("alarm lines %v", got)
	}
	for i, w := range want {
		if got[i]["kind"] != w.kind || got[i]["level"] != w.level {
			t.Errorf("alarm %s logged at %s, want %s", got[i]["kind"], got[i]["level"], w.level)
		}
	}
}

// sessionToSettling opens a session, takes a unit and closes the door,
// stopping in settling before the sale is judged.
func sessionToSettling(r *rig) msg.Command {
	r.t.Helper()
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		r.t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	r.take(r.basket(1))
	if err := r.hw.CloseDoor(1); err != nil {
		r.t.Fatal(err)
	}
	r.stepToState(fsm.Settling)
	return cmd
}

// stepAttempts steps the device until the sale's commit has been retried
// n times after it first failed (each tick retries it while the shelves
// read settled), and checks that the failure was logged once, and once more
// with the count of what it suppressed after clk moved past the interval.
func stepAttempts(t *testing.T, r *rig, rec *logRec, cnt logCount, clk *clocktest.Clock, n int) {
	t.Helper()
	const failed = "commit sale; will retry"
	stepUntil(t, r.d, func() bool { return cnt.count(failed) > n }, 20*time.Second)
	if s := r.session(); s == nil || s.State != fsm.Settling {
		t.Fatalf("session %+v, want it still settling", s)
	}
	lines := rec.named(failed)
	if len(lines) != 1 {
		t.Fatalf("%d commit failure lines within a minute, want 1", len(lines))
	}
	clk.Advance(time.Minute)
	before := cnt.count(failed)
	stepUntil(t, r.d, func() bool { return len(rec.named(failed)) == 2 }, 20*time.Second)
	lines = rec.named(failed)
	if got, want := lines[1][logx.SuppressedKey], strconv.Itoa(before-1); got != want {
		t.Fatalf("second commit failure line %v: want suppressed=%s (the retries between)", lines[1], want)
	}
}

// storageAlarms returns the storage_fault alarms queued, and those cleared.
func storageAlarms(r *rig) (raised, cleared int) {
	for _, a := range r.alarms(msg.AlarmStorageFault) {
		if a.Cleared {
			cleared++
		} else {
			raised++
		}
	}
	return raised, cleared
}

// A sale whose commit keeps failing because the ledger is full is retried
// on every tick. The standing fault raises storage_fault once (straight to
// the link: the outbox cannot take it) and logs a line a minute, not one
// of each a tick; once there is room the sale commits and the fault clears.
func TestFullLedgerMidSessionAlarmsOnce(t *testing.T) {
	r := newRig(t)
	r.close()
	r.ledgerMax = 512 << 10
	r.start()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.waitIdle()
	clk := clocktest.New()
	rec, cnt := recordLogs(r, clk)
	for len(r.d.direct) > 0 { // power_restored, had it gone direct
		<-r.d.direct
	}
	cmd := sessionToSettling(r)

	// No write probe until the test asks for one: the commit alone meets
	// the full disk.
	r.d.store.probedAt = r.d.now().Add(time.Hour)
	// Big fillers until one fails, then smaller ones into what is left,
	// so that not even a small sale fits.
	for _, size := range []int{2000, 400, 50} {
		pad := map[string]any{"pad": strings.Repeat("x", size)}
		for i := 0; ; i++ {
			if i > 20000 {
				t.Fatal("the ledger never filled")
			}
			if err := r.d.ledger.Enqueue(nil, r.d.alarmItem("filler", msg.SevInfo, pad)); err != nil {
				break
			}
		}
	}
	stepAttempts(t, r, rec, cnt, clk, 20)

	if n := len(r.d.direct); n != 1 {
		t.Fatalf("%d messages queued to publish directly, want the one storage_fault", n)
	}
	var a msg.Alarm
	if _, err := (msg.KeyRing{testCabinet: r.d.devPub}).OpenInto((<-r.d.direct).body, &a); err != nil || a.Kind != msg.AlarmStorageFault {
		t.Fatalf("direct message %+v (%v), want storage_fault", a, err)
	}
	if got := rec.named("alarm"); len(got) != 1 || got[0]["kind"] != msg.AlarmStorageFault || got[0]["level"] != "ERROR" {
		t.Fatalf("alarm lines %v, want one storage_fault at ERROR", got)
	}
	if n := len(rec.named("direct publish queue full; message dropped")); n != 0 {
		t.Fatalf("%d direct-queue-full lines", n)
	}
	// The write probe fails as the commit does: no second alarm.
	r.d.store.probedAt = time.Time{}
	r.d.step(r.ctx)
	if len(r.d.direct) != 0 || len(rec.named("alarm")) != 1 {
		t.Fatal("the write probe raised storage_fault again for the same failure")
	}

	// Room again (the platform's acks, here: removing the fillers): the
	// sale commits, and the next probe clears the fault.
	entries, err := r.d.ledger.Outbox.Pending(100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == outbox.KindAlarm && strings.Contains(string(e.Payload), `"filler"`) {
			if err := r.d.ledger.Outbox.Remove(e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.stepToState("")
	if s := r.checkOnlySale(); s.SessionID != cmd.SessionID {
		t.Fatalf("sale of session %s, want %s", s.SessionID, cmd.SessionID)
	}
	r.d.store.probedAt = time.Time{}
	r.d.step(r.ctx)
	if raised, cleared := storageAlarms(r); raised != 0 || cleared != 1 || r.d.store.alarmed {
		t.Fatalf("storage_fault raised %d cleared %d in the outbox, alarmed %v; want one cleared", raised, cleared, r.d.store.alarmed)
	}
}

// A commit that fails for a reason of its own while the storage takes
// writes (here: the counters it must advance do not decode) raises
// storage_fault once and keeps it raised: the write probe passing does not
// clear it while the session's end is still failing, so it neither
// repeats every tick nor flaps every probe.
func TestFailingCommitAlarmsOnceAndHolds(t *testing.T) {
	r := newRig(t)
	clk := clocktest.New()
	rec, cnt := recordLogs(r, clk)
	sessionToSettling(r)
	r.d.store.probedAt = r.d.now().Add(time.Hour)

	counters := []byte("{}") // as they are before the first sale
	if err := r.d.ledger.DB().View(func(tx *bolt.Tx) error {
		if c := tx.Bucket([]byte("meta")).Get([]byte("counters")); c != nil {
			counters = append([]byte(nil), c...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	setCounters := func(v []byte) {
		t.Helper()
		if err := r.d.ledger.DB().Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("counters"), v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	setCounters([]byte("not json"))
	stepAttempts(t, r, rec, cnt, clk, 20)
	if raised, cleared := storageAlarms(r); raised != 1 || cleared != 0 {
		t.Fatalf("storage_fault raised %d cleared %d, want raised once", raised, cleared)
	}
	for range 2 { // two probes: both pass, neither clears nor raises again
		r.d.store.probedAt = time.Time{}
		r.d.step(r.ctx)
		if raised, cleared := storageAlarms(r); raised != 1 || cleared != 0 {
			t.Fatalf("after a passing probe: storage_fault raised %d cleared %d, want raised once", raised, cleared)
		}
	}

	setCounters(counters)
	r.stepToState("")
	r.checkOnlySale()
	r.d.store.probedAt = time.Time{}
	r.d.step(r.ctx)
	if raised, cleared := storageAlarms(r); raised != 1 || cleared != 1 {
		t.Fatalf("after the sale: storage_fault raised %d cleared %d, want raised and cleared once", raised, cleared)
	}
	if got := rec.named("alarm cleared"); len(got) != 1 || got[0]["level"] != "INFO" {
		t.Fatalf("alarm cleared lines %v", got)
	}
}
