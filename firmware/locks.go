package firmware

import (
	"context"
	"fmt"
	"github.com/bangfu/cabinet/firmware/fsm"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// lockWatch is what checkLocks remembers per door.
type lockWatch struct {
	unlockedSince time.Time // shut door, released lock, feedback "open" since
	faulted       bool      // lock_fault raised and not cleared
}

// checkLocks raises lock_fault for a door that is shut, not in a session
// that may open it, and whose lock has reported "not locked" for longer
// than LockTimeout: a bolt that did not latch leaves the goods open to
// anyone. The cabinet is out of service until the lock reports locked.
// Locks without a feedback pin report what they were told, so only a real
// bolt sensor can raise this.
func (d *Device) checkLocks(ctx context.Context, now time.Time) {
	for _, door := range d.hw.Doors {
		n := door.Number
		w := d.locks[n]
		mayBeOpen := !d.doorClosed[n] || (d.sess != nil && d.sess.Door == n &&
			(d.sess.State == fsm.Authorised || d.sess.State == fsm.Unlocked || d.sess.State == fsm.DoorOpen))
		locked := true
		if !mayBeOpen {
			l, err := door.Lock.Locked(ctx)
			locked = err == nil && l
		}
		switch {
		case locked || mayBeOpen:
			w.unlockedSince = time.Time{}
			if w.faulted && locked && !mayBeOpen {
				w.faulted = false
				d.alarmCleared(msg.AlarmLockFault, map[string]any{"door": n})
			}
		case w.unlockedSince.IsZero():
			w.unlockedSince = now
		case !w.faulted && now.Sub(w.unlockedSince) > LockTimeout:
			w.faulted = true
			// Try once more to let the bolt go: a relay stuck on is
			// the commonest cause, and Release is idempotent.
			if err := door.Lock.Release(ctx); err != nil {
				d.log.Error("release lock", "door", n, "err", err)
			}
			d.alarm(msg.AlarmLockFault, msg.SevCritical, map[string]any{"door": n,
				"err": fmt.Sprintf("door shut but the lock has not reported locked for %v", now.Sub(w.unlockedSince).Round(time.Second))})
		}
		d.locks[n] = w
	}
}

// lockFaulty names a door whose lock did not latch, or "".
func (d *Device) lockFaulty() string {
	for _, door := range d.hw.Doors {
		if d.locks[door.Number].faulted {
			return fmt.Sprintf("door %d lock does not report locked", door.Number)
		}
	}
	return ""
}
