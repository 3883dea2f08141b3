package firmware

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal/sim"
)

// serveOpts is a Device's options on a fresh virtual cabinet that Serve is
// to run, offline.
func serveOpts(t *testing.T) (Opts, *sim.Cabinet) {
	t.Helper()
	hw, err := sim.New(sim.Config{Name: "serve", Seed: 3, SampleRate: 100, Doors: 1,
		Shelves: []sim.ShelfConfig{{Shelf: 1, Door: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, key := offlineConfig(t)
	return Opts{Config: cfg, Hardware: hw.Hardware(), DeviceKey: key, Logger: slog.New(slog.DiscardHandler)}, hw
}

// Serve is one power-up: the hardware runs beside the Device, a failing
// hardware stops the firmware with ErrHardware (an exit systemd restarts),
// the caller hears of the Device before Run and gets it back before its
// files close, and every goroutine has returned when Serve does (the
// package's goleak check).
func TestServe(t *testing.T) {
	t.Run("hardware fails", func(t *testing.T) {
		o, hw := serveOpts(t)
		running := make(chan struct{})
		stopped := false
		err := Serve(t.Context(), o, Life{
			// The virtual cabinet runs until the Device is built, then its
			// bus fails.
			Hardware: func(ctx context.Context) error {
				ctx, halt := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- hw.Run(ctx) }()
				var err error
				select {
				case <-running:
					err = errors.New("spi bus gone")
				case <-ctx.Done():
				}
				halt()
				<-done
				return err
			},
			Running: func(*Device) { close(running) },
			Stopped: func() { stopped = true },
		})
		if !errors.Is(err, ErrHardware) {
			t.Fatalf("Serve = %v, want ErrHardware", err)
		}
		if !stopped {
			t.Fatal("Stopped was not called")
		}
	})
	t.Run("context ends", func(t *testing.T) {
		o, hw := serveOpts(t)
		ctx, cancel := context.WithCancel(t.Context())
		var order []string
		var dev *Device
		err := Serve(ctx, o, Life{
			Hardware: hw.Run,
			Running: func(d *Device) {
				dev = d
				order = append(order, "running")
				cancel()
			},
			Alongside: []func(context.Context, *Device){func(ctx context.Context, d *Device) {
				<-ctx.Done() // stops with the hardware
			}},
			Stopped: func() {
				order = append(order, "stopped")
				// The files are still open: the caller may read them.
				if _, err := dev.Ledger().Stock(); err != nil {
					t.Errorf("ledger in Stopped: %v", err)
				}
			},
		})
		if err != nil {
			t.Fatalf("Serve = %v, want nil when the context ends", err)
		}
		if len(order) != 2 || order[0] != "running" || order[1] != "stopped" {
			t.Fatalf("calls %v, want running then stopped", order)
		}
	})
	t.Run("cannot build", func(t *testing.T) {
		o, hw := serveOpts(t)
		o.Config.CabinetID = ""
		ran := false
		start := time.Now()
		err := Serve(t.Context(), o, Life{Hardware: hw.Run, Running: func(*Device) { ran = true }})
		if err == nil || ran {
			t.Fatalf("Serve = %v, running %v: want New's error and no Device", err, ran)
		}
		t.Logf("refused in %v: %v", time.Since(start), err)
	})
}
