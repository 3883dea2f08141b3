package board

// The wiring step: a Board becomes running drivers. This file is the one
// place in the firmware that initialises the host (periph's host.Init) and
// looks pins and SPI ports up by name; every driver below it (hal/lock,
// hal/door, hal/hx711, hal/st7789, hal/fbdev, hal/ds18b20, hal/indicator) is
// handed resolved periph pins and ports. Build is the testable core: it only
// talks to a Resolver, which tests fake with periph's gpiotest and spitest.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/distro"
	"periph.io/x/host/v3/gpioioctl"
	"periph.io/x/host/v3/rpi"
	"periph.io/x/host/v3/sysfs"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/door"
	"github.com/bangfu/cabinet/hal/ds18b20"
	"github.com/bangfu/cabinet/hal/fbdev"
	"github.com/bangfu/cabinet/hal/hx711"
	"github.com/bangfu/cabinet/hal/indicator"
	"github.com/bangfu/cabinet/hal/lock"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/hal/screen"
	"github.com/bangfu/cabinet/hal/st7789"
)

// Sentinel errors of the wiring step.
var (
	// ErrPinNotFound means a pin or SPI port the board file names does not
	// exist on this machine.
	ErrPinNotFound = errors.New("board: pin not found")
	// ErrWrongHost means the board file is for another kind of machine (a
	// Raspberry Pi file on a PC) or its gpio_stack is not available here.
	ErrWrongHost = errors.New("board: board file does not fit this machine")
	// ErrNotCalibrated is wrapped, together with hal.ErrFault, by the
	// Reading of a shelf that has no stored calibration: the firmware goes
	// out of service with a scale_fault instead of selling by guesswork.
	ErrNotCalibrated = errors.New("board: shelf not calibrated")
)

// Resolver turns the names in a board file into periph pins and SPI ports.
// NewHostResolver is the real one; tests use fakes.
type Resolver interface {
	// Pin returns the GPIO pin the board file calls name.
	Pin(name string) (gpio.PinIO, error)
	// SPI opens the SPI port the board file calls name ("SPI0.0").
	SPI(name string) (spi.PortCloser, error)
}

// Names of periph's GPIO drivers, as driverreg reports them.
const (
	driverIoctl = "ioctl-gpio"
	driverSysfs = "sysfs-gpio"
	// rp1Label is the Raspberry Pi 5's header GPIO chip (the RP1 south
	// bridge), as the kernel labels it.
	rp1Label = "pinctrl-rp1"
)

// hostInit initialises periph's host drivers once per process; periph's own
// Init returns the first state on later calls, this keeps the error too.
var hostInit = sync.OnceValues(host.Init)

// hostResolver resolves names on the machine the firmware runs on.
type hostResolver struct {
	b      *Board
	loaded map[string]bool
	failed map[string]string // driver → why it did not load
}

// NewHostResolver initialises the host's drivers (host.Init, once per
// process) and returns a Resolver for b's pins on this machine.
//
// Pins are resolved as follows, which is also what b.GPIOStack can and
// cannot enforce (periph registers every compiled-in driver at program
// start and offers no way to leave one out, so a stack is chosen per pin,
// not per process):
//
//   - cdev: the ioctl-gpio driver (the GPIO character device, uAPI v2) must
//     have loaded, or NewHostResolver fails. <chip>/<line> names are lines of
//     that device. GPIO<n> names come from periph's registry (gpioreg); a
//     pin that turns out to be a sysfs pin is refused. On a Raspberry Pi 3 or
//     4 the registry's GPIO<n> is periph's bcm283x pin: it waits for edges and
//     requests lines through the character device, but sets levels and pulls
//     through /dev/gpiomem when that exists (which also keeps the lock relay
//     from glitching when a pin becomes an output). That part cannot be
//     switched off.
//   - sysfs: the sysfs-gpio driver must have loaded. GPIO<n> is the kernel's
//     global number n in /sys/class/gpio, bypassing bcm283x; <chip>/<line>
//     names are refused. Kernels 6.6 and later number a Raspberry Pi's header
//     from 512 there, which is why board files for them say cdev.
//   - auto: GPIO<n> from the registry, <chip>/<line> from the character
//     device.
//
// A Raspberry Pi 5's header is on the RP1 chip, which periph's bcm283x
// driver does not know: on rpi5 hosts GPIO<n> is line n of the chip
// labelled pinctrl-rp1 (cdev and auto).
//
// A board file for a Raspberry Pi fails with ErrWrongHost on a machine that
// is not one, before any pin is touched.
func NewHostResolver(b *Board) (Resolver, error) {
	if b == nil {
		return nil, errors.New("board: nil board")
	}
	st, err := hostInit()
	if err != nil {
		return nil, fmt.Errorf("board: %s: periph host.Init: %w", b.name(), err)
	}
	r := newHostResolver(b, st)
	if b.Host.RaspberryPi() && !rpi.Present() {
		return nil, fmt.Errorf("board: %s is for a %s, but this machine is not a Raspberry Pi (device tree model %q): %w",
			b.name(), hostName(b.Host), distro.DTModel(), ErrWrongHost)
	}
	switch b.GPIOStack {
	case StackCdev:
		if !r.loaded[driverIoctl] {
			return nil, fmt.Errorf("board: %s: gpio_stack cdev needs the GPIO character device /dev/gpiochip0 (%s): %w",
				b.name(), r.why(driverIoctl), ErrWrongHost)
		}
	case StackSysfs:
		if !r.loaded[driverSysfs] {
			return nil, fmt.Errorf("board: %s: gpio_stack sysfs needs /sys/class/gpio (%s): %w",
				b.name(), r.why(driverSysfs), ErrWrongHost)
		}
	}
	return r, nil
}

func newHostResolver(b *Board, st *driverreg.State) *hostResolver {
	r := &hostResolver{b: b, loaded: map[string]bool{}, failed: map[string]string{}}
	for _, d := range st.Loaded {
		r.loaded[d.String()] = true
	}
	for _, f := range append(slices.Clone(st.Skipped), st.Failed...) {
		r.failed[f.D.String()] = fmt.Sprint(f.Err)
	}
	return r
}

// why says why driver did not load.
func (r *hostResolver) why(driver string) string {
	if e, ok := r.failed[driver]; ok {
		return driver + ": " + e
	}
	return driver + " did not load"
}

func hostName(h Host) string {
	switch h {
	case HostRPi3:
		return "Raspberry Pi 3"
	case HostRPi4:
		return "Raspberry Pi 4"
	case HostRPi5:
		return "Raspberry Pi 5"
	}
	return "generic Linux board"
}

// Pin resolves name as NewHostResolver describes. Errors do not name the
// board file: Build adds its file and line.
func (r *hostResolver) Pin(name string) (gpio.PinIO, error) {
	p, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, r.notFound(name)
	}
	if _, isSysfs := p.(*sysfs.Pin); isSysfs && r.b.GPIOStack == StackCdev {
		return nil, fmt.Errorf("board: pin %s exists only through sysfs but gpio_stack is cdev (name it <chip>/<line>, e.g. gpiochip0/17): %w",
			name, ErrPinNotFound)
	}
	return p, nil
}

func (r *hostResolver) lookup(name string) (gpio.PinIO, error) {
	if chip, line, ok := strings.Cut(name, "/"); ok {
		if r.b.GPIOStack == StackSysfs {
			return nil, fmt.Errorf("board: pin %s: <chip>/<line> names need the character device, but gpio_stack is sysfs: %w",
				name, ErrWrongHost)
		}
		return chipLine(chip, line), nil
	}
	n, ok := gpioNumber(name)
	if !ok {
		return nil, fmt.Errorf("board: %q is not a pin name: %w", name, ErrPinNotFound)
	}
	switch {
	case r.b.GPIOStack == StackSysfs:
		if p := sysfs.Pins[n]; p != nil {
			return p, nil
		}
		return nil, nil
	case r.b.Host == HostRPi5:
		return chipLine(rp1Label, strconv.Itoa(n)), nil
	}
	return gpioreg.ByName(name), nil
}

// chipLine finds line (an offset or a line name) of the character-device
// chip whose device name or label is chip; nil when there is none.
func chipLine(chip, line string) gpio.PinIO {
	for _, c := range gpioioctl.Chips {
		if c.Name() != chip && c.Label() != chip {
			continue
		}
		if n, err := strconv.Atoi(line); err == nil {
			if n < 0 || n >= c.LineCount() {
				return nil
			}
			return c.ByNumber(n)
		}
		if l := c.ByName(line); l != nil {
			return l
		}
	}
	return nil
}

// notFound explains a missing pin with what this machine has.
func (r *hostResolver) notFound(name string) error {
	var hint string
	switch {
	case r.b.Host.RaspberryPi():
		hint = fmt.Sprintf("is this a %s (this one: %s)?", hostName(r.b.Host), distro.DTModel())
	default:
		var chips []string
		for _, c := range gpioioctl.Chips {
			chips = append(chips, fmt.Sprintf("%s (%s, %d lines)", c.Name(), c.Label(), c.LineCount()))
		}
		hint = "GPIO chips here: " + strings.Join(chips, ", ")
		if len(chips) == 0 {
			hint = "no GPIO chips here"
		}
	}
	switch r.b.GPIOStack {
	case StackCdev:
		hint += " gpio_stack cdev needs /dev/gpiochip0"
	case StackSysfs:
		hint += " gpio_stack sysfs uses the kernel's global numbers (from 512 on kernel 6.6+ Raspberry Pis: use cdev)"
	}
	return fmt.Errorf("board: %s not found — %s: %w", name, hint, ErrPinNotFound)
}

// SPI opens the port with periph's registry ("SPI0.0" is /dev/spidev0.0).
func (r *hostResolver) SPI(name string) (spi.PortCloser, error) {
	p, err := spireg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("board: SPI port %s: %w (is SPI enabled, e.g. dtparam=spi=on, and may this user open /dev/spidev*?): %w",
			name, err, ErrPinNotFound)
	}
	return p, nil
}

// name is the board's file name for messages.
func (b *Board) name() string {
	if b.file == "" {
		return "board"
	}
	return b.file
}

// where is "file:line" of path (or of its nearest written ancestor).
func (b *Board) where(path string) string {
	for p := path; ; p = parent(p) {
		if l, ok := b.lines[p]; ok && l > 0 {
			return fmt.Sprintf("%s:%d", b.name(), l)
		}
		if p == "" {
			return b.name()
		}
	}
}

// BuildOpts configures Build. Zero fields take the defaults in their
// comments.
type BuildOpts struct {
	// Calibrations are the shelves' stored calibrations (the ledger's): of
	// the only cell of a one-cell shelf, of the left cell of a two-cell
	// one. A shelf without one is built, but its Scale fails with
	// ErrNotCalibrated.
	Calibrations map[int]scale.Calibration
	// RightCalibrations are the right cells' calibrations of two-cell
	// shelves. A two-cell shelf missing either cell's calibration is built,
	// but its Scale and Right fail with ErrNotCalibrated.
	RightCalibrations map[int]scale.Calibration
	// Scale configures every shelf's filter; its Logger defaults to Logger
	// with the shelf number.
	Scale scale.Opts
	// W1Dir is the kernel's 1-wire devices directory (ds18b20's default).
	W1Dir string
	// FBOpts are fbdev's options (the real system's paths when nil).
	FBOpts *fbdev.Opts
	// DisplaySleep is the ST7789's wait for its datasheet delays
	// (time.Sleep); tests pass a no-op.
	DisplaySleep func(time.Duration)
	// Logger receives the drivers' messages (discarded when nil).
	Logger *slog.Logger
}

// Hardware is a board's drivers, built and in their safe state. Cabinet is
// what the firmware drives; Raw is each shelf's amplifier (the left one of
// a two-cell shelf) and RawRight each two-cell shelf's right amplifier, for
// the technician's tools. Run drives the parts that need a goroutine; Halt
// puts everything back to rest.
//
// A two-cell shelf's hal.Shelf.Scale is a Filter over a scale.Pair of its
// two amplifiers (the calibrated sum, with scale.PairCalibration) and its
// hal.Shelf.Right a Filter over the Pair's right view with the right cell's
// calibration.
type Hardware struct {
	Cabinet  hal.Cabinet
	Raw      map[int]hal.RawScale
	RawRight map[int]hal.RawScale

	log      *slog.Logger
	locks    []*lock.Dev
	switches []*door.Dev
	filters  []*scale.Filter // calibrated shelves only
	groups   []*hx711.Group
	display  *screen.Display
	fb       *fbdev.Dev // Close()d by Halt; nil for an ST7789
	ind      *indicator.Dev
	port     spi.PortCloser // the ST7789's, closed by Halt

	running  atomic.Bool
	haltOnce sync.Once
	haltErr  error // what halting everything but the locks reported
}

// Build builds every driver b describes, resolving names with r. Locks are
// built first, so each is at its safe level before anything else happens.
// On an error, what was built is halted and the error names the board
// file's line where it can. o may be nil.
func Build(b *Board, r Resolver, o *BuildOpts) (hw *Hardware, err error) {
	if b == nil || r == nil {
		return nil, errors.New("board: Build needs a board and a resolver")
	}
	var opts BuildOpts
	if o != nil {
		opts = *o
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	bl := &builder{
		b: b, r: r, o: opts, log: opts.Logger,
		pins: map[string]gpio.PinIO{},
		hw:   &Hardware{Raw: map[int]hal.RawScale{}, RawRight: map[int]hal.RawScale{}, log: opts.Logger},
	}
	defer func() {
		if err != nil {
			if herr := bl.hw.Halt(); herr != nil {
				err = errors.Join(err, fmt.Errorf("board: halting what was built: %w", herr))
			}
			hw = nil
		}
	}()
	for _, step := range []func() error{bl.locks, bl.switches, bl.scales, bl.display, bl.thermometer, bl.indicator} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	c := &bl.hw.Cabinet
	slices.SortFunc(c.Doors, func(a, b hal.Door) int { return a.Number - b.Number })
	slices.SortFunc(c.Shelves, func(a, b hal.Shelf) int { return a.Number - b.Number })
	return bl.hw, nil
}

// builder holds Build's state.
type builder struct {
	b    *Board
	r    Resolver
	o    BuildOpts
	log  *slog.Logger
	pins map[string]gpio.PinIO // resolved once: a shared clock is one pin
	hw   *Hardware
}

// errAt names the board line of path and what was being built.
func (bl *builder) errAt(path, what string, err error) error {
	return fmt.Errorf("%s: %s: %w", bl.b.where(path), what, err)
}

func (bl *builder) pin(path, what, name string) (gpio.PinIO, error) {
	if p, ok := bl.pins[name]; ok {
		return p, nil
	}
	p, err := bl.r.Pin(name)
	if err == nil && p == nil {
		err = fmt.Errorf("board: resolver returned no pin for %s: %w", name, ErrPinNotFound)
	}
	if err != nil {
		return nil, bl.errAt(path, what, err)
	}
	bl.pins[name] = p
	return p, nil
}

func (bl *builder) locks() error {
	for i, d := range bl.b.Doors {
		path := fmt.Sprintf("doors[%d].lock", i)
		what := fmt.Sprintf("door %d lock", d.Number)
		out, err := bl.pin(path+".pin", what, d.Lock.Pin)
		if err != nil {
			return err
		}
		lo := &lock.Opts{
			ActiveLow: d.Lock.ActiveLow,
			FailSafe:  d.Lock.FailSafe,
			Mode:      lock.Hold,
			PulseTime: d.Lock.PulseTime,
			Settle:    d.Lock.Settle,
			Logger:    bl.log,
		}
		if d.Lock.Mode == LockPulse {
			lo.Mode = lock.Pulse
		}
		if fb := d.Lock.Feedback; fb != nil {
			in, err := bl.pin(path+".feedback.pin", what+" feedback", fb.Pin)
			if err != nil {
				return err
			}
			lo.Feedback, lo.FeedbackLockedLevel, lo.FeedbackPull = in, fb.LockedLevel, fb.Pull
		}
		l, err := lock.New(fmt.Sprintf("door %d", d.Number), out, lo)
		if err != nil {
			return bl.errAt(path, what, err)
		}
		bl.hw.locks = append(bl.hw.locks, l)
		bl.hw.Cabinet.Doors = append(bl.hw.Cabinet.Doors, hal.Door{Number: d.Number, Lock: l})
	}
	return nil
}

func (bl *builder) switches() error {
	for i, d := range bl.b.Doors {
		path := fmt.Sprintf("doors[%d].switch", i)
		what := fmt.Sprintf("door %d switch", d.Number)
		in, err := bl.pin(path+".pin", what, d.Switch.Pin)
		if err != nil {
			return err
		}
		sw, err := door.New(fmt.Sprintf("door %d", d.Number), in, &door.Opts{
			ClosedLevel: d.Switch.ClosedLevel,
			Pull:        d.Switch.Pull,
			Debounce:    d.Switch.Debounce,
			Poll:        d.Switch.Poll,
			Logger:      bl.log,
		})
		if err != nil {
			return bl.errAt(path, what, err)
		}
		bl.hw.switches = append(bl.hw.switches, sw)
		bl.hw.Cabinet.Doors[i].Sensor = sw // locks() added doors in file order
	}
	return nil
}

func (bl *builder) scales() error {
	index := map[int]int{} // shelf number → index in b.Shelves
	for i, s := range bl.b.Shelves {
		index[s.Number] = i
	}
	for _, g := range bl.b.HX711Groups() {
		first := fmt.Sprintf("shelves[%d].%s", index[g.Shelves[0]], g.Cells[0].key())
		what := fmt.Sprintf("shelf %d %s", g.Shelves[0], g.Cells[0].key())
		clk, err := bl.pin(first+".clock", what+" clock", g.Clock)
		if err != nil {
			return err
		}
		data := make([]gpio.PinIn, len(g.Data))
		for k, name := range g.Data {
			key := g.Cells[k].key()
			path := fmt.Sprintf("shelves[%d].%s.data", index[g.Shelves[k]], key)
			p, err := bl.pin(path, fmt.Sprintf("shelf %d %s data", g.Shelves[k], key), name)
			if err != nil {
				return err
			}
			data[k] = p
		}
		gain, err := hx711.ParseGain(string(g.Gain))
		if err != nil {
			return bl.errAt(first+".gain", what, err)
		}
		grp, err := hx711.NewGroup(clk, data, &hx711.Opts{Gain: gain, ReadyTimeout: g.ReadyTimeout, Logger: bl.log})
		if err != nil {
			return bl.errAt(first, what, err)
		}
		bl.hw.groups = append(bl.hw.groups, grp)
		for k, num := range g.Shelves {
			if g.Cells[k] == CellRight {
				bl.hw.RawRight[num] = grp.Channel(k)
			} else {
				bl.hw.Raw[num] = grp.Channel(k)
			}
		}
	}
	for i, s := range bl.b.Shelves {
		sh := hal.Shelf{Number: s.Number, Door: s.Door}
		var err error
		if s.Right == nil {
			sh.Scale, err = bl.scale(s.Number, bl.hw.Raw[s.Number])
		} else {
			sh.Scale, sh.Right, err = bl.pair(s.Number, bl.hw.Raw[s.Number], bl.hw.RawRight[s.Number])
		}
		if err != nil {
			return bl.errAt(fmt.Sprintf("shelves[%d]", i), fmt.Sprintf("shelf %d", s.Number), err)
		}
		bl.hw.Cabinet.Shelves = append(bl.hw.Cabinet.Shelves, sh)
	}
	for num := range bl.o.Calibrations {
		if _, ok := index[num]; !ok {
			bl.log.Warn("stored calibration for a shelf the board file does not have", "shelf", num)
		}
	}
	for num := range bl.o.RightCalibrations {
		if i, ok := index[num]; !ok || bl.b.Shelves[i].Right == nil {
			bl.log.Warn("stored right-cell calibration for a shelf the board file does not give two cells", "shelf", num)
		}
	}
	return nil
}

// scale is shelf num's filter over its channel, or the failing stand-in of
// an uncalibrated shelf.
func (bl *builder) scale(num int, raw hal.RawScale) (hal.Scale, error) {
	cal, ok := bl.o.Calibrations[num]
	if !ok {
		bl.log.Warn("shelf not calibrated: its scale reports a fault until `cabinet calibrate` has run", "shelf", num)
		return &uncalibrated{shelf: num, raw: raw}, nil
	}
	return bl.filter(num, "", raw, cal)
}

// filter builds and registers a Filter; cell names it in the log.
func (bl *builder) filter(num int, cell Cell, raw hal.RawScale, cal scale.Calibration) (*scale.Filter, error) {
	so := bl.o.Scale
	if so.Logger == nil {
		so.Logger = bl.log.With("shelf", num)
		if cell != "" {
			so.Logger = so.Logger.With("cell", string(cell))
		}
	}
	f, err := scale.New(raw, cal, &so)
	if err != nil {
		return nil, fmt.Errorf("stored calibration: %w", err)
	}
	bl.hw.filters = append(bl.hw.filters, f)
	return f, nil
}

// pair builds a two-cell shelf's Scale (the sum of both cells) and Right
// (the right cell alone), or their failing stand-ins while either cell is
// not calibrated: a sum with one cell guessed would be no weight at all.
func (bl *builder) pair(num int, left, right hal.RawScale) (total, rightScale hal.Scale, err error) {
	lcal, lok := bl.o.Calibrations[num]
	rcal, rok := bl.o.RightCalibrations[num]
	if !lok || !rok {
		var missing []string
		if !lok {
			missing = append(missing, "left")
		}
		if !rok {
			missing = append(missing, "right")
		}
		bl.log.Warn("two-cell shelf not calibrated: its scale reports a fault until `cabinet calibrate` has run for each cell",
			"shelf", num, "cells", strings.Join(missing, ", "))
		return &uncalibrated{shelf: num, raw: left, cells: missing}, &uncalibrated{shelf: num, raw: right, cells: missing}, nil
	}
	p, err := scale.NewPair(left, right, lcal, rcal)
	if err != nil {
		return nil, nil, fmt.Errorf("stored calibration: %w", err)
	}
	t, err := bl.filter(num, "", p, scale.PairCalibration)
	if err != nil {
		return nil, nil, err
	}
	r, err := bl.filter(num, CellRight, p.Right(), rcal)
	if err != nil {
		return nil, nil, err
	}
	return t, r, nil
}

func (bl *builder) display() error {
	var drawer display.Drawer
	switch d := bl.b.Display; {
	case d.ST7789 != nil:
		st := d.ST7789
		const path = "display.st7789"
		port, err := bl.r.SPI(st.SPI)
		if err != nil {
			return bl.errAt(path+".spi", "display", err)
		}
		bl.hw.port = port
		dc, err := bl.pin(path+".dc", "display dc", st.DC)
		if err != nil {
			return err
		}
		var rst, backlight gpio.PinOut
		if st.RST != "" {
			if rst, err = bl.pin(path+".rst", "display rst", st.RST); err != nil {
				return err
			}
		}
		if st.Backlight != nil {
			bp, err := bl.pin(path+".backlight.pin", "display backlight", st.Backlight.Pin)
			if err != nil {
				return err
			}
			backlight = bp
			if st.Backlight.ActiveLow {
				backlight = activeLow{bp}
			}
		}
		dev, err := st7789.New(port, dc, rst, &st7789.Opts{
			Width: st.Width, Height: st.Height, Rotation: st.Rotation,
			XOffset: st.XOffset, YOffset: st.YOffset, Invert: st.Invert,
			SPIHz: st.SPISpeed, Backlight: backlight, Sleep: bl.o.DisplaySleep,
		})
		if err != nil {
			return bl.errAt(path, "display", err)
		}
		drawer = dev
	case d.FBDev != nil:
		dev, err := fbdev.Open(d.FBDev.Device, bl.o.FBOpts)
		if err != nil {
			return bl.errAt("display.fbdev.device", "display", err)
		}
		bl.hw.fb = dev
		drawer = dev
	default:
		return bl.errAt("display", "display", errors.New("board: no display"))
	}
	bl.hw.display = screen.NewDisplay("", drawer)
	bl.hw.Cabinet.Display = bl.hw.display
	return nil
}

func (bl *builder) thermometer() error {
	t := bl.b.Thermometer
	if t == nil {
		return nil
	}
	opts := ds18b20.Opts{Dir: bl.o.W1Dir, Logger: bl.log}
	if t.DS18B20 != "auto" {
		dev, err := ds18b20.New(t.DS18B20, &opts)
		if err != nil {
			return bl.errAt("thermometer.ds18b20", "thermometer", err)
		}
		bl.hw.Cabinet.Thermometer = dev
		return nil
	}
	a := &autoThermometer{dir: bl.o.W1Dir, opts: opts, log: bl.log}
	if _, err := a.find(); err != nil {
		bl.log.Warn("thermometer not found yet; looking again on every read", "err", err)
	}
	bl.hw.Cabinet.Thermometer = a
	return nil
}

func (bl *builder) indicator() error {
	ind := bl.b.Indicator
	if ind == nil {
		return nil
	}
	led, err := bl.pin("indicator.led.pin", "indicator led", ind.LED.Pin)
	if err != nil {
		return err
	}
	opts := &indicator.Opts{LEDActiveLow: ind.LED.ActiveLow, Logger: bl.log}
	var buzzer gpio.PinOut
	if ind.Buzzer != nil {
		if buzzer, err = bl.pin("indicator.buzzer.pin", "indicator buzzer", ind.Buzzer.Pin); err != nil {
			return err
		}
		opts.BuzzerActiveLow = ind.Buzzer.ActiveLow
	}
	dev, err := indicator.New("status", led, buzzer, opts)
	if err != nil {
		return bl.errAt("indicator", "indicator", err)
	}
	bl.hw.ind = dev
	bl.hw.Cabinet.Indicator = dev
	return nil
}

// Run drives what needs a goroutine — each door switch's debouncing, the
// indicator's patterns and each calibrated shelf's filter — until ctx ends,
// and returns once all of them have stopped. Only one Run may be active.
func (h *Hardware) Run(ctx context.Context) error {
	if !h.running.CompareAndSwap(false, true) {
		return errors.New("board: hardware Run is already running")
	}
	defer h.running.Store(false)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	part := func(run func(context.Context) error) {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	for _, sw := range h.switches {
		part(sw.Run)
	}
	if h.ind != nil {
		part(h.ind.Run)
	}
	for _, f := range h.filters {
		part(f.Run)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Halt puts the hardware to rest: every lock at its safe level first, then
// the display, the indicator, the load-cell amplifiers (powered down) and
// the SPI port. It may be called more than once; the locks are driven to
// their safe level every time, the rest is halted once. Stop Run first: the
// filters would otherwise keep failing on powered-down amplifiers.
func (h *Hardware) Halt() error {
	var errs []error
	for _, l := range h.locks {
		if err := l.Halt(); err != nil {
			errs = append(errs, err)
		}
	}
	h.haltOnce.Do(func() {
		var rest []error
		switch {
		case h.fb != nil:
			// Close blanks the screen as Halt would, and lets the file go.
			if err := h.fb.Close(); err != nil {
				rest = append(rest, err)
			}
		case h.display != nil:
			if err := h.display.Halt(); err != nil {
				rest = append(rest, err)
			}
		}
		if h.ind != nil {
			if err := h.ind.Halt(); err != nil {
				rest = append(rest, err)
			}
		}
		for _, g := range h.groups {
			if err := g.Halt(); err != nil {
				rest = append(rest, err)
			}
		}
		if h.port != nil {
			if err := h.port.Close(); err != nil {
				rest = append(rest, fmt.Errorf("board: close SPI port: %w", err))
			}
		}
		h.haltErr = errors.Join(rest...)
	})
	return errors.Join(append(errs, h.haltErr)...)
}

// uncalibrated is the Scale of a shelf with no stored calibration: raw
// counts without a factor mean nothing, so every Reading is a fault.
type uncalibrated struct {
	shelf int
	raw   hal.RawScale
	cells []string // of a two-cell shelf: the cells without a calibration
}

func (u *uncalibrated) Reading() (hal.Reading, error) {
	if len(u.cells) > 0 {
		var runs []string
		for _, c := range u.cells {
			runs = append(runs, fmt.Sprintf("cabinet calibrate --shelf %d --cell %s", u.shelf, c))
		}
		return hal.Reading{}, fmt.Errorf("board: shelf %d is not calibrated; run %s: %w: %w",
			u.shelf, strings.Join(runs, " and "), ErrNotCalibrated, hal.ErrFault)
	}
	return hal.Reading{}, fmt.Errorf("board: shelf %d is not calibrated; run cabinet calibrate --shelf %d: %w: %w",
		u.shelf, u.shelf, ErrNotCalibrated, hal.ErrFault)
}

func (u *uncalibrated) String() string { return u.raw.String() + " (not calibrated)" }

// autoThermometer is the board's "ds18b20: auto": the only DS18B20 on the
// bus, looked for until one is found and kept from then on. A missing
// sensor is a read fault, as for a sensor named by id, so a cabinet whose
// probe fell off still runs and reports it.
type autoThermometer struct {
	dir  string
	opts ds18b20.Opts
	log  *slog.Logger

	mu  sync.Mutex
	dev *ds18b20.Dev
}

func (a *autoThermometer) Celsius(ctx context.Context) (float64, error) {
	d, err := a.find()
	if err != nil {
		return 0, err
	}
	return d.Celsius(ctx)
}

func (a *autoThermometer) find() (*ds18b20.Dev, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dev != nil {
		return a.dev, nil
	}
	ids, err := ds18b20.Find(a.dir)
	switch {
	case err != nil:
		return nil, fmt.Errorf("board: thermometer auto: %w (is the w1-gpio overlay on?): %w: %w", err, ds18b20.ErrNotFound, hal.ErrFault)
	case len(ids) == 0:
		return nil, fmt.Errorf("board: thermometer auto: no DS18B20 on the 1-wire bus: %w: %w", ds18b20.ErrNotFound, hal.ErrFault)
	case len(ids) > 1:
		return nil, fmt.Errorf("board: thermometer auto: %d DS18B20s on the bus (%s); name one in the board file: %w",
			len(ids), strings.Join(ids, ", "), hal.ErrFault)
	}
	d, err := ds18b20.New(ids[0], &a.opts)
	if err != nil {
		return nil, fmt.Errorf("board: thermometer auto: %w: %w", err, hal.ErrFault)
	}
	a.log.Info("thermometer found", "thermometer", d.String())
	a.dev = d
	return d, nil
}

func (a *autoThermometer) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dev != nil {
		return a.dev.String()
	}
	return "ds18b20 auto"
}

// activeLow inverts an output for the ST7789's backlight, which the driver
// switches on with a high level.
type activeLow struct{ gpio.PinOut }

func (p activeLow) Out(l gpio.Level) error { return p.PinOut.Out(!l) }

func (p activeLow) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("board: PWM on an active-low output is not supported")
}

func (p activeLow) String() string { return p.PinOut.String() + " (active low)" }

var (
	_ Resolver        = (*hostResolver)(nil)
	_ hal.Scale       = (*uncalibrated)(nil)
	_ hal.Thermometer = (*autoThermometer)(nil)
	_ gpio.PinOut     = activeLow{}
)
