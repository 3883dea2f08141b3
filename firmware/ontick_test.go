package firmware

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
)

// stuckSensor is a door switch whose read hangs, while stuck is set, until
// release is closed: the device loop stuck on hardware.
type stuckSensor struct {
	hal.DoorSensor
	stuck   *atomic.Bool
	entered chan<- struct{}
	release <-chan struct{}
}

func (s stuckSensor) Closed(ctx context.Context) (bool, error) {
	if s.stuck.Load() {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
	return s.DoorSensor.Closed(ctx)
}

// OnTick (the service watchdog's keep-alive) is called while the loop
// ticks, stops while it is stuck, and resumes when it runs again.
func TestOnTickStopsWhenLoopStuck(t *testing.T) {
	r := newRig(t)
	r.close() // the rig's Device is not the one under test
	var stuck atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	hw := r.hw.Hardware()
	hw.Quiet = nil // ticks at the tick, never hushed
	for i := range hw.Doors {
		hw.Doors[i].Sensor = stuckSensor{hw.Doors[i].Sensor, &stuck, entered, release}
	}
	const tick = 5 * time.Millisecond
	ticks := make(chan struct{}, 1024)
	d, err := New(Opts{Config: r.cfg, Hardware: hw, DeviceKey: r.key, Logger: slog.New(slog.DiscardHandler), Tick: tick,
		OnTick: func() {
			select {
			case ticks <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	waitTick := func(what string) {
		t.Helper()
		select {
		case <-ticks:
		case <-time.After(10 * time.Second):
			t.Fatalf("no tick %s", what)
		}
	}
	for range 3 {
		waitTick("from a running loop")
	}

	stuck.Store(true)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop never read the door")
	}
	// Every tick before the loop got stuck was sent before it entered the
	// read (same goroutine); none may come after.
	for len(ticks) > 0 {
		<-ticks
	}
	select {
	case <-ticks:
		t.Fatal("OnTick called while the loop is stuck")
	case <-time.After(100 * tick):
	}

	stuck.Store(false)
	close(release)
	waitTick("after the loop got going again")
}
