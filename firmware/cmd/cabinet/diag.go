package main

// `cabinet diag`: the technician's walk through every part of the cabinet,
// with the firmware stopped.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bangfu/cabinet/firmware/tech"
	"github.com/bangfu/cabinet/hal/sim"
)

// simTechRate is the sample rate of the virtual cabinet the technician's
// commands use: an HX711 with RATE tied high, so calibrating takes seconds.
const simTechRate = 80

// openRig opens the hardware named by --board or --hal; a board's shelves
// use cals (shelves without one report that they are not calibrated). For
// --hal sim it also returns the hand that acts on the virtual cabinet for
// the technician. The returned close function stops and halts what was
// opened.
func openRig(ctx context.Context, boardPath, halKind string, cals *shelfCals) (tech.Rig, func(tech.Prompter) tech.Prompter, func() error, error) {
	noHand := func(p tech.Prompter) tech.Prompter { return p }
	switch {
	case (boardPath == "") == (halKind == ""):
		return tech.Rig{}, nil, nil, fmt.Errorf("cabinet: give either --board FILE or --hal sim (%w)", errUsage)
	case boardPath != "":
		rig, closeFn, err := openBoard(ctx, boardPath, cals)
		return rig, noHand, closeFn, err
	case halKind != "sim":
		return tech.Rig{}, nil, nil, fmt.Errorf("cabinet: unknown --hal %q: want sim (%w)", halKind, errUsage)
	}
	c, err := sim.New(sim.Config{Doors: 1, SampleRate: simTechRate})
	if err != nil {
		return tech.Rig{}, nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(sctx) }()
	closeFn := func() error {
		cancel()
		return <-done
	}
	hand := func(p tech.Prompter) tech.Prompter { return tech.NewSimHand(c, p) }
	return tech.Rig{Cabinet: c.Hardware(), Raw: c.RawScales()}, hand, closeFn, nil
}

// rigExit is the exit code for an openRig error: 1 for a bad board file
// or hardware that cannot be opened, 2 for wrong flags.
func rigExit(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// errUsage marks openRig errors caused by the flags.
var errUsage = errors.New("usage")

func runDiag(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("diag", flag.ContinueOnError)
	fset.SetOutput(stderr)
	boardPath := fset.String("board", "", "the cabinet's board file")
	halKind := fset.String("hal", "", "instead of a board: sim, a virtual cabinet")
	cfgPath := fset.String("config", "/etc/bangfu/cabinet.json", "with --board: config file, for the shelves' stored calibrations (data_dir)")
	yes := fset.Bool("yes", false, "answer yes to every question (the doors still need a person)")
	sample := fset.Duration("sample", tech.DefaultDiagOpts.Sample, "how long each shelf's scale is watched")
	doorTimeout := fset.Duration("door-timeout", tech.DefaultDiagOpts.DoorTimeout, "how long to wait for each door move")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() != 0 || *sample <= 0 || *doorTimeout <= 0 {
		fmt.Fprintln(stderr, "usage: cabinet diag (--board FILE [--config FILE] | --hal sim) [--yes] [--sample 5s] [--door-timeout 30s]")
		return 2
	}
	var cals *shelfCals
	if *boardPath != "" && *halKind == "" {
		explicit := false
		fset.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
		var err error
		if cals, err = diagCalibrations(*cfgPath, explicit, stderr); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rig, hand, closeRig, err := openRig(ctx, *boardPath, *halKind, cals)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return rigExit(err)
	}
	defer func() {
		if err := closeRig(); err != nil {
			fmt.Fprintln(stderr, "cabinet: close hardware:", err)
		}
	}()
	var p tech.Prompter = tech.NewLinePrompter(stdin, stdout)
	if *yes {
		p = tech.Yes{Out: stdout}
	}
	rep, err := tech.Diag(ctx, rig, hand(p), stdout, &tech.DiagOpts{Sample: *sample, DoorTimeout: *doorTimeout})
	if err != nil {
		fmt.Fprintln(stderr, "cabinet: diag stopped:", err)
		return 1
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "cabinet: %d checks failed\n", len(rep.Failed()))
		return 1
	}
	return 0
}
