package ota

import (
	"fmt"
	"time"
)

// Decision is what the launcher does at a start: run Slot (Factory: go
// on in this process; A or B: exec that slot's binary), after writing
// State when Write is set (one atomic write).
type Decision struct {
	Slot    string
	Version string
	Write   bool
	State   State
	Why     string // for the log
}

// Decide is the launcher's rule, a pure function. st is state.json as
// read; boot the boot id; factoryFW the version of the package-installed
// binary running now; maxStarts the failed starts of a trial version in
// one boot that roll it back; slotErr says whether a slot's binary is
// present and executable (nil: yes).
//
//   - A trial whose starts in this same boot reached maxStarts never
//     committed in any of them (a crash, an exit, a watchdog kill): roll
//     back to the previous version. Starts of an earlier boot (a power cut
//     during a start) are forgotten, never counted.
//   - Otherwise a trial start is recorded before it is run.
//   - A current slot whose binary is missing or unreadable falls back to
//     the factory binary, and says why.
//   - A factory binary newer than the current version, with no trial
//     running, is a package a technician installed: it runs.
func Decide(st State, boot, factoryFW string, maxStarts int, slotErr func(slot string) error, now time.Time) Decision {
	if st.Current.Slot == "" {
		st.Current = Running{Slot: Factory, Version: factoryFW}
	}
	cur := st.Current
	if t := st.Trial; t != nil && t.Slot == cur.Slot {
		if t.Boot == boot && t.Starts >= maxStarts {
			return rollback(st, fmt.Sprintf("%d starts of %s in one boot without becoming healthy (crash, exit or watchdog)", t.Starts, t.Version), factoryFW, slotErr, now)
		}
		if err := slotErr(t.Slot); err != nil {
			return rollback(st, fmt.Sprintf("slot %s binary: %v", t.Slot, err), factoryFW, slotErr, now)
		}
		n := *t
		if n.Boot != boot {
			n.Boot, n.Starts = boot, 0
		}
		n.Starts++
		st.Trial = &n
		return Decision{Slot: t.Slot, Version: t.Version, Write: true, State: st,
			Why: fmt.Sprintf("trial start %d of %s in this boot", n.Starts, t.Version)}
	}
	if st.Trial != nil {
		// A trial of a slot that is not current: bookkeeping from a
		// torn sequence cannot happen (one write each), but never run it.
		st.Trial = nil
		return Decision{Slot: cur.Slot, Version: cur.Version, Write: true, State: st, Why: "stale trial cleared"}
	}
	if cur.Slot == Factory {
		if cur.Version != factoryFW {
			st.Current.Version = factoryFW
			return Decision{Slot: Factory, Version: factoryFW, Write: true, State: st, Why: "factory binary version changed"}
		}
		return Decision{Slot: Factory, Version: factoryFW, State: st, Why: "factory"}
	}
	if Newer(factoryFW, cur.Version) {
		st.Previous = &Running{Slot: cur.Slot, Version: cur.Version}
		st.Current = Running{Slot: Factory, Version: factoryFW}
		return Decision{Slot: Factory, Version: factoryFW, Write: true, State: st,
			Why: fmt.Sprintf("the installed package %s is newer than slot %s (%s)", factoryFW, cur.Slot, cur.Version)}
	}
	if err := slotErr(cur.Slot); err != nil {
		from := cur.Version
		st.Previous = nil
		st.Current = Running{Slot: Factory, Version: factoryFW}
		st.Pending = append(st.Pending, Outcome{ID: outcomeID(now, "fallback"), Kind: OutcomeRolledBack, From: from, To: factoryFW,
			Reason: fmt.Sprintf("slot %s binary: %v; the factory binary runs", cur.Slot, err), At: now.UTC()})
		return Decision{Slot: Factory, Version: factoryFW, Write: true, State: st, Why: "slot binary unusable: " + err.Error()}
	}
	return Decision{Slot: cur.Slot, Version: cur.Version, State: st, Why: "committed slot"}
}

// rollback makes the previous version current again, clears the trial and
// records the outcome, in one state.
func rollback(st State, reason, factoryFW string, slotErr func(string) error, now time.Time) Decision {
	t := st.Trial
	prev := Running{Slot: Factory, Version: factoryFW}
	if p := st.Previous; p != nil {
		prev = *p
	}
	if prev.Slot != Factory && slotErr(prev.Slot) != nil {
		prev = Running{Slot: Factory, Version: factoryFW}
	}
	if prev.Slot == Factory && factoryFW != "" {
		prev.Version = factoryFW
	}
	st.Current = prev
	st.Previous = nil
	st.Trial = nil
	st.Download = nil
	st.Pending = append(st.Pending, Outcome{ID: outcomeID(now, "rollback"), Kind: OutcomeRolledBack, From: t.Version, To: prev.Version,
		Reason: reason, CmdID: t.CmdID, At: now.UTC()})
	return Decision{Slot: prev.Slot, Version: prev.Version, Write: true, State: st, Why: "rollback: " + reason}
}

// Rollback is the running trial version's own rollback (not healthy in
// time): the same state change as the launcher's.
func Rollback(st State, reason, factoryFW string, slotErr func(string) error, now time.Time) State {
	if st.Trial == nil {
		return st
	}
	return rollback(st, reason, factoryFW, slotErr, now).State
}

// Commit is the trial version's commit: trial cleared, the floor raised to
// its min_version, the outcome recorded.
func Commit(st State, now time.Time) State {
	t := st.Trial
	if t == nil {
		return st
	}
	if t.MinVersion != "" && (st.Floor == "" || Newer(t.MinVersion, st.Floor)) {
		st.Floor = t.MinVersion
	}
	from := ""
	if st.Previous != nil {
		from = st.Previous.Version
	}
	st.Trial = nil
	st.Pending = append(st.Pending, Outcome{ID: outcomeID(now, "updated"), Kind: OutcomeUpdated, From: from, To: t.Version,
		CmdID: t.CmdID, At: now.UTC()})
	return st
}

// Switch is the switch to a slot just installed: current = the new
// version in trial, previous = the one running.
func Switch(st State, running Running, slot string, d Download, needBroker bool, now time.Time) State {
	st.Previous = &running
	st.Current = Running{Slot: slot, Version: d.Bundle.Version}
	st.Trial = &Trial{Slot: slot, Version: d.Bundle.Version, MinVersion: d.Bundle.MinVersion, NeedBroker: needBroker,
		CmdID: d.CmdID, SwitchedAt: now.UTC()}
	st.Download = nil
	return st
}

// InactiveSlot is where a new version is installed: the slot of a and b
// that is not running now.
func InactiveSlot(current string) string {
	if current == A {
		return B
	}
	return A
}

// outcomeID is an id for an outcome's alarm, unique per event.
func outcomeID(now time.Time, what string) string {
	return fmt.Sprintf("ota-%s-%d", what, now.UnixNano())
}
