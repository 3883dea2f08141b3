package main

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/board"
	"github.com/bangfu/cabinet/hal/scale"
)

// TestTwoCellCalibrationsReachBuild stores calibrations per cell and checks
// that a two-cell shelf is built calibrated only when both of its cells
// are, and that a one-cell shelf keeps its record.
func TestTwoCellCalibrationsReachBuild(t *testing.T) {
	led, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	cal := func(k float64) ledger.StoredCalibration {
		return ledger.StoredCalibration{Calibration: scale.Calibration{CountsPerGram: k}}
	}
	for _, c := range []struct {
		shelf int
		cell  ledger.Cell
		k     float64
	}{{1, ledger.CellLeft, 400}, {1, ledger.CellRight, 410}, {2, ledger.CellLeft, 420}, {3, ledger.CellLeft, 430}} {
		if _, err := led.SaveCellCalibration(c.shelf, c.cell, cal(c.k)); err != nil {
			t.Fatal(err)
		}
	}
	cals, err := storedCalibrations(led)
	if err != nil {
		t.Fatal(err)
	}
	wantLeft := map[int]scale.Calibration{1: {CountsPerGram: 400}, 2: {CountsPerGram: 420}, 3: {CountsPerGram: 430}}
	wantRight := map[int]scale.Calibration{1: {CountsPerGram: 410}}
	if !reflect.DeepEqual(cals.left, wantLeft) || !reflect.DeepEqual(cals.right, wantRight) {
		t.Fatalf("stored calibrations left %v right %v", cals.left, cals.right)
	}

	// Shelf 1 and 3 on two cells (3's right one not calibrated), shelf 2
	// on one.
	b, err := board.Parse("two.yaml", []byte(`model: two-cell
host: rpi4
display: {fbdev: {device: /dev/fb0}}
doors:
  - {number: 1, lock: {pin: GPIO5, active_low: true, fail_safe: false}, switch: {pin: GPIO6, closed_level: low, pull: up}}
shelves:
  - number: 1
    door: 1
    hx711: {clock: GPIO17, data: GPIO27, shared_clock: true}
    hx711_right: {clock: GPIO17, data: GPIO22, shared_clock: true}
  - {number: 2, door: 1, hx711: {clock: GPIO23, data: GPIO24}}
  - number: 3
    door: 1
    hx711: {clock: GPIO12, data: GPIO13}
    hx711_right: {clock: GPIO16, data: GPIO26}
`))
	if err != nil {
		t.Fatal(err)
	}
	fh := &fakeHost{pins: map[string]*recPin{}}
	hw, err := fh.host(t).build(b, cals, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := hw.Halt(); err != nil {
			t.Fatal(err)
		}
	}()
	calibrated := func(s hal.Scale) bool {
		if s == nil {
			return false
		}
		_, err := s.Reading() // before any sample: nil unless not calibrated
		return !errors.Is(err, board.ErrNotCalibrated)
	}
	for _, s := range hw.Cabinet.Shelves {
		wantRight := s.Number != 2
		if (s.Right != nil) != wantRight {
			t.Errorf("shelf %d Right %v", s.Number, s.Right)
		}
		want := s.Number != 3
		if calibrated(s.Scale) != want || (wantRight && calibrated(s.Right) != want) {
			t.Errorf("shelf %d: total calibrated %v, right %v; want %v", s.Number, calibrated(s.Scale), calibrated(s.Right), want)
		}
	}
	if f, ok := hw.Cabinet.Shelves[0].Right.(*scale.Filter); !ok || f.Calibration() != wantRight[1] {
		t.Errorf("shelf 1 right scale %T does not use the right cell's calibration", hw.Cabinet.Shelves[0].Right)
	}
	if hw.RawRight[1] == nil || hw.RawRight[3] == nil || hw.RawRight[2] != nil {
		t.Errorf("RawRight %v", hw.RawRight)
	}

	var none *shelfCals
	var o board.BuildOpts
	none.apply(&o)
	if o.Calibrations != nil || o.RightCalibrations != nil {
		t.Errorf("nil calibrations applied as %+v", o)
	}
}
