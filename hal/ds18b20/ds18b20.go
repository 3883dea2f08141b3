// Package ds18b20 reads a DS18B20 1-Wire thermometer through the Linux
// kernel's w1-gpio and w1-therm drivers. It implements hal.Thermometer.
//
// ds18b20 owns reading and judging the kernel's sysfs files for one sensor.
// It must not talk to the 1-Wire bus or GPIO itself (the kernel does the
// bit-banging and the timing), load kernel modules or device-tree overlays
// (the system image does), or decide what a temperature means (the
// firmware does).
//
// # Kernel interface
//
// With w1-gpio and w1-therm loaded, every sensor found on the bus appears as
// a directory named after its ROM id, "28-" (the DS18B20 family code) and
// twelve hex digits, under /sys/bus/w1/devices. Reading one of its files
// makes the kernel start a conversion and wait for it (up to 750 ms at 12
// bits):
//
//	temperature  newer kernels: the temperature in millidegrees, "23125\n";
//	             a failed CRC is a read error
//	w1_slave     every kernel: the scratchpad twice, with the CRC verdict and
//	             the temperature in millidegrees
//	               72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//	               72 01 4b 46 7f ff 0e 10 57 t=23125
//
// temperature is read when it exists, w1_slave otherwise.
//
// # Datasheet
//
// The DS18B20 measures −55 °C to +125 °C. Its temperature register holds
// 85 °C after power-on until a first conversion completes, so 85.000 °C is
// what a sensor that browned out or lost power mid-conversion reports; it is
// treated as suspect and read again. A bus with no pull-up or a shorted data
// line reads as all ones (CRC fails) or all zeros (CRC "passes" on zeros);
// both are faults. Readers outside the kernel report −127 °C for a missing
// sensor; that and anything outside the measuring range is a fault too.
//
// # Wiring
//
//	sensor VDD ──► 3.3 V;  GND ──► GND;  DQ ──► GPIO4 (the w1-gpio default)
//	4.7 kΩ from DQ to 3.3 V (lower it, e.g. 2.2 kΩ, on long cable runs)
//	/boot/config.txt (Raspberry Pi): dtoverlay=w1-gpio,gpiopin=4
//
// Avoid parasite power (VDD tied to GND): conversions then depend on a
// strong pull-up that w1-gpio only emulates.
package ds18b20

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clock"
)

// Errors Celsius wraps, each together with hal.ErrFault.
var (
	// ErrNotFound means the sensor's sysfs files are missing: the sensor is
	// unplugged, its wiring is broken, or the w1 drivers are not loaded.
	ErrNotFound = errors.New("ds18b20: sensor not found")
	// ErrCRC means the kernel's CRC check of the scratchpad failed: noise
	// on the bus, a missing pull-up or a bad contact.
	ErrCRC = errors.New("ds18b20: CRC check failed")
	// ErrPowerOnReset means the sensor reported 85 °C, its power-on value:
	// it has not completed a conversion since it lost power.
	ErrPowerOnReset = errors.New("ds18b20: power-on reset value (85 °C)")
	// ErrOutOfRange means the reading lies outside the sensor's −55…125 °C
	// range (−127 °C included).
	ErrOutOfRange = errors.New("ds18b20: reading out of range")
	// ErrGarbage means the sysfs file could not be parsed, or held the
	// all-zero scratchpad of a shorted bus.
	ErrGarbage = errors.New("ds18b20: unreadable sensor data")
)

// Measuring range and the power-on value, in millidegrees.
const (
	minMilliC      = -55000
	maxMilliC      = 125000
	powerOnMilliC  = 85000
	defaultDevices = "/sys/bus/w1/devices"
)

var idPattern = regexp.MustCompile(`^28-[0-9a-f]{12}$`)

// Opts configures a Dev. Zero fields take the values of DefaultOpts, and
// New(…, nil) uses DefaultOpts.
type Opts struct {
	// Dir is the w1 devices directory.
	Dir string
	// Retries is how many times a failed read is repeated before Celsius
	// gives up. Zero takes the default; a negative value means no retry.
	Retries int
	// RetryDelay is the pause before each retry, giving the bus a moment
	// after noise and the sensor time to finish a conversion.
	RetryDelay time.Duration
	// Logger receives each failed attempt at debug level; the caller sees
	// the final error.
	Logger *slog.Logger
}

// DefaultOpts are the values zero fields of Opts fall back to.
var DefaultOpts = Opts{
	Dir:        defaultDevices,
	Retries:    2,
	RetryDelay: 100 * time.Millisecond,
}

// Dev is one sensor. It holds no state between reads, so all methods are
// safe for concurrent use (the kernel serialises access to the bus).
type Dev struct {
	id      string
	dir     string // the sensor's own sysfs directory
	retries int
	delay   time.Duration
	log     *slog.Logger
	// wait pauses before a retry; tests replace it to change the sensor's
	// files between attempts.
	wait func(ctx context.Context, d time.Duration) error
}

// New returns the sensor with ROM id id ("28-" and 12 hex digits, as named in
// sysfs; upper-case digits are accepted). It does not read the sensor, so a
// sensor plugged in later is found by the first Celsius. opts may be nil.
func New(id string, opts *Opts) (*Dev, error) {
	given := id
	id = strings.ToLower(strings.TrimSpace(id))
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("ds18b20: id %q is not 28- and 12 hex digits", given)
	}
	o := DefaultOpts
	if opts != nil {
		if opts.Dir != "" {
			o.Dir = opts.Dir
		}
		switch {
		case opts.Retries < 0:
			o.Retries = 0
		case opts.Retries > 0:
			o.Retries = opts.Retries
		}
		if opts.RetryDelay < 0 {
			return nil, fmt.Errorf("ds18b20: %s: negative retry delay %v", id, opts.RetryDelay)
		}
		if opts.RetryDelay > 0 {
			o.RetryDelay = opts.RetryDelay
		}
		o.Logger = opts.Logger
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dev{
		id:      id,
		dir:     filepath.Join(o.Dir, id),
		retries: o.Retries,
		delay:   o.RetryDelay,
		wait:    clock.Sleep,
	}
	d.log = o.Logger.With("thermometer", d.String())
	return d, nil
}

// Find lists the ROM ids of the DS18B20 sensors present under dir (the
// default directory when dir is empty), sorted. It fails when dir cannot be
// read, which usually means the w1 drivers are not loaded.
func Find(dir string) ([]string, error) {
	if dir == "" {
		dir = defaultDevices
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ds18b20: list sensors: %w", err)
	}
	var ids []string
	for _, e := range entries {
		// Sensors are symlinks into the bus's device tree; the bus master
		// (w1_bus_master1) and other families do not match the pattern.
		if idPattern.MatchString(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Celsius reads the temperature. A bad read is repeated up to Opts.Retries
// times, Opts.RetryDelay apart; the last failure is returned wrapping
// hal.ErrFault and one of ErrNotFound, ErrCRC, ErrPowerOnReset,
// ErrOutOfRange, ErrGarbage or the read's own error. The read itself cannot be interrupted (the
// kernel holds it for a conversion, up to 750 ms); ctx ends the retries.
func (d *Dev) Celsius(ctx context.Context) (float64, error) {
	var err error
	for attempt := 0; attempt <= d.retries; attempt++ {
		if attempt > 0 {
			if werr := d.wait(ctx, d.delay); werr != nil {
				return 0, fmt.Errorf("ds18b20: %s: %w (after: %v)", d.id, werr, err)
			}
		} else if cerr := ctx.Err(); cerr != nil {
			return 0, fmt.Errorf("ds18b20: %s: %w", d.id, cerr)
		}
		var milli int
		milli, err = d.read()
		if err == nil {
			return float64(milli) / 1000, nil
		}
		d.log.Debug("ds18b20 read failed", "attempt", attempt+1, "err", err)
	}
	if d.retries > 0 {
		return 0, fmt.Errorf("ds18b20: %s: %d reads failed, last: %w", d.id, d.retries+1, err)
	}
	return 0, fmt.Errorf("ds18b20: %s: %w", d.id, err)
}

// read reads and judges the sensor once, returning millidegrees.
func (d *Dev) read() (int, error) {
	data, err := os.ReadFile(filepath.Join(d.dir, "temperature"))
	if errors.Is(err, fs.ErrNotExist) {
		data, err = os.ReadFile(filepath.Join(d.dir, "w1_slave"))
		if err == nil {
			return judge(parseSlave(data))
		}
	} else if err == nil {
		return judge(parseTemperature(data))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w (%w): %w", ErrNotFound, hal.ErrFault, err)
	}
	// The kernel fails the read of temperature when the CRC is bad, and
	// while the device is going away; both are faults worth a retry.
	return 0, fmt.Errorf("read: %w (%w)", err, hal.ErrFault)
}

// parseTemperature parses the temperature attribute: millidegrees.
func parseTemperature(data []byte) (int, error) {
	s := strings.TrimSpace(string(data))
	milli, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w (%w): temperature %q", ErrGarbage, hal.ErrFault, s)
	}
	return milli, nil
}

// parseSlave parses w1_slave: a CRC line ending in YES or NO, then a data
// line ending in t=<millidegrees>.
func parseSlave(data []byte) (int, error) {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		return 0, fmt.Errorf("%w (%w): w1_slave has %d lines, want 2", ErrGarbage, hal.ErrFault, len(lines))
	}
	crcLine := strings.Fields(lines[0])
	if len(crcLine) < 3 || !strings.HasPrefix(crcLine[len(crcLine)-2], "crc=") {
		return 0, fmt.Errorf("%w (%w): w1_slave CRC line %q", ErrGarbage, hal.ErrFault, lines[0])
	}
	switch crcLine[len(crcLine)-1] {
	case "YES":
	case "NO":
		return 0, fmt.Errorf("%w (%w): %q", ErrCRC, hal.ErrFault, lines[0])
	default:
		return 0, fmt.Errorf("%w (%w): w1_slave CRC line %q", ErrGarbage, hal.ErrFault, lines[0])
	}
	// A shorted bus reads nine zero bytes, whose CRC is zero too.
	if scratch, _, ok := strings.Cut(lines[0], ":"); ok && allZero(scratch) {
		return 0, fmt.Errorf("%w (%w): all-zero scratchpad, data line shorted?", ErrGarbage, hal.ErrFault)
	}
	_, t, ok := strings.Cut(lines[1], "t=")
	if !ok {
		return 0, fmt.Errorf("%w (%w): w1_slave data line %q", ErrGarbage, hal.ErrFault, lines[1])
	}
	milli, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil {
		return 0, fmt.Errorf("%w (%w): w1_slave data line %q", ErrGarbage, hal.ErrFault, lines[1])
	}
	return milli, nil
}

func allZero(hexBytes string) bool {
	fields := strings.Fields(hexBytes)
	if len(fields) == 0 {
		return false
	}
	for _, f := range fields {
		if f != "00" {
			return false
		}
	}
	return true
}

// judge rejects readings the sensor cannot have meant.
func judge(milli int, err error) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case milli == powerOnMilliC:
		return 0, fmt.Errorf("%w (%w)", ErrPowerOnReset, hal.ErrFault)
	case milli < minMilliC || milli > maxMilliC:
		return 0, fmt.Errorf("%w (%w): %.3f °C", ErrOutOfRange, hal.ErrFault, float64(milli)/1000)
	}
	return milli, nil
}

// ID returns the sensor's ROM id.
func (d *Dev) ID() string { return d.id }

// String names the sensor.
func (d *Dev) String() string { return "ds18b20 " + d.id }

var _ hal.Thermometer = (*Dev)(nil)
