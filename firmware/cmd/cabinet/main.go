// Command cabinet is the device binary: the firmware daemon and the
// technician's subcommands.
//
//	cabinet run           the firmware: on the hardware of a board file (--board) or simulated (--hal)
//	cabinet check-config  validate a config file and exit
//	cabinet check-planogram  the planogram lint: warnings, predicted exact rate, worst confusions
//	cabinet keygen        make the device's Ed25519 key (mode 0600) and print its public key
//	cabinet provision     make the device's keys and a certificate request for the platform
//	cabinet firstboot     provision from the boot partition's bangfu.txt and show the registration QR code (firstboot.go)
//	cabinet diag          check every lock, door, shelf, display, thermometer and indicator, firmware stopped
//	cabinet calibrate     tare a shelf, fit it to reference weights and store the result in the ledger
//	cabinet storage       show or clear a storage fault (a corrupt or lost ledger set aside)
//	cabinet release-sign  sign a firmware build for the update command (ota.go)
//	cabinet version       print the firmware version
//	cabinet help          what each subcommand does (help.go)
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/internal/logx"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
)

const usage = `usage:
  cabinet run --config FILE (--board FILE | --hal sim [--shelves N] | --hal sim-socket --sim-socket PATH)
  cabinet check-config FILE
  cabinet check-planogram [--noise-g 0.5] [--sessions 2000] [--two-cell] [--revenue-first] STOCKFILE
  cabinet keygen --out FILE
  cabinet release-sign --key FILE [--kid ID] --version V [--min-version M] --url URL BINARY
  cabinet provision --id C --platform-key kid=FILE [--platform-key kid=FILE …] [--broker URL] [--data-dir DIR] [--config FILE] [--force]
  cabinet firstboot [--boot DIR] [--etc DIR] [--data-dir DIR] [--show 10m] [--qr]
  cabinet diag (--board FILE [--config FILE] | --hal sim) [--yes] [--sample 5s] [--door-timeout 30s]
  cabinet calibrate (--board FILE | --hal sim) --shelf N [--ref 500] [--ref 1000] [--config FILE]
  cabinet storage status|clear [--config FILE]
  cabinet version
  cabinet help [SUBCOMMAND]`

// build is the package's version (git describe), set by the packaging
// with -ldflags "-X main.build=…"; empty in a plain go build.
var build string

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	return runWith(args, os.Stdin, os.Stdout, os.Stderr)
}

// runWith is the command line on explicit streams; it returns the exit
// status: 0 done, 1 failed, 2 bad usage (others as a subcommand says).
func runWith(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		fmt.Fprintln(stderr, "\n`cabinet help` says what each subcommand does.")
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 {
			printHelp(stdout)
			return 0
		}
		name := args[1]
		if helpAsked(args[1:2]) {
			name = "help" // help -h
		}
		c, ok := lookupCommand(name)
		if !ok || len(args) > 2 {
			fmt.Fprintf(stderr, "cabinet: no help for %q: unknown subcommand; `cabinet help` lists them\n", strings.Join(args[1:], " "))
			return 2
		}
		printCommandHelp(stdout, c)
		return 0
	}
	c, ok := lookupCommand(args[0])
	if !ok {
		fmt.Fprintf(stderr, "cabinet: unknown subcommand %q; `cabinet help` lists them\n", args[0])
		return 2
	}
	if helpAsked(args[1:]) {
		printCommandHelp(stdout, c)
		return 0
	}
	switch args[0] {
	case "version":
		if build != "" && build != firmware.FW {
			fmt.Fprintf(stdout, "cabinet %s (package %s)\n", firmware.FW, build)
		} else {
			fmt.Fprintln(stdout, "cabinet", firmware.FW)
		}
		return 0
	case "check-config":
		return runCheckConfig(args[1:], stdout, stderr)
	case "keygen":
		return runKeygen(args[1:], stdout, stderr)
	case "check-planogram":
		return runCheckPlanogram(args[1:], stdout, stderr)
	case "provision":
		return runProvision(args[1:], stdout, stderr)
	case "firstboot":
		return runFirstboot(args[1:], stdout, stderr)
	case "diag":
		return runDiag(args[1:], stdin, stdout, stderr)
	case "storage":
		return runStorage(args[1:], stdout, stderr)
	case "calibrate":
		return runCalibrate(args[1:], stdin, stdout, stderr)
	case "run":
		return runDaemon(args[1:], stderr)
	case "release-sign":
		return runReleaseSign(args[1:], stdout, stderr)
	}
	// A subcommand with help but no code: a bug here, not the user's.
	fmt.Fprintf(stderr, "cabinet: %s: not implemented\n", args[0])
	return 2
}

// runKeygen is `cabinet keygen --out FILE`.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("out", "", "where to write the key seed")
	if err := fset.Parse(args); err != nil || *out == "" || fset.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: cabinet keygen --out FILE")
		return 2
	}
	if _, err := os.Stat(*out); err == nil {
		fmt.Fprintf(stderr, "cabinet: %s exists; refusing to replace a device key\n", *out)
		return 1
	}
	pub, k, err := ed25519.GenerateKey(rand.Reader)
	if err == nil {
		// O_EXCL: never over a file that appeared since the check.
		var f *os.File
		f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.Write(k.Seed())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(*out)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "cabinet:", err)
		return 1
	}
	fmt.Fprintln(stdout, msg.EncodeKey(pub))
	return 0
}

func runDaemon(args []string, stderr io.Writer) int {
	fset := flag.NewFlagSet("run", flag.ContinueOnError)
	fset.SetOutput(stderr)
	cfgPath := fset.String("config", "/etc/bangfu/cabinet.json", "config file")
	halKind := fset.String("hal", "", "hardware backend: sim (virtual, in this process) or sim-socket (the simulator's, over --sim-socket)")
	boardPath := fset.String("board", "", "the cabinet's board file: run on its real hardware (instead of --hal)")
	simSocket := fset.String("sim-socket", "", "with --hal sim-socket: the simulator's socket for this cabinet")
	shelves := fset.Int("shelves", 4, "with --hal sim: shelves behind door 1")
	verbose := fset.Bool("v", false, "debug logging")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if *boardPath != "" && *halKind != "" {
		fmt.Fprintln(stderr, "cabinet: give either --board FILE or --hal, not both")
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	// One handler for the process, rate-limited per key (logx): the
	// firmware, its link and paho share its table and its clock.
	log := slog.New(logx.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}), logx.Options{}))
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printConfigError(stderr, *cfgPath, err)
		return 1
	}
	// Which firmware version runs is decided first: this binary goes on,
	// or it execs an updated one (ota.go, docs/updates.md).
	if code, exit := launch(cfg, log); exit {
		return code
	}
	// paho's loggers are process-wide; this process is one cabinet.
	telemetry.RoutePahoLogs(log.With("cabinet", cfg.CabinetID))
	if *boardPath != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runBoard(ctx, cfg, *boardPath, realHost, log, stderr)
	}
	if *halKind == "sim-socket" {
		return runSimSocket(cfg, *simSocket, log)
	}
	if *halKind != "sim" {
		fmt.Fprintln(stderr, "cabinet: give --board FILE for real hardware, or --hal sim or --hal sim-socket")
		return 2
	}
	key, err := loadKey(filepath.Join(cfg.DataDir, "device.key"))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	hwCfg := sim.Config{Doors: 1}
	for i := 1; i <= *shelves; i++ {
		hwCfg.Shelves = append(hwCfg.Shelves, sim.ShelfConfig{Shelf: i, Door: 1})
	}
	hw, err := sim.New(hwCfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runFirmware(ctx, cfg, key, hw.Hardware(), hw.Run, log, stderr)
}

// loadKey reads the device key, refusing a file others can read.
func loadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cabinet: no device key at %s (make one with `cabinet keygen --out %s`)", path, path)
	}
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cabinet: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("cabinet: %s is not an Ed25519 seed", path)
	}
	return ed25519.NewKeyFromSeed(b), nil
}
