// Package fsm is the cabinet session's state machine: the states a shopping
// or restock session passes through, the events it reacts to, and one pure
// transition function, Step, from a session, an event and the time to the
// next session and the effects the device must carry out (energise or
// release a lock, persist, answer the unlock, raise an alarm, judge the
// sale, cancel).
//
// Recovery after a restart is not a code path of its own: the device feeds
// Step a Restarted event for the session the ledger holds.
//
// fsm owns the rules, nothing else: no I/O, no clock (the caller passes
// now), no logging, no hardware. The device (package firmware) turns
// sensors into events and facts, and effects into actions; the ledger
// stores a session's State as the same strings, so ledgers written by
// earlier firmware load unchanged ("door_closed", which no version entered,
// is read as Settling).
package fsm

import (
	"fmt"
	"time"
)

// State is where a session is.
type State string

// States, in the order a session passes through them. Idle is no session:
// a finished session is not stored, its end is its sale (or its restock
// record).
const (
	Idle       State = ""
	Authorised State = "authorised" // accepted and persisted; the lock not yet reported retracted
	Unlocked   State = "unlocked"   // the lock retracted, waiting for the door to open
	DoorOpen   State = "door_open"  // the shopper is at the shelves
	Settling   State = "settling"   // the door shut, waiting for steady scales
	// DoorClosed is a state name older firmware declared but never
	// entered; a ledger holding it is read as Settling.
	DoorClosed State = "door_closed"
)

// States lists every state a session can be in (Idle included).
var States = []State{Idle, Authorised, Unlocked, DoorOpen, Settling}

// Parse reads a persisted state.
func Parse(s string) (State, error) {
	switch st := State(s); st {
	case Authorised, Unlocked, DoorOpen, Settling:
		return st, nil
	case DoorClosed:
		return Settling, nil
	}
	return Idle, fmt.Errorf("fsm: unknown session state %q", s)
}

// Session is what the machine knows of a session.
type Session struct {
	State State
	// Deadline: the door must open before it.
	Deadline time.Time
	// OpenedAt and ClosedAt are when the door opened and shut (zero until
	// then).
	OpenedAt, ClosedAt time.Time
	// Alarmed: door_open_too_long was raised for this opening.
	Alarmed bool
}

// Kind is the kind of an event.
type Kind int

// Events.
const (
	// Tick: the device loop sampled the door and the scales; Facts say
	// what they show.
	Tick Kind = iota
	// Energised: the lock reports retracted after EnergiseLock.
	Energised
	// LockFailed: the lock did not retract after EnergiseLock.
	LockFailed
	// Restarted: power came back with this session in the ledger; Facts
	// say how the door stands.
	Restarted
	// Cancel: the platform cancels the session.
	Cancel
)

var kindNames = [...]string{"tick", "energised", "lock failed", "restarted", "cancel"}

// Kinds lists every event kind.
var Kinds = []Kind{Tick, Energised, LockFailed, Restarted, Cancel}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Facts are the sensors' view at an event, as the device reads them.
type Facts struct {
	// DoorClosed: the door is shut now and did not open since the last
	// tick (an opening the switch latched counts as open).
	DoorClosed bool
	// ReadingsPending: a scale behind the door has not read yet (just
	// started): neither evidence nor a fault.
	ReadingsPending bool
	// WeightsMoved: a shelf behind the door reads differently from its
	// before weight by more than an object's weight.
	WeightsMoved bool
	// ScalesReady: every shelf behind the door has a settled reading taken
	// wholly after the door shut.
	ScalesReady bool
	// SettleTimedOut: the scales have had their time and are still not
	// ready; the sale is judged on what there is.
	SettleTimedOut bool
}

// Event is something the session reacts to.
type Event struct {
	Kind  Kind
	Facts Facts
}

// Config are the machine's timings.
type Config struct {
	// DoorOpenAlarm is how long a door may stand open before
	// door_open_too_long is raised.
	DoorOpenAlarm time.Duration
}

// Action is the kind of an effect.
type Action int

// Actions, carried out by the device in the order Step returns them.
const (
	// Persist stores the session as returned (its state and times); when
	// the session was Authorised and is now Unlocked, the unlock's "ok"
	// reply commits with it (ReplyUnlocked).
	Persist Action = iota
	// ReplyUnlocked answers the unlock command, in the same commit as
	// Persist.
	ReplyUnlocked
	// EnergiseLock retracts the door's lock; the device answers with
	// Energised or LockFailed.
	EnergiseLock
	// ReleaseLock lets the bolt go (it latches when the door shuts).
	ReleaseLock
	// AlarmDoorOpenTooLong raises door_open_too_long.
	AlarmDoorOpenTooLong
	// NoteQuickDoor logs that goods moved though no opening was seen.
	NoteQuickDoor
	// Judge weighs the shelves and ends the session with its sale (or
	// restock record); Effect.TimedOut says the scales never all settled.
	Judge
	// CancelSession ends the session without goods taken (Effect.Reason).
	CancelSession
	// LockFault ends the session on a lock that would not retract,
	// answering the unlock with lock_fault and raising the alarm.
	LockFault
	// ReplyCancelled answers a cancel command: done.
	ReplyCancelled
	// ReplyBusy answers a cancel command: too late, the door was opened.
	ReplyBusy
	// ReplyUnknown answers a cancel command: no such session.
	ReplyUnknown
)

var actionNames = [...]string{"persist", "reply unlocked", "energise lock", "release lock",
	"alarm door open too long", "note quick door", "judge", "cancel session", "lock fault",
	"reply cancelled", "reply busy", "reply unknown"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Effect is one thing the device must do.
type Effect struct {
	Action   Action
	Reason   string // CancelSession
	TimedOut bool   // Judge
}

func (e Effect) String() string {
	switch {
	case e.Reason != "":
		return fmt.Sprintf("%s(%s)", e.Action, e.Reason)
	case e.TimedOut:
		return fmt.Sprintf("%s(timed out)", e.Action)
	}
	return e.Action.String()
}

// Reasons a session is cancelled.
const (
	ReasonNotOpened = "door not opened in time"
	ReasonPlatform  = "cancelled by the platform"
)

func do(a Action) Effect { return Effect{Action: a} }

// Step is the session's transition function: the session after event e at
// now, and the effects that carry it out. A session that ends comes back
// Idle. An event a state does not react to leaves it unchanged with no
// effect (a Cancel is always answered).
func Step(s Session, e Event, now time.Time, c Config) (Session, []Effect) {
	if s.State == DoorClosed {
		s.State = Settling
	}
	f := e.Facts
	switch e.Kind {
	case Cancel:
		switch s.State {
		case Idle:
			return s, []Effect{do(ReplyUnknown)}
		case Authorised, Unlocked:
			return Session{}, []Effect{do(ReleaseLock), do(ReplyCancelled), {Action: CancelSession, Reason: ReasonPlatform}}
		default:
			return s, []Effect{do(ReplyBusy)}
		}
	case Energised:
		switch s.State {
		case Authorised:
			s.State = Unlocked
			return s, []Effect{do(Persist), do(ReplyUnlocked)}
		case Unlocked:
			return s, []Effect{do(Persist)}
		}
		return s, nil
	case LockFailed:
		if s.State == Authorised || s.State == Unlocked {
			return Session{}, []Effect{do(LockFault)}
		}
		return s, nil
	case Restarted:
		switch s.State {
		case Authorised, Unlocked:
			if !f.DoorClosed {
				// Opened while the cabinet was down: the shopper is in.
				return opened(s, now)
			}
			if now.Before(s.Deadline) {
				return s, []Effect{do(EnergiseLock)}
			}
			// The unlock window passed while the cabinet was down; the
			// next tick judges it like a live session's expiry.
		}
		return s, nil
	case Tick:
		return tick(s, f, now, c)
	}
	return s, nil
}

// opened is the door opening on an authorised or unlocked session: the
// bolt goes as soon as the door is open (it latches when the door shuts,
// and a shopper cannot leave it unlocked).
func opened(s Session, now time.Time) (Session, []Effect) {
	s.State, s.OpenedAt = DoorOpen, now.UTC()
	return s, []Effect{do(Persist), do(ReleaseLock)}
}

func tick(s Session, f Facts, now time.Time, c Config) (Session, []Effect) {
	switch s.State {
	case Authorised, Unlocked:
		// Authorised only stays so when persisting "unlocked" failed, or
		// after a restart: it ends the same way.
		if !f.DoorClosed {
			return opened(s, now)
		}
		if now.Before(s.Deadline) || f.ReadingsPending {
			return s, nil // waiting; or just started: decide once every scale has read
		}
		if f.WeightsMoved {
			// The switch never reported an opening, yet goods moved: a
			// quick or faulty door. Judge the weights; goods never leave
			// on a "cancelled" sale.
			s.State, s.OpenedAt, s.ClosedAt = Settling, now.UTC(), now.UTC()
			return s, []Effect{do(ReleaseLock), do(NoteQuickDoor), do(Persist)}
		}
		return Session{}, []Effect{do(ReleaseLock), {Action: CancelSession, Reason: ReasonNotOpened}}
	case DoorOpen:
		if f.DoorClosed {
			s.State, s.ClosedAt = Settling, now.UTC()
			return s, []Effect{do(Persist)}
		}
		if !s.Alarmed && now.Sub(s.OpenedAt) > c.DoorOpenAlarm {
			s.Alarmed = true
			return s, []Effect{do(Persist), do(AlarmDoorOpenTooLong)}
		}
	case Settling:
		if !f.DoorClosed {
			// Reopened before the bolt latched: back to shopping.
			s.State, s.ClosedAt = DoorOpen, time.Time{}
			return s, []Effect{do(Persist)}
		}
		if f.ScalesReady || f.SettleTimedOut {
			return Session{}, []Effect{{Action: Judge, TimedOut: f.SettleTimedOut && !f.ScalesReady}}
		}
	}
	return s, nil
}
