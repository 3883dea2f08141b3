package main

// Calibrations per load cell: a shelf's only (or left) cell, and the right
// cell of a shelf carried by two.

import (
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal/board"
	"github.com/bangfu/cabinet/hal/scale"
)

// shelfCals are the stored calibrations a board's shelves are built with;
// a nil *shelfCals is none.
type shelfCals struct {
	left  map[int]scale.Calibration // each shelf's only or left cell
	right map[int]scale.Calibration // two-cell shelves' right cells
}

// apply sets o's calibrations.
func (c *shelfCals) apply(o *board.BuildOpts) {
	if c == nil {
		o.Calibrations, o.RightCalibrations = nil, nil
		return
	}
	o.Calibrations, o.RightCalibrations = c.left, c.right
}

// storedCalibrations converts the ledger's calibration records of both
// cells to what the scale filters take.
func storedCalibrations(led *ledger.Ledger) (*shelfCals, error) {
	out := &shelfCals{}
	for _, cell := range []ledger.Cell{ledger.CellLeft, ledger.CellRight} {
		stored, err := led.CellCalibrations(cell)
		if err != nil {
			return nil, err
		}
		cals := make(map[int]scale.Calibration, len(stored))
		for shelf, c := range stored {
			cals[shelf] = c.Calibration
		}
		if cell == ledger.CellRight {
			out.right = cals
		} else {
			out.left = cals
		}
	}
	return out, nil
}
