package firmware

import (
	"context"
	"slices"
	"time"

	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// The device's side of the session state machine (firmware/fsm): it turns
// what the sensors show into events and facts, feeds them to fsm.Step, and
// carries out the effects Step returns. The rules themselves live in fsm.

// cause carries what an effect needs besides the session: the lock's error
// (LockFault) and the command being answered (the cancel replies).
type cause struct {
	err error
	cmd *msg.Command
}

// advance feeds the session one tick.
func (d *Device) advance(ctx context.Context, s *ledger.Session, now time.Time) {
	d.feed(ctx, s, fsm.Event{Kind: fsm.Tick, Facts: d.facts(s, now)}, now, cause{})
}

// facts reads what the sensors show for session s.
func (d *Device) facts(s *ledger.Session, now time.Time) fsm.Facts {
	f := fsm.Facts{
		DoorClosed:      d.doorClosed[s.Door],
		ReadingsPending: d.readingsPending(s.Door),
		WeightsMoved:    d.weightsMoved(s),
	}
	if s.State == fsm.Settling || s.State == fsm.DoorClosed {
		f.ScalesReady, f.SettleTimedOut = d.afterReady(s, now)
	}
	return f
}

// machineSession is s as the state machine sees it.
func machineSession(s *ledger.Session) (fsm.Session, error) {
	st, err := fsm.Parse(string(s.State))
	return fsm.Session{State: st, Deadline: s.Deadline, OpenedAt: s.OpenedAt, ClosedAt: s.ClosedAt, Alarmed: s.Alarmed}, err
}

// feed applies event ev to session s (the one in progress, or nil) and
// carries out the effects.
func (d *Device) feed(ctx context.Context, s *ledger.Session, ev fsm.Event, now time.Time, c cause) {
	var in fsm.Session
	if s != nil {
		var err error
		if in, err = machineSession(s); err != nil {
			d.log.Error("session in an unknown state: left as it is", "session", s.ID, "err", err)
			return
		}
	}
	out, effects := fsm.Step(in, ev, now, fsm.Config{DoorOpenAlarm: d.cfg.DoorOpenAlarm()})
	for _, e := range effects {
		switch e.Action {
		case fsm.Persist:
			var items []ledger.Item
			if slices.ContainsFunc(effects, func(x fsm.Effect) bool { return x.Action == fsm.ReplyUnlocked }) {
				// The ok reply commits with the state it reports: a power
				// cut cannot leave an unlocked door whose unlock was never
				// answered.
				text := "unlocked"
				if s.Kind == ledger.KindRestock {
					text = "unlocked for restock"
				}
				items = append(items, d.replyItem(s.CmdID, "", text, nil))
			}
			d.transition(s, out.State, func() {
				s.OpenedAt, s.ClosedAt, s.Alarmed = out.OpenedAt, out.ClosedAt, out.Alarmed
			}, items...)
		case fsm.ReplyUnlocked:
			// Committed with Persist.
		case fsm.EnergiseLock:
			if _, err := d.energise(ctx, s.Door); err != nil {
				d.feed(ctx, s, fsm.Event{Kind: fsm.LockFailed}, now, cause{err: err})
				return
			}
			d.feed(ctx, s, fsm.Event{Kind: fsm.Energised}, now, cause{})
		case fsm.ReleaseLock:
			if err := d.lockFor(s.Door).Release(ctx); err != nil {
				d.log.Error("release lock", "session", s.ID, "err", err)
			}
		case fsm.AlarmDoorOpenTooLong:
			d.alarm(msg.AlarmDoorOpenTooLong, msg.SevWarning, map[string]any{"door": s.Door, "session": s.ID,
				"open_s": int(now.Sub(s.OpenedAt).Seconds())})
		case fsm.NoteQuickDoor:
			d.log.Warn("weights changed without a reported door opening", "session", s.ID)
		case fsm.Judge:
			d.finish(s, now, e.TimedOut)
		case fsm.CancelSession:
			d.cancelSession(s, e.Reason)
		case fsm.LockFault:
			d.lockFault(s, c.err)
		case fsm.ReplyCancelled:
			d.reply(c.cmd, c.cmd.ID, "", "cancelled", nil)
		case fsm.ReplyBusy:
			d.reply(nil, c.cmd.ID, msg.ErrBusy, "the door has been opened; the session ends when it closes", nil)
		case fsm.ReplyUnknown:
			d.reply(nil, c.cmd.ID, msg.ErrUnknownSession, "no such session in progress", nil)
		}
	}
}
