package firmware

import (
	"github.com/bangfu/cabinet/firmware/fsm"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// unsettledFirst is a scale that reports its first n readings as not
// settled, as a filter does while its window refills after a restart.
type unsettledFirst struct {
	hal.Scale
	left *atomic.Int32
}

func (u unsettledFirst) Reading() (hal.Reading, error) {
	r, err := u.Scale.Reading()
	if u.left.Add(-1) >= 0 {
		r.Settled = false
	}
	return r, err
}

// The firmware comes back an hour after the door closed on a session. The
// settle timeout runs from the later of the close and the firmware's start,
// so scales that need a few readings to settle again are waited for rather
// than judged at once as timed out (which flags the sale). This failed while
// the start time was never recorded.
func TestSettleTimeoutCountsFromStart(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	basket := r.basket(1, 1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.Settling)

	// Down for an hour; the scales settle again only after a few reads.
	r.now = func() time.Time { return r.clk.Now().Add(time.Hour) }
	r.wrap = func(hw hal.Cabinet) hal.Cabinet {
		shelves := make([]hal.Shelf, len(hw.Shelves))
		for i, sh := range hw.Shelves {
			left := &atomic.Int32{}
			left.Store(20)
			sh.Scale = unsettledFirst{Scale: sh.Scale, left: left}
			shelves[i] = sh
		}
		hw.Shelves = shelves
		return hw
	}
	r.restart()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.d.now().Sub(r.d.started); got < 0 || got > time.Minute {
		t.Fatalf("started %v, %v before now: not the firmware's start", r.d.started, got)
	}
	r.stepToState("")
	r.checkSale(r.checkOnlySale(), 1, cmd.SessionID, msg.SaleExact, basket)
}
