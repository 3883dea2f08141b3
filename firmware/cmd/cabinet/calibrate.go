package main

// `cabinet calibrate`: tare one shelf (or one load cell of a shelf carried
// by two, --cell) and fit its counts per gram from reference weights, then
// store the result in the device's ledger, where calibration lives (it is
// data, not config).

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/firmware/tech"
)

// defaultRefs are the reference weights used without --ref: two points, so
// the residual can show a misplaced weight.
var defaultRefs = []float64{500, 1000}

// refsFlag collects repeated --ref values in grams.
type refsFlag []float64

func (r *refsFlag) String() string {
	var s []string
	for _, g := range *r {
		s = append(s, strconv.FormatFloat(g, 'g', -1, 64))
	}
	return strings.Join(s, ",")
}

func (r *refsFlag) Set(v string) error {
	g, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "g"), 64)
	if err != nil || !(g > 0) {
		return fmt.Errorf("reference weight %q: want grams, e.g. 500", v)
	}
	*r = append(*r, g)
	return nil
}

const calibrateUsage = "usage: cabinet calibrate (--board FILE | --hal sim) --shelf N [--cell left|right] [--ref 500] [--ref 1000] [--config FILE] [--samples 20] [--settle 2s]"

func runCalibrate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	fset.SetOutput(stderr)
	boardPath := fset.String("board", "", "the cabinet's board file")
	halKind := fset.String("hal", "", "instead of a board: sim, a virtual cabinet")
	shelf := fset.Int("shelf", 0, "the shelf to calibrate")
	cellName := fset.String("cell", "left", "the load cell of a shelf carried by two: left or right (a one-cell shelf's only cell is left)")
	cfgPath := fset.String("config", "/etc/bangfu/cabinet.json", "config file (for data_dir)")
	samples := fset.Int("samples", tech.DefaultCalibrateOpts.Samples, "raw samples averaged at each point")
	settle := fset.Duration("settle", tech.DefaultCalibrateOpts.Settle, "wait after each confirmation before sampling")
	var refs refsFlag
	fset.Var(&refs, "ref", "a reference weight in grams, total on the shelf; repeat for more points (default 500 and 1000)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	cell, cellErr := ledger.ParseCell(*cellName)
	if fset.NArg() != 0 || *shelf < 1 || *samples < 2 || *settle < 0 || cellErr != nil {
		if cellErr != nil {
			fmt.Fprintf(stderr, "cabinet: --cell %q: want left or right\n", *cellName)
		}
		fmt.Fprintln(stderr, calibrateUsage)
		return 2
	}
	if len(refs) == 0 {
		refs = defaultRefs
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The ledger is opened first: while the firmware runs it holds the
	// file, and the technician must stop it before touching the hardware.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		fmt.Fprintln(stderr, "cabinet:", err)
		return 1
	}
	ledgerPath := filepath.Join(cfg.DataDir, "ledger.db")
	led, err := ledger.Open(ledgerPath)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n(is the cabinet service running? stop it before calibrating)\n", err)
		return 1
	}
	defer func() {
		if err := led.Close(); err != nil {
			fmt.Fprintln(stderr, "cabinet: close ledger:", err)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// No calibrations: only raw counts are measured, and without them no
	// scale filter runs to take samples from the shelf being calibrated.
	rig, hand, closeRig, err := openRig(ctx, *boardPath, *halKind, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return rigExit(err)
	}
	defer func() {
		if err := closeRig(); err != nil {
			fmt.Fprintln(stderr, "cabinet: close hardware:", err)
		}
	}()
	if _, ok := rig.Raw[*shelf]; !ok {
		fmt.Fprintf(stderr, "cabinet: no shelf %d on this cabinet\n", *shelf)
		return 2
	}
	// A two-cell shelf's cells are calibrated one at a time, each with the
	// weights placed over it; the shelf is out of service until both are.
	twoCell := rig.RawRight[*shelf] != nil
	what := fmt.Sprintf("shelf %d", *shelf)
	switch {
	case cell == ledger.CellRight && !twoCell:
		fmt.Fprintf(stderr, "cabinet: shelf %d has one load cell: --cell right is for a shelf with hx711_right in its board file\n", *shelf)
		return 2
	case twoCell:
		what = fmt.Sprintf("shelf %d %s cell", *shelf, cell)
	}
	fmt.Fprintf(stdout, "calibrating %s with %s g\n", what, refs.String())
	cal, err := tech.CalibrateCell(ctx, rig, *shelf, cell, hand(tech.NewLinePrompter(stdin, stdout)), refs,
		&tech.CalibrateOpts{Samples: *samples, Settle: *settle, Out: stdout})
	if err != nil {
		fmt.Fprintln(stderr, "cabinet: calibration refused:", err)
		return 1
	}
	n, err := led.SaveCellCalibration(*shelf, cell, cal)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s calibration #%d stored in %s: offset %d counts, %.4f counts per gram\n",
		what, n, ledgerPath, cal.Calibration.Offset, cal.Calibration.CountsPerGram)
	if twoCell {
		other := ledger.CellRight
		if cell == ledger.CellRight {
			other = ledger.CellLeft
		}
		if stored, err := led.CellCalibrations(other); err == nil {
			if _, ok := stored[*shelf]; !ok {
				fmt.Fprintf(stdout, "shelf %d's %s cell is not calibrated yet: run cabinet calibrate --shelf %d --cell %s\n",
					*shelf, other, *shelf, other)
			}
		}
	}
	return 0
}
