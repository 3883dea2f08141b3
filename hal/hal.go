// Package hal declares the cabinet's hardware as small interfaces, one per
// physical thing. The firmware sees only these; drivers (periph.io for real
// boards, hal/sim for the simulator) implement them.
//
// hal owns no policy: it never imports firmware, payment, telemetry or
// simulator. Every blocking call takes a context.
package hal

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrFault means the device answered but its answer cannot be trusted
	// (saturated load cell, missing chip, jammed lock).
	ErrFault = errors.New("hal: device fault")
	// ErrClosed means the device was halted or its backend went away.
	ErrClosed = errors.New("hal: device closed")
)

// Lock is one door's lock. A fail-secure lock is locked when released.
// Halt returns the lock to its safe (released) level.
type Lock interface {
	// Energise pulls the bolt so the door can be opened.
	Energise(ctx context.Context) error
	// Release lets the bolt go back; the door locks once it is closed.
	Release(ctx context.Context) error
	// Locked reports the lock's feedback: whether the bolt is engaged.
	// Locks without a feedback pin report the commanded state.
	Locked(ctx context.Context) (bool, error)
	String() string
	Halt() error
}

// DoorSensor is a door's reed switch, already debounced.
type DoorSensor interface {
	// Closed reports the debounced state of the door.
	Closed(ctx context.Context) (bool, error)
	String() string
	Halt() error
}

// DoorLatch is implemented by door sensors that latch an opening, so that
// a door opened and shut again between two reads of Closed is still seen.
// The firmware reads it on every tick beside Closed.
type DoorLatch interface {
	// Opened reports whether the door has opened (debounced) since the
	// last call, and clears the latch. The first call reports openings
	// since the sensor started.
	Opened(ctx context.Context) (bool, error)
}

// RawScale is a load-cell amplifier giving raw signed counts (an HX711).
// ReadRaw blocks until the chip has a new sample.
type RawScale interface {
	ReadRaw(ctx context.Context) (int32, error)
	String() string
	Halt() error
}

// Reading is a shelf's filtered weight.
type Reading struct {
	Grams   float64   // mean over the filter window
	NoiseG  float64   // standard deviation of the samples in the window
	Samples int       // samples in the window
	Settled bool      // the load is steady: no trend and little spread
	At      time.Time // UTC time of the newest sample, or up to which a hush vouched for the window (Quiet)
	Oldest  time.Time // UTC time of the oldest sample in the window
}

// Scale is one shelf's scale: calibrated, filtered grams with a settled
// judgement.
type Scale interface {
	// Reading returns the newest filtered reading. It fails with ErrFault
	// when the load cell is dead or saturated.
	Reading() (Reading, error)
	String() string
}

// Screen is what the display shows: a QR code and short status text, and
// optionally a Chinese headline and more lines (a receipt).
//
// Screen stays comparable with ==: drivers and the firmware skip a redraw
// when the screen has not changed.
type Screen struct {
	QR     string // text encoded in the QR code; empty shows no code
	Status string // one or two short lines under the code (English: ASCII and ¥)
	// Title, optional, is the headline in Chinese, drawn large above the
	// code with the display's CJK font; "\n" breaks it.
	Title string
	// Body, optional, is more lines under the status in the CJK font, one
	// per "\n". A tab splits a line into cells: the first is left-aligned
	// (and cut short to fit), the last right-aligned, a middle one
	// right-aligned in a column before the last (a receipt's name, quantity
	// and amount). A line of exactly "---" is a horizontal rule.
	Body string
}

// Display shows the QR code and status text.
type Display interface {
	Show(ctx context.Context, s Screen) error
	String() string
	Halt() error
}

// Thermometer reads the cabinet's air temperature.
type Thermometer interface {
	Celsius(ctx context.Context) (float64, error)
	String() string
}

// Signal is what the indicator shows.
type Signal int

// Signals an Indicator can show.
const (
	SignalOff   Signal = iota
	SignalReady        // idle, waiting for a scan
	SignalOpen         // door may be opened
	SignalAlarm        // something needs a person
	SignalFault        // a hardware fault: the cabinet needs a technician
)

func (s Signal) String() string {
	switch s {
	case SignalOff:
		return "off"
	case SignalReady:
		return "ready"
	case SignalOpen:
		return "open"
	case SignalAlarm:
		return "alarm"
	case SignalFault:
		return "fault"
	}
	return "unknown"
}

// Indicator is the LED and buzzer.
type Indicator interface {
	Set(ctx context.Context, s Signal) error
	String() string
	Halt() error
}

// Shelf ties a shelf number to its door and scale.
type Shelf struct {
	Number int
	Door   int
	// Scale is the shelf's whole load: on a shelf carried by two load
	// cells, the sum of both.
	Scale Scale
	// Right, optional, is the right load cell alone on a shelf carried by
	// two (a left and a right one), filtered and calibrated like Scale.
	// With Scale it gives the load's centre of mass: a unit of w grams at
	// position x along the shelf (0 over the left cell, 1 over the right)
	// loads the right cell with x·w. nil on a shelf with one load cell.
	Right Scale
}

// Door ties a door number to its lock and switch.
type Door struct {
	Number int
	Lock   Lock
	Sensor DoorSensor
}

// Cabinet is the whole set of hardware the firmware drives.
type Cabinet struct {
	Doors       []Door
	Shelves     []Shelf
	Display     Display
	Thermometer Thermometer // may be nil on ambient cabinets
	Indicator   Indicator   // may be nil
	// Quiet, optional, lets idle firmware stop sampling while nothing
	// changes. Only a simulated cabinet has it; nil on real boards.
	Quiet Quiet
}

// Quiet is implemented by hardware that knows when its physical world
// changes — a simulation, where every door, load, lock, power and
// temperature change goes through its own methods. Idle firmware hushes
// it, so that a thousand idle virtual cabinets cost next to nothing, and
// wakes it when it has work.
//
// While hushed the scales take no samples, and each Scale's Reading is its
// last window vouched for up to now (Reading.At is the present): the
// hardware promises that the load has not moved beyond a small fraction of
// its noise since. Any change in the world ends the hush by itself.
type Quiet interface {
	// Hush stops sampling if the world is quiescent now (no vibration,
	// creep or thermal drift left that the readings would show) and
	// returns a channel closed when the hush ends: at the next change in
	// the world, or at Wake. ok is false, and nothing changes, when the
	// world is still moving: the firmware should keep sampling and try
	// again later.
	Hush() (ended <-chan struct{}, ok bool)
	// Wake ends the hush, if any: sampling resumes at once.
	Wake()
}
