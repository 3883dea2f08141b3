package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/hal/sim/remote"
)

// simDialTimeout is how long start-up waits for the simulator's socket.
const simDialTimeout = 30 * time.Second

// runSimSocket runs the firmware against one of the simulator's virtual
// cabinets, reached over the socket at path (cabsim -firmware=process
// starts us so). The hardware, and so the doors, locks and weights, lives
// in the simulator and survives this process being killed.
func runSimSocket(cfg config.Config, path string, log *slog.Logger) int {
	if path == "" {
		fmt.Fprintln(os.Stderr, "cabinet: --hal sim-socket needs --sim-socket PATH")
		return 2
	}
	key, err := loadKey(filepath.Join(cfg.DataDir, "device.key"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dctx, cancel := context.WithTimeout(ctx, simDialTimeout)
	cl, err := remote.Dial(dctx, path, &remote.Opts{Logger: log})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cabinet:", err)
		return 1
	}
	defer cl.Close()
	return runFirmware(ctx, cfg, key, cl.Hardware(), cl.Run, log, os.Stderr,
		func(ctx context.Context, dev *firmware.Device) { reportStatus(ctx, cl, dev) })
}

// reportStatus sends the firmware's status to the simulator when it
// changes (and once a second regardless), so the simulator's API can show
// the mode and session of a firmware that runs in another process.
func reportStatus(ctx context.Context, cl *remote.Client, dev *firmware.Device) {
	const (
		every   = 100 * time.Millisecond
		refresh = time.Second
	)
	t := time.NewTicker(every)
	defer t.Stop()
	var last []byte
	var lastAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, err := json.Marshal(dev.Status())
		if err != nil {
			continue // a Status always marshals; nothing to report otherwise
		}
		if bytes.Equal(b, last) && time.Since(lastAt) < refresh {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err = cl.Report(rctx, b)
		cancel()
		if err == nil {
			last, lastAt = b, time.Now()
		}
	}
}
