package firmware

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Life is what runs around a Device for one power-up, and who hears of it.
type Life struct {
	// Hardware runs the hardware's own goroutines (sampling, edge watches)
	// until its context ends. An error from it stops the firmware. Nil when
	// the caller runs the hardware itself (the simulator's cabinets, whose
	// world outlives the firmware).
	Hardware func(context.Context) error
	// Alongside run on their own goroutines with the Device once it is
	// built, until the hardware stops (the simulator socket's status feed).
	Alongside []func(context.Context, *Device)
	// Running hears of the Device once it is built; Stopped once Run has
	// returned, before the Device's files are closed, so a caller that
	// hands the Device out can take it back while it still works.
	Running func(*Device)
	Stopped func()
}

// ErrHardware wraps the error that stopped the hardware, and with it the
// firmware.
var ErrHardware = errors.New("hardware stopped")

// Serve is one power-up of a cabinet: it builds the Device from o (New,
// the composition root), runs it with the hardware and l's goroutines until
// ctx ends, the platform asks for a reboot (ErrReboot) or the hardware
// fails (ErrHardware), and closes it. Every goroutine it started has
// returned when it does. The device binary (cabinet run) and the
// simulator's in-process cabinets both live through it.
//
// It returns nil when ctx ended, New's error when the Device could not be
// built (Running was not called), and otherwise what stopped it joined with
// any error closing the Device's files.
func Serve(ctx context.Context, o Opts, l Life) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	hwCtx, stopHW := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopHW()
	var hwErr error // written by the hardware's goroutine, read after wg.Wait
	if l.Hardware != nil {
		wg.Go(func() {
			if err := l.Hardware(hwCtx); err != nil && hwCtx.Err() == nil {
				hwErr = fmt.Errorf("%w: %w", ErrHardware, err)
				stop()
			}
		})
	}
	d, err := New(o)
	if err != nil {
		return err
	}
	if l.Running != nil {
		l.Running(d)
	}
	for _, f := range l.Alongside {
		wg.Go(func() { f(hwCtx, d) })
	}
	err = d.Run(ctx)
	if l.Stopped != nil {
		l.Stopped()
	}
	stopHW()
	wg.Wait()
	return errors.Join(err, hwErr, d.Close())
}
