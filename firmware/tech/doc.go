// Package tech holds the technician's procedures run at the cabinet with
// the firmware stopped: Diag walks every lock, door switch, shelf scale,
// the display, indicator and thermometer and prints a pass/fail table;
// Calibrate tares a shelf and fits its counts-per-gram from reference
// weights.
//
// The procedures work only through hal interfaces (a Rig), so the same code
// runs against real boards and against hal/sim; the person at the cabinet is
// a Prompter. SimHand, a technician's hands on a virtual cabinet, is the one
// part that knows the simulator. It owns the procedures and their pass/fail limits. It must not
// store anything (the command saves a calibration in the ledger), build
// drivers (the board wiring does) or run while the firmware daemon drives
// the same hardware.
package tech

import (
	"errors"

	"github.com/bangfu/cabinet/hal"
)

// Rig is the hardware a procedure works on.
type Rig struct {
	Cabinet hal.Cabinet
	// Raw maps shelf numbers to the shelves' amplifiers, read directly for
	// raw counts (a Scale only gives calibrated grams).
	Raw map[int]hal.RawScale
	// RawRight maps the numbers of shelves carried by two load cells to
	// their right cells' amplifiers (Raw then holds the left ones); nil or
	// without an entry for a one-cell shelf.
	RawRight map[int]hal.RawScale
}

// Errors the procedures return.
var (
	// ErrAborted means the technician answered no to a step that needs yes.
	ErrAborted = errors.New("tech: aborted by the technician")
	// ErrNoAnswer means the prompter's input ended before an answer.
	ErrNoAnswer = errors.New("tech: no answer (input ended)")
)
