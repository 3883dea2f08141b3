package fsm

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var (
	t0       = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	deadline = t0.Add(30 * time.Second)
	cfg      = Config{DoorOpenAlarm: 2 * time.Minute}
)

// sess is a session in state st with the times a live one has there.
func sess(st State) Session {
	s := Session{State: st, Deadline: deadline}
	switch st {
	case DoorOpen:
		s.OpenedAt = t0.Add(5 * time.Second)
	case Settling, DoorClosed:
		s.OpenedAt, s.ClosedAt = t0.Add(5*time.Second), t0.Add(20*time.Second)
	}
	return s
}

var (
	shut    = Facts{DoorClosed: true}
	open    = Facts{}
	moved   = Facts{DoorClosed: true, WeightsMoved: true}
	pending = Facts{DoorClosed: true, ReadingsPending: true, WeightsMoved: true}
	ready   = Facts{DoorClosed: true, ScalesReady: true}
	timeout = Facts{DoorClosed: true, SettleTimedOut: true}
)

func effects(as ...Action) []Effect {
	var out []Effect
	for _, a := range as {
		out = append(out, Effect{Action: a})
	}
	return out
}

// TestTransitionTable: every state × event pair, the impossible ones
// included, with the facts that change the answer.
func TestTransitionTable(t *testing.T) {
	before := t0.Add(10 * time.Second)   // inside the unlock window
	after := deadline.Add(time.Second)   // the window has passed
	longOpen := t0.Add(5 * time.Minute)  // the door open longer than DoorOpenAlarm
	settleAt := t0.Add(25 * time.Second) // after the close
	tests := []struct {
		from  State
		ev    Event
		now   time.Time
		to    State
		do    []Effect
		check func(t *testing.T, s Session)
	}{
		// Idle: only a cancel is answered.
		{Idle, Event{Kind: Tick, Facts: open}, before, Idle, nil, nil},
		{Idle, Event{Kind: Energised}, before, Idle, nil, nil},
		{Idle, Event{Kind: LockFailed}, before, Idle, nil, nil},
		{Idle, Event{Kind: Restarted, Facts: open}, before, Idle, nil, nil},
		{Idle, Event{Kind: Cancel}, before, Idle, effects(ReplyUnknown), nil},

		// Authorised: the lock is being retracted.
		{Authorised, Event{Kind: Energised}, before, Unlocked, effects(Persist, ReplyUnlocked), nil},
		{Authorised, Event{Kind: LockFailed}, before, Idle, effects(LockFault), nil},
		{Authorised, Event{Kind: Cancel}, before, Idle, []Effect{{Action: ReleaseLock}, {Action: ReplyCancelled}, {Action: CancelSession, Reason: ReasonPlatform}}, nil},
		{Authorised, Event{Kind: Tick, Facts: shut}, before, Authorised, nil, nil},
		{Authorised, Event{Kind: Tick, Facts: open}, before, DoorOpen, effects(Persist, ReleaseLock), openedNow(before)},
		{Authorised, Event{Kind: Tick, Facts: shut}, after, Idle, []Effect{{Action: ReleaseLock}, {Action: CancelSession, Reason: ReasonNotOpened}}, nil},
		{Authorised, Event{Kind: Restarted, Facts: shut}, before, Authorised, effects(EnergiseLock), nil},
		{Authorised, Event{Kind: Restarted, Facts: open}, before, DoorOpen, effects(Persist, ReleaseLock), openedNow(before)},
		{Authorised, Event{Kind: Restarted, Facts: shut}, after, Authorised, nil, nil},

		// Unlocked: waiting for the door.
		{Unlocked, Event{Kind: Energised}, before, Unlocked, effects(Persist), nil},
		{Unlocked, Event{Kind: LockFailed}, before, Idle, effects(LockFault), nil},
		{Unlocked, Event{Kind: Cancel}, before, Idle, []Effect{{Action: ReleaseLock}, {Action: ReplyCancelled}, {Action: CancelSession, Reason: ReasonPlatform}}, nil},
		{Unlocked, Event{Kind: Tick, Facts: shut}, before, Unlocked, nil, nil},
		{Unlocked, Event{Kind: Tick, Facts: open}, before, DoorOpen, effects(Persist, ReleaseLock), openedNow(before)},
		{Unlocked, Event{Kind: Tick, Facts: open}, after, DoorOpen, effects(Persist, ReleaseLock), openedNow(after)},
		{Unlocked, Event{Kind: Tick, Facts: shut}, after, Idle, []Effect{{Action: ReleaseLock}, {Action: CancelSession, Reason: ReasonNotOpened}}, nil},
		{Unlocked, Event{Kind: Tick, Facts: pending}, after, Unlocked, nil, nil},
		{Unlocked, Event{Kind: Tick, Facts: moved}, after, Settling, effects(ReleaseLock, NoteQuickDoor, Persist), func(t *testing.T, s Session) {
			if !s.OpenedAt.Equal(after) || !s.ClosedAt.Equal(after) {
				t.Errorf("quick door: opened %v closed %v, want both %v", s.OpenedAt, s.ClosedAt, after)
			}
		}},
		{Unlocked, Event{Kind: Restarted, Facts: shut}, before, Unlocked, effects(EnergiseLock), nil},
		{Unlocked, Event{Kind: Restarted, Facts: open}, before, DoorOpen, effects(Persist, ReleaseLock), openedNow(before)},
		{Unlocked, Event{Kind: Restarted, Facts: shut}, after, Unlocked, nil, nil},

		// DoorOpen: the shopper is at the shelves.
		{DoorOpen, Event{Kind: Tick, Facts: open}, before, DoorOpen, nil, nil},
		{DoorOpen, Event{Kind: Tick, Facts: open}, longOpen, DoorOpen, effects(Persist, AlarmDoorOpenTooLong), func(t *testing.T, s Session) {
			if !s.Alarmed {
				t.Error("not marked alarmed")
			}
		}},
		{DoorOpen, Event{Kind: Tick, Facts: shut}, settleAt, Settling, effects(Persist), func(t *testing.T, s Session) {
			if !s.ClosedAt.Equal(settleAt) {
				t.Errorf("closed at %v, want %v", s.ClosedAt, settleAt)
			}
		}},
		{DoorOpen, Event{Kind: Energised}, before, DoorOpen, nil, nil},
		{DoorOpen, Event{Kind: LockFailed}, before, DoorOpen, nil, nil},
		{DoorOpen, Event{Kind: Restarted, Facts: open}, before, DoorOpen, nil, nil},
		{DoorOpen, Event{Kind: Restarted, Facts: shut}, before, DoorOpen, nil, nil},
		{DoorOpen, Event{Kind: Cancel}, before, DoorOpen, effects(ReplyBusy), nil},

		// Settling: the door shut, the scales settling.
		{Settling, Event{Kind: Tick, Facts: shut}, settleAt, Settling, nil, nil},
		{Settling, Event{Kind: Tick, Facts: ready}, settleAt, Idle, effects(Judge), nil},
		{Settling, Event{Kind: Tick, Facts: timeout}, settleAt, Idle, []Effect{{Action: Judge, TimedOut: true}}, nil},
		{Settling, Event{Kind: Tick, Facts: open}, settleAt, DoorOpen, effects(Persist), func(t *testing.T, s Session) {
			if !s.ClosedAt.IsZero() {
				t.Errorf("reopened, closed at still %v", s.ClosedAt)
			}
		}},
		{Settling, Event{Kind: Energised}, settleAt, Settling, nil, nil},
		{Settling, Event{Kind: LockFailed}, settleAt, Settling, nil, nil},
		{Settling, Event{Kind: Restarted, Facts: shut}, settleAt, Settling, nil, nil},
		{Settling, Event{Kind: Cancel}, settleAt, Settling, effects(ReplyBusy), nil},

		// The legacy door_closed of older ledgers behaves as Settling.
		{DoorClosed, Event{Kind: Tick, Facts: ready}, settleAt, Idle, effects(Judge), nil},
		{DoorClosed, Event{Kind: Tick, Facts: shut}, settleAt, Settling, nil, nil},
	}
	seen := map[string]bool{}
	for i, tc := range tests {
		name := fmt.Sprintf("%d/%s+%s", i, orIdle(tc.from), tc.ev.Kind)
		t.Run(name, func(t *testing.T) {
			got, do := Step(sess(tc.from), tc.ev, tc.now, cfg)
			if got.State != tc.to {
				t.Errorf("state %q, want %q", got.State, tc.to)
			}
			if !slices.Equal(do, tc.do) {
				t.Errorf("effects %v, want %v", do, tc.do)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
		seen[string(tc.from)+"/"+tc.ev.Kind.String()] = true
	}
	for _, st := range append(slices.Clone(States), DoorClosed) {
		for _, k := range Kinds {
			if st == DoorClosed {
				continue // read as Settling; two rows above show it
			}
			if !seen[string(st)+"/"+k.String()] {
				t.Errorf("no row for %q + %s", orIdle(st), k)
			}
		}
	}
}

func orIdle(s State) string {
	if s == Idle {
		return "idle"
	}
	return string(s)
}

func openedNow(at time.Time) func(t *testing.T, s Session) {
	return func(t *testing.T, s Session) {
		if !s.OpenedAt.Equal(at) {
			t.Errorf("opened at %v, want %v", s.OpenedAt, at)
		}
	}
}

// A session that ends comes back as the zero Session; one that does not
// keeps its deadline, and every time Step writes is UTC.
func TestStepKeepsWhatItDoesNotChange(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	now := t0.Add(10 * time.Second).In(cst)
	s, _ := Step(sess(Unlocked), Event{Kind: Tick, Facts: open}, now, cfg)
	if !s.Deadline.Equal(deadline) || s.OpenedAt.Location() != time.UTC {
		t.Errorf("after opening: %+v", s)
	}
	s, _ = Step(s, Event{Kind: Tick, Facts: shut}, now.Add(time.Second), cfg)
	if s.ClosedAt.Location() != time.UTC || s.State != Settling {
		t.Errorf("after closing: %+v", s)
	}
	s, _ = Step(s, Event{Kind: Tick, Facts: ready}, now.Add(3*time.Second), cfg)
	if s != (Session{}) {
		t.Errorf("judged session not Idle: %+v", s)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want State
		err  bool
	}{
		{"authorised", Authorised, false}, {"unlocked", Unlocked, false}, {"door_open", DoorOpen, false},
		{"settling", Settling, false}, {"door_closed", Settling, false},
		{"", Idle, true}, {"open", Idle, true}, {"SETTLING", Idle, true},
	} {
		got, err := Parse(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("Parse(%q) = %q, %v", tc.in, got, err)
		}
	}
}
