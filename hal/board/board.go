// Package board reads a board file: the YAML map of every pin and bus of
// one cabinet model, so that one firmware binary drives differently wired
// cabinets and a technician can rewire a cabinet from its file.
//
// board owns the file format, its strict decoding and its validation (pin
// names per host, pins used twice, doors and shelves that do not add up).
// It also owns the wiring step (open.go): it is the one package that calls
// host.Init, resolves pin and SPI names, and builds the drivers (hal/lock,
// hal/door, hal/indicator, hal/hx711, hal/st7789, hal/fbdev, hal/ds18b20)
// from a Board. Build takes a Resolver, so the wiring is tested on periph's
// fakes. Calibration is not here: it is data in the device's ledger, passed
// to Build.
//
// # Format
//
// A board file is one YAML document of at most MaxFileBytes. Unknown keys,
// repeated keys, anchors, aliases, tags other than YAML's own and a second
// document are errors. Durations are strings with a unit ("300ms", "2s"),
// levels are "high" or "low", pulls are "up", "down" or "none".
//
//	model: Bangfu FR-2D           # free text, required
//	host: rpi4                    # rpi3 | rpi4 | rpi5 | generic, required
//	gpio_stack: cdev              # cdev | sysfs | auto (default auto)
//	reserved:                     # optional: pins taken by something else
//	  GPIO14: UART console        #   (pin: what uses it); nothing may use them
//	doors:                        # at least one
//	  - number: 1                 # ≥ 1, unique
//	    lock:                     # required
//	      pin: GPIO5              # relay input, required
//	      active_low: true        # required: the relay closes on a low level
//	      fail_safe: false        # required: false = fail-secure (locked unpowered)
//	      mode: hold              # hold (default) | pulse
//	      pulse_time: 500ms       # pulse mode only, required there (10ms…10s)
//	      settle: 300ms           # optional (0…10s): feedback checked this long after a move
//	      feedback:               # optional bolt sensor
//	        pin: GPIO6
//	        locked_level: low     # required
//	        pull: up              # required
//	    switch:                   # the reed switch, required
//	      pin: GPIO13
//	      closed_level: low       # required
//	      pull: up                # required
//	      debounce: 50ms          # optional (1ms…1s)
//	      poll: 20ms              # optional (1ms…1s), used when edges are unavailable
//	shelves:                      # at least one
//	  - number: 1                 # ≥ 1, unique
//	    door: 1                   # an existing door, required
//	    hx711:                    # the scale, required
//	      clock: GPIO17           # PD_SCK
//	      data: GPIO27            # DOUT
//	      gain: A128              # A128 (default) | B32 | A64
//	      shared_clock: false     # true on every shelf whose chip shares one clock line
//	      ready_timeout: 400ms    # optional (10ms…10s): 400ms suits RATE=10 SPS
//	    hx711_right:              # optional: the right cell of a shelf carried by
//	      clock: GPIO16           #   two load cells (hx711 is then the left one);
//	      data: GPIO26            #   same keys and rules as hx711. Chips sharing
//	      shared_clock: false     #   one clock line are read together, in step.
//	display:                      # required, exactly one of st7789 / fbdev
//	  st7789:
//	    spi: SPI0.0               # SPI<bus>.<chip select>
//	    dc: GPIO25                # required
//	    rst: GPIO24               # optional
//	    backlight: {pin: GPIO12, active_low: false}   # optional
//	    width: 240                # 240
//	    height: 320               # 240 | 320
//	    rotation: 0               # 0 | 90 | 180 | 270
//	    x_offset: 0               # 0…80
//	    y_offset: 0               # 0…80
//	    invert: true              # IPS panels need it
//	    spi_speed: 32MHz          # optional, 1MHz…80MHz
//	  # fbdev: {device: /dev/fb0}
//	thermometer:                  # optional (ambient cabinets have none)
//	  ds18b20: 28-0123456789ab    # a w1 id, or auto for the only one present
//	  pin: GPIO4                  # optional: the w1-gpio overlay's pin, reserved
//	indicator:                    # optional
//	  led: {pin: GPIO22, active_low: false}          # required within
//	  buzzer: {pin: GPIO23, active_low: false}       # optional
//
// # Pin names
//
// On a Raspberry Pi (rpi3, rpi4, rpi5) a pin is named as periph's gpioreg
// names it: GPIO0 … GPIO27, the Broadcom numbers on the 40-pin header (not
// the physical pin numbers). The SPI port of an st7789 claims its bus pins:
// SPI0.x claims GPIO7–11 (dtparam=spi=on takes both chip selects), SPI1.c
// claims GPIO19–21 and the chip selects GPIO18, 17, 16 up to c (the
// spi1-Ncs overlays). Only SPI0.0, SPI0.1 and SPI1.0–SPI1.2 exist on the
// header.
//
// On a generic host a pin is either GPIO<n> with n < 1024 (the kernel's
// global number, as periph's sysfs driver and gpioreg name it), or
// <chip>/<line>, where chip is a GPIO chip's device name or label
// (gpiochip0, pinctrl-rp1: letters, digits and "-_.:") and line is a line
// offset (< 1024) or the line's name (letters, digits and "-_"), e.g.
// gpiochip0/17 or gpiochip1/PA7. Pins are compared by their spelling: two
// spellings of one physical pin are not detected. Any SPI<bus>.<cs> port is
// accepted and claims no pins.
//
// # Errors
//
// Every problem is reported at once, sorted by line, each as an *Error that
// names the file and line ("rpi4-fridge.yaml:23: shelf 3: pin GPIO17 already
// used by door 1 lock") and matches ErrInvalid with errors.Is.
package board

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// MaxFileBytes caps a board file. Real files are a few KiB; the cap keeps a
// wrong path (a log, a disk image) from being read into memory.
const MaxFileBytes = 64 << 10

// Sentinel errors.
var (
	// ErrInvalid is matched by every problem found in a board file.
	ErrInvalid = errors.New("board: invalid board file")
	// ErrTooLarge means the file exceeds MaxFileBytes.
	ErrTooLarge = errors.New("board: file too large")
)

// Error is one problem in a board file.
type Error struct {
	File string // the name given to Parse, or the path given to Load
	Line int    // 1-based; 0 when unknown (a Board built in code)
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File == "" && e.Line == 0:
		return "board: " + e.Msg
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Host is the kind of board the cabinet runs on; it decides the valid pin
// names and buses.
type Host string

// Hosts.
const (
	HostRPi3    Host = "rpi3"
	HostRPi4    Host = "rpi4"
	HostRPi5    Host = "rpi5"
	HostGeneric Host = "generic"
)

// RaspberryPi reports whether h is a Raspberry Pi with the 40-pin header.
func (h Host) RaspberryPi() bool { return h == HostRPi3 || h == HostRPi4 || h == HostRPi5 }

// GPIOStack is which Linux GPIO interface the wiring step loads.
type GPIOStack string

// GPIO stacks. Raspberry Pi OS Bookworm has no sysfs GPIO: use cdev there.
const (
	StackCdev  GPIOStack = "cdev"  // the GPIO character device (gpioioctl)
	StackSysfs GPIOStack = "sysfs" // /sys/class/gpio, for old kernels
	StackAuto  GPIOStack = "auto"  // whatever periph finds
)

// LockMode is how a lock's coil is driven.
type LockMode string

// Lock modes.
const (
	// LockHold drives the coil for as long as the lock is open.
	LockHold LockMode = "hold"
	// LockPulse drives it for PulseTime, then drops it (latching solenoids).
	LockPulse LockMode = "pulse"
)

// Gain is an HX711's channel and gain.
type Gain string

// HX711 gains.
const (
	GainA128 Gain = "A128"
	GainB32  Gain = "B32"
	GainA64  Gain = "A64"
)

// Board is a decoded, valid board file.
type Board struct {
	Model     string
	Host      Host
	GPIOStack GPIOStack
	// Reserved maps pins taken by something outside the firmware (a UART
	// console, an I²C clock hat) to what uses them.
	Reserved    map[string]string
	Doors       []Door  // in file order
	Shelves     []Shelf // in file order
	Display     Display
	Thermometer *Thermometer // nil: none fitted
	Indicator   *Indicator   // nil: none fitted

	file  string
	lines map[string]int // path → line, see paths in decode.go
}

// Door is one door: its lock and its reed switch.
type Door struct {
	Number int
	Lock   Lock
	Switch Switch
}

// Lock is a door's GPIO relay lock.
type Lock struct {
	Pin       string
	ActiveLow bool // the relay closes on a low level
	// FailSafe is true for a maglock that holds while powered; false for a
	// fail-secure bolt that stays locked unpowered.
	FailSafe  bool
	Mode      LockMode
	PulseTime time.Duration // LockPulse only
	Settle    time.Duration // 0: the driver's default
	Feedback  *Feedback     // nil: no bolt sensor
}

// Feedback is a lock's bolt sensor.
type Feedback struct {
	Pin         string
	LockedLevel gpio.Level
	Pull        gpio.Pull
}

// Switch is a door's reed switch.
type Switch struct {
	Pin         string
	ClosedLevel gpio.Level
	Pull        gpio.Pull
	Debounce    time.Duration // 0: the driver's default
	Poll        time.Duration // 0: the driver's default
}

// Shelf is one shelf and its scale.
type Shelf struct {
	Number int
	Door   int
	// HX711 is the shelf's only load cell's amplifier, or the left cell's
	// on a shelf carried by two.
	HX711 HX711
	// Right is the right load cell's amplifier on a shelf carried by two
	// cells (the file's hx711_right); nil on a one-cell shelf.
	Right *HX711
}

// Cell names one load cell of a shelf: the left (or only) one, or the right
// one of a two-cell shelf.
type Cell string

// Cells. A one-cell shelf's only cell is CellLeft.
const (
	CellLeft  Cell = "left"
	CellRight Cell = "right"
)

// cell returns the shelf's amplifier for c (nil: no such cell).
func (s *Shelf) cell(c Cell) *HX711 {
	if c == CellRight {
		return s.Right
	}
	return &s.HX711
}

// key is the board file's key of cell c.
func (c Cell) key() string {
	if c == CellRight {
		return "hx711_right"
	}
	return "hx711"
}

// HX711 is a shelf's load-cell amplifier. Chips with SharedClock set and the
// same Clock are read together as one group (see Board.HX711Groups).
type HX711 struct {
	Clock        string
	Data         string
	Gain         Gain
	SharedClock  bool
	ReadyTimeout time.Duration // 0: the driver's default
}

// Display is the screen: exactly one of ST7789 and FBDev is set.
type Display struct {
	ST7789 *ST7789
	FBDev  *FBDev
}

// ST7789 is an SPI TFT panel.
type ST7789 struct {
	SPI       string // SPI<bus>.<cs>, as periph's spireg names ports
	DC        string
	RST       string  // "": not wired
	Backlight *Output // nil: always on
	Width     int
	Height    int
	Rotation  int
	XOffset   int
	YOffset   int
	Invert    bool
	SPISpeed  physic.Frequency // 0: the driver's default
}

// FBDev is a Linux framebuffer (HDMI, DSI).
type FBDev struct {
	Device string // /dev/fbN
}

// Thermometer is a DS18B20 on the 1-wire bus.
type Thermometer struct {
	// DS18B20 is the sensor's w1 id (28-xxxxxxxxxxxx), or "auto" for the
	// only one present.
	DS18B20 string
	// Pin is the w1-gpio overlay's data pin, reserved so nothing else
	// claims it; "" when not declared.
	Pin string
}

// Indicator is the LED and the optional buzzer.
type Indicator struct {
	LED    Output
	Buzzer *Output // nil: none fitted
}

// Output is a plain GPIO output.
type Output struct {
	Pin       string
	ActiveLow bool
}

// Source is the file name the board was parsed from.
func (b *Board) Source() string { return b.file }

// Door returns door n.
func (b *Board) Door(n int) (Door, bool) {
	for _, d := range b.Doors {
		if d.Number == n {
			return d, true
		}
	}
	return Door{}, false
}

// ShelfDoors maps each shelf number to its door's number.
func (b *Board) ShelfDoors() map[int]int {
	m := make(map[int]int, len(b.Shelves))
	for _, s := range b.Shelves {
		m[s.Number] = s.Door
	}
	return m
}

// ShelvesBehind returns the numbers of door n's shelves, ascending.
func (b *Board) ShelvesBehind(n int) []int {
	var out []int
	for _, s := range b.Shelves {
		if s.Door == n {
			out = append(out, s.Number)
		}
	}
	slices.Sort(out)
	return out
}

// HX711Group is a set of HX711s read over one clock line: one shelf, cell
// and data pin each (Shelves[k], Cells[k] and Data[k] are chip k), in file
// order. A chip on its own clock is a group of one.
type HX711Group struct {
	Clock        string
	Gain         Gain
	ReadyTimeout time.Duration // the longest of the group's
	Shelves      []int
	Cells        []Cell // CellLeft for a one-cell shelf's only chip
	Data         []string
}

// HX711Groups returns the amplifiers grouped by clock line, in file order:
// each shelf's hx711, then its hx711_right if it has one.
func (b *Board) HX711Groups() []HX711Group {
	var out []HX711Group
	idx := map[string]int{}
	for _, s := range b.Shelves {
		for _, c := range []Cell{CellLeft, CellRight} {
			h := s.cell(c)
			if h == nil {
				continue
			}
			i, ok := idx[h.Clock]
			if !ok || !h.SharedClock {
				out = append(out, HX711Group{Clock: h.Clock, Gain: h.Gain})
				i = len(out) - 1
				idx[h.Clock] = i
			}
			g := &out[i]
			g.Shelves = append(g.Shelves, s.Number)
			g.Cells = append(g.Cells, c)
			g.Data = append(g.Data, h.Data)
			g.ReadyTimeout = max(g.ReadyTimeout, h.ReadyTimeout)
		}
	}
	return out
}

// PinUse is one pin and what uses it.
type PinUse struct {
	Pin string
	Use string // "door 1 lock", "shelf 2 hx711 clock", "shelf 2 hx711_right data", "display spi SPI0.0 MOSI"
}

// Pins lists every pin the board claims, sorted by pin name; a shared HX711
// clock appears once per chip on it.
func (b *Board) Pins() []PinUse {
	var out []PinUse
	for _, u := range b.uses() {
		out = append(out, PinUse{Pin: u.pin, Use: u.use})
	}
	sort.SliceStable(out, func(i, j int) bool { return pinLess(out[i].Pin, out[j].Pin) })
	return out
}

// pinLess orders GPIO2 before GPIO10.
func pinLess(a, b string) bool {
	na, oka := gpioNumber(a)
	nb, okb := gpioNumber(b)
	if oka && okb {
		return na < nb
	}
	if oka != okb {
		return oka
	}
	return a < b
}
