package firmware

import "time"

// hushTick is the longest a hushed cabinet goes without a tick: the time
// checks that need no sensor (a product's expiry, the temperature alarm's
// delay) run at least this often.
const hushTick = 30 * time.Second

// hushRetry is how long a cabinet that could not hush (not idle, or its
// world still settling) ticks before it asks again: the asking reads the
// outbox and the physics, too dear for every tick.
const hushRetry = time.Second

// settleTick is the tick of an idle cabinet whose simulated world still
// settles (creep after a sale, a temperature change) so that it cannot
// hush yet: with no session nothing needs the 50 ms tick, and a door
// opened meanwhile is latched (hal.DoorLatch).
const settleTick = 250 * time.Millisecond

// hushState is the hardware's hush while the cabinet is idle (Run
// goroutine only).
type hushState struct {
	ended    <-chan struct{} // while hushed: closed when the hush ends
	after    time.Time       // no hush is asked for before this
	slow     bool            // the next tick is further away than the tick
	waitTick time.Duration   // the tick while a hush is not asked for
}

// idle reports whether nothing the Run loop watches can change but through
// the hardware, a message or the clock: no session, no update under way,
// every door shut with its lock reporting locked in time, every scale
// settled, no storage write to retry and nothing in the outbox (so the
// status's outbox depth is not left stale). Only then may the hardware be
// hushed (hal.Quiet).
func (d *Device) idle() bool {
	if d.sess != nil || d.store.failedCommit != "" || d.store.alarmed {
		return false
	}
	if d.upd != nil && (!d.us.started || d.us.fetching || d.us.ready != nil || d.us.trial != nil) {
		return false
	}
	for _, door := range d.hw.Doors {
		if !d.doorClosed[door.Number] || !d.locks[door.Number].unlockedSince.IsZero() {
			return false
		}
	}
	for _, sh := range d.hw.Shelves {
		r, ok := d.readings[sh.Number]
		if d.readErr[sh.Number] != nil || !ok || !r.Settled {
			return false
		}
	}
	if d.hush.ended == nil { // about to hush: the outbox must be empty now
		if d.depth > 0 {
			return false // as of the last status, at most a second ago
		}
		n, err := d.ledger.Outbox.Depth()
		d.depth, d.depthAt = n, d.now()
		if err != nil || n > 0 {
			return false
		}
		d.publishStatus()
	}
	return true
}

// pace hushes the hardware when the cabinet is idle, wakes it when it is
// not, and returns how long until the next tick: the tick while anything
// moves; while hushed, until the next thing the clock alone brings (the
// QR code's rotation, a receipt's end), at most hushTick. Hardware without
// hal.Quiet (a real board) is never hushed.
func (d *Device) pace(now time.Time) time.Duration {
	q := d.hw.Quiet
	if q == nil {
		return d.tick
	}
	select {
	case <-d.hush.ended:
		d.hush.ended = nil // the world changed since
	default:
	}
	if d.hush.ended != nil {
		if !d.idle() {
			d.wake()
			return d.tick
		}
	} else {
		if now.Before(d.hush.after) {
			return d.hush.waitTick // lately not idle, or the world still settling
		}
		idle := d.idle()
		ended, ok := (<-chan struct{})(nil), false
		if idle {
			ended, ok = q.Hush()
		}
		if !ok {
			d.hush.after = now.Add(hushRetry)
			d.hush.waitTick = d.tick
			if idle {
				// Nothing to watch but the world settling: a slower tick
				// (a message still starts a session at once, see Run).
				d.hush.waitTick = max(d.tick, settleTick)
			}
			return d.hush.waitTick
		}
		d.hush.ended = ended
	}
	due := now.Add(hushTick)
	if t := d.qr.Due(); !t.IsZero() && t.Before(due) {
		due = t
	}
	if d.disp.receipt != nil && d.disp.until.Before(due) {
		due = d.disp.until
	}
	return max(due.Sub(now), d.tick)
}

// wake ends a hush the cabinet asked for, so that the scales sample again
// before it acts on them.
func (d *Device) wake() {
	if d.hush.ended != nil {
		d.hw.Quiet.Wake()
		d.hush.ended = nil
	}
}
