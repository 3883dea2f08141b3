package main

// Real hardware from a board file: the daemon's `run --board` and the
// technician's `diag --board` / `calibrate --board`.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/firmware/ota"
	"github.com/bangfu/cabinet/firmware/tech"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/board"
)

// boardHost is how a board file reaches its hardware: this machine's
// (realHost), or fakes in tests.
type boardHost struct {
	resolve func(*board.Board) (board.Resolver, error)
	opts    board.BuildOpts // Calibrations and Logger are set per build
}

var realHost = boardHost{resolve: board.NewHostResolver}

// build builds b's drivers. Shelves missing from cals report a scale fault.
func (h boardHost) build(b *board.Board, cals *shelfCals, log *slog.Logger) (*board.Hardware, error) {
	r, err := h.resolve(b)
	if err != nil {
		return nil, err
	}
	o := h.opts
	cals.apply(&o)
	o.Logger = log
	return board.Build(b, r, &o)
}

// openBoard opens the hardware a board file describes and returns it as a
// technician's rig with the function that stops and halts it. The
// hardware's goroutines (door switches, indicator, scale filters) run until
// that function is called.
func openBoard(ctx context.Context, path string, cals *shelfCals) (tech.Rig, func() error, error) {
	b, err := board.Load(path)
	if err != nil {
		return tech.Rig{}, nil, err
	}
	hw, err := realHost.build(b, cals, nil)
	if err != nil {
		return tech.Rig{}, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hw.Run(rctx) }()
	closeFn := func() error {
		cancel()
		return errors.Join(<-done, hw.Halt())
	}
	return tech.Rig{Cabinet: hw.Cabinet, Raw: hw.Raw, RawRight: hw.RawRight}, closeFn, nil
}

// readCalibrations reads the stored calibrations from cfg's ledger and
// closes it again, so the firmware (or the tool) can open it afterwards.
func readCalibrations(cfg config.Config) (*shelfCals, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cabinet: %w", err)
	}
	led, err := ledger.Open(filepath.Join(cfg.DataDir, "ledger.db"))
	if err != nil {
		return nil, err
	}
	cals, err := storedCalibrations(led)
	if cerr := led.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return cals, err
}

// diagCalibrations finds the calibrations for `diag --board`: from the
// config at cfgPath. The default config may be missing (a bench board has
// none): diag then runs without calibrations and each shelf says it is not
// calibrated. A config named with --config must exist.
func diagCalibrations(cfgPath string, explicit bool, stderr io.Writer) (*shelfCals, error) {
	if !explicit {
		if _, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "cabinet: no %s: shelves are checked without their calibrations (give --config)\n", cfgPath)
			return nil, nil
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	cals, err := readCalibrations(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w\n(is the cabinet service running? stop it before diag)", err)
	}
	return cals, nil
}

// runBoard is `cabinet run --board FILE`: the firmware on the hardware the
// board file describes, reached through host, until ctx ends. Every lock is
// put back to its safe level on the way out, whatever stopped the firmware.
func runBoard(ctx context.Context, cfg config.Config, path string, host boardHost, log *slog.Logger, stderr io.Writer) int {
	// The file first: a technician's typo is the likeliest failure and must
	// not wait for anything else.
	b, err := board.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	key, err := loadKey(filepath.Join(cfg.DataDir, "device.key"))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The ledger is closed again before firmware.New opens it. A ledger
	// that cannot be read leaves every shelf uncalibrated: the firmware
	// still starts, reports its storage and scale faults, and sells nothing.
	cals, err := readCalibrations(cfg)
	if err != nil {
		log.Error("stored calibrations unreadable; every shelf will report a scale fault", "err", err)
		cals = nil
	}
	hw, err := host.build(b, cals, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer func() {
		if err := hw.Halt(); err != nil {
			log.Error("halt hardware", "err", err)
		}
	}()
	log.Info("hardware built", "board", path, "model", b.Model, "doors", len(hw.Cabinet.Doors), "shelves", len(hw.Cabinet.Shelves))
	return runFirmware(ctx, cfg, key, hw.Cabinet, hw.Run, log, stderr)
}

// runFirmware runs the firmware on hw until ctx ends or it stops by itself,
// with hwRun (the hardware's own goroutines) running alongside
// (firmware.Serve); hwRun has returned when runFirmware does. It returns
// the process's exit code: 0 when ctx ended, 3 when the platform asked for
// a reboot (the supervisor restarts us), 1 for anything else — a failing
// hwRun included, so that systemd starts the firmware again. Each
// alongside function runs on its own goroutine with the device once it is
// built, and stops with the hardware.
func runFirmware(ctx context.Context, cfg config.Config, key ed25519.PrivateKey, hw hal.Cabinet,
	hwRun func(context.Context) error, log *slog.Logger, stderr io.Writer,
	alongside ...func(context.Context, *firmware.Device)) int {
	svc := newService(log)
	started := false
	err := firmware.Serve(ctx, firmware.Opts{Config: cfg, Hardware: hw, DeviceKey: key, Logger: log, OnTick: svc.tick,
		Updater: ota.New(cfg.DataDir, cfg.ReleaseKeys, firmware.FW)}, firmware.Life{
		Hardware:  hwRun,
		Alongside: alongside,
		Running:   func(*firmware.Device) { started = true },
		Stopped:   svc.stopping,
	})
	switch {
	case err == nil:
		return 0
	case !started:
		fmt.Fprintln(stderr, err) // the config, the key or the files: the technician's to fix
		return 1
	}
	log.Error("firmware stopped", "err", err)
	if errors.Is(err, firmware.ErrReboot) {
		return 3
	}
	return 1
}
