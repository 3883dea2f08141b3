package firmware

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// stuckLock's bolt sensor reports "open" while stuck is set, as a bolt
// that did not latch behind a shut door would.
type stuckLock struct {
	hal.Lock
	stuck *atomic.Bool
}

func (l stuckLock) Locked(ctx context.Context) (bool, error) {
	if l.stuck.Load() {
		return false, nil
	}
	return l.Lock.Locked(ctx)
}

func TestLockThatDoesNotLatch(t *testing.T) {
	r := newRig(t)
	var stuck atomic.Bool
	r.wrap = func(hw hal.Cabinet) hal.Cabinet {
		hw.Doors[0].Lock = stuckLock{hw.Doors[0].Lock, &stuck}
		return hw
	}
	r.restart()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.waitIdle()

	stuck.Store(true)
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmLockFault)) == 1 }, 5*time.Second)
	if m := r.d.Status().Mode; m != msg.ModeOutOfService {
		t.Fatalf("mode %q with an unlatched lock", m)
	}
	cmd := r.unlockCmd()
	r.send(cmd)
	if rep := r.reply(cmd.ID, msg.ErrOutOfService); !strings.Contains(rep.Detail, "lock") {
		t.Fatalf("detail %q", rep.Detail)
	}
	r.noSession()
	stepFor(t, r.d, 200*time.Millisecond)
	if n := len(r.alarms(msg.AlarmLockFault)); n != 1 {
		t.Fatalf("%d lock_fault alarms, want it raised once", n)
	}

	stuck.Store(false)
	stepUntil(t, r.d, func() bool {
		for _, a := range r.alarms(msg.AlarmLockFault) {
			if a.Cleared {
				return true
			}
		}
		return false
	}, 5*time.Second)
	r.waitIdle()
}
