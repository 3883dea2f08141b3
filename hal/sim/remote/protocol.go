// Package remote carries one virtual cabinet's hal devices over a local
// socket, so that the real device binary (firmware/cmd/cabinet with
// --hal sim-socket) can run against the simulator's virtual hardware in a
// separate process, and be killed and restarted while the hardware keeps
// its doors, locks and weights.
//
// The simulator side is Serve (or Server.Serve): it answers calls on a
// listener (a unix socket in the cabinet's data directory) with the
// devices of a *sim.Cabinet. The device side is Dial: its Client builds a
// hal.Cabinet whose scales are hal/scale Filters over the remote raw
// samples, exactly as hal/sim builds them in process.
//
// remote owns only the wire between the two: it must not model physics
// (hal/sim does), judge weights (hal/scale does) or know the firmware's
// policy. The status report (Client.Report) is opaque JSON to it.
//
// # Protocol
//
// Newline-delimited JSON over one stream connection. Each request carries
// an id; the server answers each in its own goroutine, so a slow call (a
// scale read blocks for the sample period, as the HX711 does) never holds
// up a lock or a door, and responses may come in any order. The first
// request of a connection is a hello, whose answer is the cabinet's layout.
// A broken connection fails every call in flight with hal.ErrClosed; the
// client dials again on a later call, no more often than Opts.Redial.
//
// The protocol grows without a new version while old peers keep working:
// a later addition is an optional field, which an older peer's decoder
// skips, or a new operation, which a peer asks for only when the other
// side's layout offered it (an older server answers an unknown operation
// with a bad request). So far: a shelf on two load cells says "two_cell"
// in the layout, and its right cell is read with "scale.read_right"; an
// older client sees the shelf's total only, as hal.Shelf.Scale.
package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
)

// Operations of the protocol.
const (
	opHello           = "hello"
	opLockEnergise    = "lock.energise"
	opLockRelease     = "lock.release"
	opLockLocked      = "lock.locked"
	opLockHalt        = "lock.halt"
	opDoorClosed      = "door.closed"
	opDoorOpened      = "door.opened" // the latch (hal.DoorLatch)
	opScaleRead       = "scale.read"
	opScaleReadRight  = "scale.read_right" // a two-cell shelf's right cell
	opDisplayShow     = "display.show"
	opDisplayHalt     = "display.halt"
	opThermoCelsius   = "thermo.celsius"
	opIndicatorSet    = "indicator.set"
	opIndicatorHalt   = "indicator.halt"
	opStatus          = "status"
	protocolVersion   = 1
	maxLineBytes      = 1 << 20 // a status report is the largest message
	maxInFlight       = 64      // concurrent calls the server runs per connection
	errKindClosed     = "closed"
	errKindFault      = "fault"
	errKindBadRequest = "bad_request"
)

// ErrLayoutChanged means the simulator came back with a different cabinet
// (other doors or shelves) than the one the client was built for.
var ErrLayoutChanged = errors.New("remote: the simulator's cabinet layout changed")

// request is one call.
type request struct {
	ID      uint64          `json:"id"`
	Op      string          `json:"op"`
	Door    int             `json:"door,omitempty"`
	Shelf   int             `json:"shelf,omitempty"`
	Screen  *hal.Screen     `json:"screen,omitempty"`
	Signal  hal.Signal      `json:"signal,omitempty"`
	Version int             `json:"version,omitempty"` // hello
	PID     int             `json:"pid,omitempty"`     // hello: the device process
	Status  json.RawMessage `json:"status,omitempty"`
}

// response answers the request with the same id.
type response struct {
	ID      uint64  `json:"id"`
	Err     string  `json:"err,omitempty"`
	ErrKind string  `json:"err_kind,omitempty"`
	Bool    bool    `json:"bool,omitempty"`
	Raw     int32   `json:"raw,omitempty"`
	Celsius float64 `json:"celsius,omitempty"`
	Layout  *Layout `json:"layout,omitempty"`
}

// Layout is the cabinet a server exposes: what the hello answers.
type Layout struct {
	Name       string        `json:"name"`
	Doors      []int         `json:"doors"`
	Shelves    []ShelfLayout `json:"shelves"`
	SampleRate float64       `json:"sample_rate"` // HX711 samples per second
	Thermo     bool          `json:"thermometer"`
	Indicator  bool          `json:"indicator"`
}

// ShelfLayout is one shelf: its door and its load cell's calibration.
type ShelfLayout struct {
	Shelf int               `json:"shelf"`
	Door  int               `json:"door"`
	Cal   scale.Calibration `json:"cal"`
	// TwoCell: the shelf stands on two load cells, both with Cal. Its
	// scale.read is their sum; scale.read_right reads the right cell.
	TwoCell bool `json:"two_cell,omitempty"`
}

// equal reports whether a and b describe the same cabinet.
func (a Layout) equal(b Layout) bool {
	return a.Name == b.Name && slices.Equal(a.Doors, b.Doors) && slices.Equal(a.Shelves, b.Shelves) &&
		a.SampleRate == b.SampleRate && a.Thermo == b.Thermo && a.Indicator == b.Indicator
}

// kindOf classifies err for the wire.
func kindOf(err error) string {
	switch {
	case errors.Is(err, hal.ErrClosed):
		return errKindClosed
	case errors.Is(err, hal.ErrFault):
		return errKindFault
	}
	return ""
}

// remoteError rebuilds the server's error on the client, wrapping the hal
// sentinel it carried so callers can branch on it.
func remoteError(dev fmt.Stringer, r response) error {
	switch r.ErrKind {
	case errKindClosed:
		return fmt.Errorf("remote: %s: %s: %w", dev, r.Err, hal.ErrClosed)
	case errKindFault:
		return fmt.Errorf("remote: %s: %s: %w", dev, r.Err, hal.ErrFault)
	}
	return fmt.Errorf("remote: %s: %s", dev, r.Err)
}
