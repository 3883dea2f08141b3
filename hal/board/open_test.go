package board

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"
	"periph.io/x/host/v3/gpioioctl"
	"periph.io/x/host/v3/rpi"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/ds18b20"
	"github.com/bangfu/cabinet/hal/fbdev"
	"github.com/bangfu/cabinet/hal/hx711"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/internal/clocktest"
)

// fakePin is a gpiotest.Pin that also records how it was configured and
// every level driven on it. read and onOut, when set, make it part of a
// scripted chip.
type fakePin struct {
	*gpiotest.Pin

	rec   sync.Mutex
	input bool
	edge  gpio.Edge
	outs  []gpio.Level
	read  func() gpio.Level
	onOut func(gpio.Level)
	event func(string) // the resolver's shared log of outputs and closes
}

func newFakePin(name string) *fakePin {
	// EdgesChan lets door switches use edges, as on the character device.
	return &fakePin{Pin: &gpiotest.Pin{N: name, Num: -1, EdgesChan: make(chan gpio.Level, 16)}}
}

func (p *fakePin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.rec.Lock()
	p.input, p.edge = true, edge
	p.rec.Unlock()
	return p.Pin.In(pull, edge)
}

func (p *fakePin) Out(l gpio.Level) error {
	p.rec.Lock()
	p.input = false
	p.outs = append(p.outs, l)
	hook, event := p.onOut, p.event
	p.rec.Unlock()
	if event != nil {
		event(p.N + "=" + l.String())
	}
	if hook != nil {
		hook(l)
	}
	return p.Pin.Out(l)
}

func (p *fakePin) Read() gpio.Level {
	if p.read != nil {
		return p.read()
	}
	return p.Pin.Read()
}

// driven returns the levels driven so far and whether the pin is an input.
func (p *fakePin) driven() ([]gpio.Level, bool) {
	p.rec.Lock()
	defer p.rec.Unlock()
	return slices.Clone(p.outs), p.input
}

// fakeSPI is a recording SPI port that counts Close calls.
type fakeSPI struct {
	spitest.Record
	name   string
	closed atomic.Int32
	event  func(string)
}

func (s *fakeSPI) Close() error {
	s.closed.Add(1)
	s.event(s.name + " close")
	return s.Record.Close()
}

var errFake = errors.New("test: resolver refuses")

// fakeResolver hands out fakePins and fakeSPIs by name and remembers them.
type fakeResolver struct {
	mu       sync.Mutex
	pins     map[string]*fakePin
	spis     map[string]*fakeSPI
	requests map[string]int
	failPin  string // this pin name fails to resolve
	failSPI  bool

	evMu   sync.Mutex
	events []string // outputs driven and ports closed, in order
}

func (r *fakeResolver) event(e string) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.events = append(r.events, e)
}

// eventsSince returns the events after the first n.
func (r *fakeResolver) eventsSince(n int) []string {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	return slices.Clone(r.events[n:])
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{pins: map[string]*fakePin{}, spis: map[string]*fakeSPI{}, requests: map[string]int{}}
}

func (r *fakeResolver) Pin(name string) (gpio.PinIO, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[name]++
	if name == r.failPin {
		return nil, fmt.Errorf("pin %s: %w", name, errFake)
	}
	p, ok := r.pins[name]
	if !ok {
		p = newFakePin(name)
		r.pins[name] = p
	}
	p.rec.Lock()
	p.event = r.event
	p.rec.Unlock()
	return p, nil
}

func (r *fakeResolver) SPI(name string) (spi.PortCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failSPI {
		return nil, fmt.Errorf("SPI %s: %w", name, errFake)
	}
	s := &fakeSPI{name: name, event: r.event}
	r.spis[name] = s
	return s, nil
}

func (r *fakeResolver) pin(t *testing.T, name string) *fakePin {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pins[name]
	if !ok {
		t.Fatalf("pin %s was never resolved", name)
	}
	return p
}

// testEnv is the filesystem side of a board: a 1-wire directory with one
// sensor and a framebuffer.
type testEnv struct {
	w1  string
	fb  *fbdev.Opts
	dev string
}

func newTestEnv(t *testing.T) testEnv {
	t.Helper()
	dir := t.TempDir()
	e := testEnv{w1: filepath.Join(dir, "w1"), dev: filepath.Join(dir, "fb0")}
	writeFile(t, filepath.Join(e.w1, "28-0123456789ab", "temperature"), "4500\n")
	sys := filepath.Join(dir, "sys")
	for f, v := range map[string]string{"virtual_size": "320,240\n", "bits_per_pixel": "16\n", "stride": "640\n"} {
		writeFile(t, filepath.Join(sys, "fb0", f), v)
	}
	writeFile(t, e.dev, string(make([]byte, 640*240)))
	e.fb = &fbdev.Opts{SysfsRoot: sys, DevPath: e.dev}
	return e
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e testEnv) opts(cals map[int]scale.Calibration) *BuildOpts {
	return &BuildOpts{Calibrations: cals, W1Dir: e.w1, FBOpts: e.fb, DisplaySleep: func(time.Duration) {}}
}

// safeLevel is the lock output level that keeps a door locked, worked out
// case by case rather than with the driver's formula.
func safeLevel(l Lock) gpio.Level {
	switch {
	case !l.FailSafe && !l.ActiveLow:
		return gpio.Low // fail-secure, relay on when high: keep it low
	case !l.FailSafe && l.ActiveLow:
		return gpio.High // fail-secure, relay on when low: keep it high
	case l.FailSafe && !l.ActiveLow:
		return gpio.High // maglock holds while powered: keep it on
	default:
		return gpio.Low
	}
}

func mustHalt(t *testing.T, hw *Hardware) {
	t.Helper()
	if err := hw.Halt(); err != nil {
		t.Fatalf("Halt: %v", err)
	}
}

func TestBuildShippedBoards(t *testing.T) {
	for _, name := range Shipped() {
		t.Run(name, func(t *testing.T) {
			b, err := LoadShipped(name)
			if err != nil {
				t.Fatal(err)
			}
			env := newTestEnv(t)
			r := newFakeResolver()
			hw, err := Build(b, r, env.opts(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer mustHalt(t, hw)
			c := hw.Cabinet

			// Doors and shelves as the file says.
			if len(c.Doors) != len(b.Doors) {
				t.Fatalf("%d doors, file has %d", len(c.Doors), len(b.Doors))
			}
			for i, d := range b.Doors {
				got := c.Doors[i]
				if got.Number != d.Number || got.Lock == nil || got.Sensor == nil {
					t.Fatalf("door %d built as %+v", d.Number, got)
				}
				if !strings.Contains(got.Lock.String(), d.Lock.Pin) || !strings.Contains(got.Sensor.String(), d.Switch.Pin) {
					t.Errorf("door %d: lock %q, switch %q: want pins %s, %s", d.Number, got.Lock, got.Sensor, d.Lock.Pin, d.Switch.Pin)
				}
			}
			if len(c.Shelves) != len(b.Shelves) {
				t.Fatalf("%d shelves, file has %d", len(c.Shelves), len(b.Shelves))
			}
			doors := b.ShelfDoors()
			for _, s := range c.Shelves {
				if want, ok := doors[s.Number]; !ok || s.Door != want {
					t.Errorf("shelf %d behind door %d, file says %d", s.Number, s.Door, want)
				}
				if s.Scale == nil || hw.Raw[s.Number] == nil {
					t.Errorf("shelf %d has no scale or raw access", s.Number)
				}
			}
			if len(hw.Raw) != len(b.Shelves) {
				t.Errorf("%d raw scales, want %d", len(hw.Raw), len(b.Shelves))
			}

			// Every lock at its safe level, never driven to the other.
			for _, d := range b.Doors {
				outs, input := r.pin(t, d.Lock.Pin).driven()
				want := safeLevel(d.Lock)
				if input || len(outs) == 0 {
					t.Fatalf("door %d lock pin %s: not driven as an output", d.Number, d.Lock.Pin)
				}
				for _, l := range outs {
					if l != want {
						t.Fatalf("door %d lock pin %s driven %v during Build, safe is %v", d.Number, d.Lock.Pin, outs, want)
					}
				}
				if fb := d.Lock.Feedback; fb != nil {
					p := r.pin(t, fb.Pin)
					if _, input := p.driven(); !input || p.Pull() != fb.Pull {
						t.Errorf("door %d feedback %s: input %v pull %v, want input with %v", d.Number, fb.Pin, input, p.Pull(), fb.Pull)
					}
				}
				p := r.pin(t, d.Switch.Pin)
				if _, input := p.driven(); !input || p.Pull() != d.Switch.Pull || p.edge != gpio.BothEdges {
					t.Errorf("door %d switch %s: input %v pull %v edge %v, want input with %v on both edges",
						d.Number, d.Switch.Pin, input, p.Pull(), p.edge, d.Switch.Pull)
				}
			}

			// One hx711 group per clock line; data pins pulled up; each pin
			// resolved once, the shared clock too.
			groups := b.HX711Groups()
			if len(hw.groups) != len(groups) {
				t.Fatalf("%d hx711 groups, want %d", len(hw.groups), len(groups))
			}
			for i, g := range groups {
				if hw.groups[i].Len() != len(g.Shelves) || !strings.Contains(hw.groups[i].String(), "clk "+g.Clock) {
					t.Errorf("group %d is %s with %d chips, want clock %s with shelves %v", i, hw.groups[i], hw.groups[i].Len(), g.Clock, g.Shelves)
				}
				for _, d := range g.Data {
					p := r.pin(t, d)
					if _, input := p.driven(); !input || p.Pull() != gpio.PullUp {
						t.Errorf("hx711 data %s: input %v pull %v, want input with pull-up", d, input, p.Pull())
					}
				}
			}
			for name, n := range r.requests {
				if n != 1 {
					t.Errorf("pin %s resolved %d times", name, n)
				}
			}

			// Display, thermometer and indicator.
			if c.Display == nil {
				t.Fatal("no display")
			}
			if err := c.Display.Show(context.Background(), hal.Screen{QR: "https://pay.example/q?c=1", Status: "ready"}); err != nil {
				t.Errorf("Show: %v", err)
			}
			if st := b.Display.ST7789; st != nil {
				s := r.spis[st.SPI]
				if s == nil || !s.Initialized || len(s.Ops) == 0 {
					t.Errorf("ST7789 on %s was not initialised over SPI", st.SPI)
				}
			}
			if (b.Thermometer == nil) != (c.Thermometer == nil) {
				t.Fatalf("thermometer %v, file has %v", c.Thermometer, b.Thermometer)
			}
			if c.Thermometer != nil {
				if got, err := c.Thermometer.Celsius(context.Background()); err != nil || got != 4.5 {
					t.Errorf("Celsius = %v, %v; want 4.5", got, err)
				}
			}
			if ind := b.Indicator; ind != nil {
				if c.Indicator == nil {
					t.Fatal("no indicator")
				}
				if outs, _ := r.pin(t, ind.LED.Pin).driven(); len(outs) == 0 || outs[len(outs)-1] != gpio.Level(ind.LED.ActiveLow) {
					t.Errorf("LED %s driven %v, want off", ind.LED.Pin, outs)
				}
			}
		})
	}
}

// testBoard is a small generic board; lock settings and the display block
// are filled in by each test.
func testBoard(t *testing.T, lock, display, shelves string) *Board {
	t.Helper()
	if shelves == "" {
		shelves = "  - {number: 1, door: 1, hx711: {clock: GPIO17, data: GPIO27}}\n"
	}
	if display == "" {
		display = "  fbdev: {device: /dev/fb0}\n"
	}
	text := "model: test\nhost: generic\ndoors:\n  - number: 1\n    lock: {pin: GPIO5, " + lock + "}\n" +
		"    switch: {pin: GPIO6, closed_level: low, pull: up}\nshelves:\n" + shelves + "display:\n" + display
	b, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("test board:\n%s\n%v", text, err)
	}
	return b
}

func TestLockSafeLevels(t *testing.T) {
	tests := []struct {
		name                string
		activeLow, failSafe bool
		safe                gpio.Level
	}{
		{"fail-secure, active-high relay", false, false, gpio.Low},
		{"fail-secure, active-low relay", true, false, gpio.High},
		{"maglock, active-high relay", false, true, gpio.High},
		{"maglock, active-low relay", true, true, gpio.Low},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBoard(t, fmt.Sprintf("active_low: %t, fail_safe: %t", tt.activeLow, tt.failSafe), "", "")
			env := newTestEnv(t)
			r := newFakeResolver()
			hw, err := Build(b, r, env.opts(nil))
			if err != nil {
				t.Fatal(err)
			}
			pin := r.pin(t, "GPIO5")
			if outs, _ := pin.driven(); len(outs) == 0 || slices.ContainsFunc(outs, func(l gpio.Level) bool { return l != tt.safe }) {
				t.Fatalf("lock pin driven %v during Build, want only %v", outs, tt.safe)
			}
			l := hw.Cabinet.Doors[0].Lock
			if err := l.Energise(context.Background()); err != nil {
				t.Fatal(err)
			}
			if pin.Read() == tt.safe {
				t.Fatal("Energise left the lock at its safe level")
			}
			mustHalt(t, hw)
			if pin.Read() != tt.safe {
				t.Fatalf("after Halt the lock pin is %v, want %v", pin.Read(), tt.safe)
			}
			// Halt again: idempotent, and still drives the lock safe.
			if err := l.Energise(context.Background()); err != nil {
				t.Fatal(err)
			}
			mustHalt(t, hw)
			if pin.Read() != tt.safe {
				t.Fatalf("after a second Halt the lock pin is %v, want %v", pin.Read(), tt.safe)
			}
		})
	}
}

func TestHaltOrderAndIdempotence(t *testing.T) {
	b, err := LoadShipped("rpi4-fridge-2door")
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t)
	r := newFakeResolver()
	hw, err := Build(b, r, env.opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range hw.Cabinet.Doors {
		if err := d.Lock.Energise(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := hw.Cabinet.Indicator.Set(ctx, hal.SignalReady); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		before := len(r.eventsSince(0))
		mustHalt(t, hw)
		// Locks first, then the display (DC low for its two sleep
		// commands), the indicator, the amplifiers, and the port last.
		want := []string{"GPIO5=High", "GPIO12=High", "GPIO25=Low", "GPIO25=Low",
			"GPIO26=Low", "GPIO27=Low", "GPIO16=High", "SPI0.0 close"}
		if i > 0 {
			want = want[:2] // only the locks are driven again
		}
		if got := r.eventsSince(before); !slices.Equal(got, want) {
			t.Errorf("halt %d did %q, want %q", i+1, got, want)
		}
		for _, d := range b.Doors {
			if got := r.pin(t, d.Lock.Pin).Read(); got != safeLevel(d.Lock) {
				t.Errorf("halt %d: door %d lock at %v", i+1, d.Number, got)
			}
		}
		if n := r.spis["SPI0.0"].closed.Load(); n != 1 {
			t.Errorf("halt %d: SPI port closed %d times, want once", i+1, n)
		}
		if got := r.pin(t, "GPIO16").Read(); got != gpio.High {
			t.Errorf("halt %d: hx711 clock GPIO16 is %v, want high (powered down)", i+1, got)
		}
		if got := r.pin(t, "GPIO26").Read(); got != gpio.Low {
			t.Errorf("halt %d: LED is %v, want off", i+1, got)
		}
	}
	if _, err := hw.Raw[1].ReadRaw(ctx); !errors.Is(err, hx711.ErrPoweredDown) {
		t.Errorf("ReadRaw after Halt: %v, want ErrPoweredDown", err)
	}
}

func TestUncalibratedShelf(t *testing.T) {
	b, err := LoadShipped("rpi4-fridge-2door")
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t)
	cal := scale.Calibration{Offset: 1000, CountsPerGram: 420}
	hw, err := Build(b, newFakeResolver(), env.opts(map[int]scale.Calibration{3: cal, 99: cal}))
	if err != nil {
		t.Fatal(err)
	}
	defer mustHalt(t, hw)
	for _, s := range hw.Cabinet.Shelves {
		_, err := s.Scale.Reading()
		if s.Number == 3 {
			if f, ok := s.Scale.(*scale.Filter); !ok || f.Calibration() != cal {
				t.Errorf("shelf 3 scale %T does not use its stored calibration", s.Scale)
			}
			if err != nil {
				t.Errorf("calibrated shelf 3 before any sample: %v", err)
			}
			continue
		}
		want := fmt.Sprintf("shelf %d is not calibrated; run cabinet calibrate --shelf %d", s.Number, s.Number)
		if !errors.Is(err, hal.ErrFault) || !errors.Is(err, ErrNotCalibrated) || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("shelf %d Reading: %v; want a fault saying %q", s.Number, err, want)
		}
	}
	if len(hw.filters) != 1 {
		t.Errorf("%d filters built, want 1 (only shelf 3 is calibrated)", len(hw.filters))
	}
}

// fakeHX711s is a row of HX711s on one clock line, driven by the clock
// pin's levels: each data pin shifts out its chip's value MSB first, one bit
// per rising edge, 25 pulses a conversion (gain A128). A clock held high
// longer than the power-down time resets every chip, as the datasheet says.
type fakeHX711s struct {
	mu      sync.Mutex
	values  map[string]int32
	pulses  int
	highAt  time.Time
	readyAt time.Time
}

// conversionTime spaces the fake's conversions so Run does not spin.
const conversionTime = 2 * time.Millisecond

func (c *fakeHX711s) clock(l gpio.Level) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if l == gpio.High {
		c.highAt = now
		c.pulses++
		return
	}
	if now.Sub(c.highAt) > hx711.PowerDownTime || c.pulses >= 25 {
		c.pulses = 0
		c.readyAt = now.Add(conversionTime)
	}
}

func (c *fakeHX711s) data(name string) func() gpio.Level {
	return func() gpio.Level {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case c.pulses == 0:
			return gpio.Level(time.Now().Before(c.readyAt)) // high: converting
		case c.pulses <= 24:
			return gpio.Level((uint32(c.values[name])&0xFFFFFF)>>(24-c.pulses)&1 == 1)
		}
		return gpio.High
	}
}

func TestCalibratedShelvesReadGrams(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b, err := LoadShipped("rpi4-ambient-1door")
	if err != nil {
		t.Fatal(err)
	}
	chips := &fakeHX711s{values: map[string]int32{"GPIO27": 150000, "GPIO22": 250000, "GPIO23": -120000, "GPIO24": 0}}
	r := newFakeResolver()
	clk := newFakePin("GPIO17")
	clk.onOut = chips.clock
	r.pins["GPIO17"] = clk
	for name := range chips.values {
		p := newFakePin(name)
		p.read = chips.data(name)
		r.pins[name] = p
	}
	cals := map[int]scale.Calibration{
		1: {Offset: 50000, CountsPerGram: 200},   // 500 g
		2: {Offset: 50000, CountsPerGram: 200},   // 1000 g
		3: {Offset: -170000, CountsPerGram: 100}, // 500 g, from a negative count
		4: {Offset: 20000, CountsPerGram: -40},   // 500 g, cell wired inverted
	}
	want := map[int]float64{1: 500, 2: 1000, 3: 500, 4: 500}
	env := newTestEnv(t)
	hw, err := Build(b, r, env.opts(cals))
	if err != nil {
		t.Fatal(err)
	}
	defer mustHalt(t, hw)
	_, stop := runHardware(t, hw)
	defer stop()
	for _, s := range hw.Cabinet.Shelves {
		var rd hal.Reading
		waitReading(t, fmt.Sprintf("shelf %d", s.Number), s.Scale, func(r hal.Reading, err error) bool {
			if err != nil && !errors.Is(err, hx711.ErrTiming) {
				t.Fatalf("shelf %d: %v", s.Number, err)
			}
			rd = r
			return r.Samples > 0
		})
		if math.Abs(rd.Grams-want[s.Number]) > 1e-9 {
			t.Errorf("shelf %d reads %v g, want %v", s.Number, rd.Grams, want[s.Number])
		}
	}
}

func TestRunStopsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b, err := LoadShipped("rpi4-fridge-2door")
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t)
	r := newFakeResolver()
	cals := map[int]scale.Calibration{}
	for _, s := range b.Shelves {
		cals[s.Number] = scale.Calibration{CountsPerGram: 100}
	}
	hw, err := Build(b, r, env.opts(cals))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hw.Run(ctx) }()
	// The door switches report once Run has debounced them: the pins float
	// at their initial low level, which the file calls closed.
	for _, d := range hw.Cabinet.Doors {
		closed, err := d.Sensor.Closed(ctx)
		if err != nil || !closed {
			t.Fatalf("door %d Closed = %v, %v", d.Number, closed, err)
		}
	}
	if err := hw.Run(ctx); err == nil {
		t.Error("a second Run while one runs was accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mustHalt(t, hw)
}

func TestBuildFailureHaltsWhatWasBuilt(t *testing.T) {
	data, err := shipped.ReadFile("boards/rpi4-fridge-2door.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) int {
		for i, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, s) {
				return i + 1
			}
		}
		t.Fatalf("%q not in the fridge board", s)
		return 0
	}
	tests := []struct {
		name      string
		failPin   string
		failSPI   bool
		line      int
		what      string
		spiClosed bool // the display's port was open and must be closed
		powerDown bool // the hx711s were built and must be powered down
	}{
		{name: "second lock", failPin: "GPIO12", line: lineOf("pin: GPIO12"), what: "door 2 lock"},
		{name: "switch", failPin: "GPIO3", line: lineOf("pin: GPIO3"), what: "door 2 switch"},
		{name: "hx711 data", failPin: "GPIO21", line: lineOf("data: GPIO21"), what: "shelf 5 hx711 data"},
		{name: "SPI port", failSPI: true, line: lineOf("spi: SPI0.0"), what: "display", powerDown: true},
		{name: "display DC after the port", failPin: "GPIO25", line: lineOf("dc: GPIO25"), what: "display dc", spiClosed: true, powerDown: true},
		{name: "indicator", failPin: "GPIO27", line: lineOf("buzzer: {pin: GPIO27"), what: "indicator buzzer", spiClosed: true, powerDown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse("rpi4-fridge-2door.yaml", data)
			if err != nil {
				t.Fatal(err)
			}
			env := newTestEnv(t)
			r := newFakeResolver()
			r.failPin, r.failSPI = tt.failPin, tt.failSPI
			hw, err := Build(b, r, env.opts(nil))
			if hw != nil || !errors.Is(err, errFake) {
				t.Fatalf("Build = %v, %v; want the resolver's error", hw, err)
			}
			prefix := fmt.Sprintf("rpi4-fridge-2door.yaml:%d: %s: ", tt.line, tt.what)
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q, want it to start with %q", err, prefix)
			}
			// Every lock built before the failure is at its safe level.
			for _, d := range b.Doors {
				r.mu.Lock()
				p := r.pins[d.Lock.Pin]
				r.mu.Unlock()
				if p != nil && p.Read() != safeLevel(d.Lock) {
					t.Errorf("door %d lock left at %v", d.Number, p.Read())
				}
			}
			if s := r.spis["SPI0.0"]; tt.spiClosed != (s != nil && s.closed.Load() == 1) {
				t.Errorf("SPI port closed: %v, want %v", s != nil && s.closed.Load() == 1, tt.spiClosed)
			}
			r.mu.Lock()
			clk := r.pins["GPIO16"]
			r.mu.Unlock()
			if got := clk != nil && clk.Read() == gpio.High; got != tt.powerDown {
				t.Errorf("hx711s powered down: %v, want %v", got, tt.powerDown)
			}
		})
	}
}

func TestSeparateClocksAreSeparateGroups(t *testing.T) {
	b := testBoard(t, "active_low: false, fail_safe: false", "",
		"  - {number: 1, door: 1, hx711: {clock: GPIO17, data: GPIO27}}\n"+
			"  - {number: 2, door: 1, hx711: {clock: GPIO18, data: GPIO22, shared_clock: true}}\n"+
			"  - {number: 3, door: 1, hx711: {clock: GPIO18, data: GPIO23, shared_clock: true, gain: A128}}\n")
	env := newTestEnv(t)
	hw, err := Build(b, newFakeResolver(), env.opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer mustHalt(t, hw)
	var got []string
	for _, g := range hw.groups {
		got = append(got, g.String())
	}
	want := []string{"hx711(clk GPIO17, data GPIO27)", "hx711(clk GPIO18, data GPIO22 GPIO23)"}
	if !slices.Equal(got, want) {
		t.Fatalf("groups %q, want %q", got, want)
	}
}

func TestST7789ResetAndActiveLowBacklight(t *testing.T) {
	b := testBoard(t, "active_low: false, fail_safe: false",
		"  st7789: {spi: SPI1.0, dc: GPIO25, rst: GPIO24, backlight: {pin: GPIO12, active_low: true}, width: 240, height: 240, invert: true}\n", "")
	r := newFakeResolver()
	hw, err := Build(b, r, newTestEnv(t).opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	bl := r.pin(t, "GPIO12")
	if outs, _ := bl.driven(); !slices.Equal(outs, []gpio.Level{gpio.High}) {
		t.Errorf("active-low backlight driven %v before the first frame, want [High] (off)", outs)
	}
	if outs, _ := r.pin(t, "GPIO24").driven(); !slices.Equal(outs, []gpio.Level{gpio.High, gpio.Low, gpio.High}) {
		t.Errorf("RST driven %v, want a reset pulse", outs)
	}
	if err := hw.Cabinet.Display.Show(context.Background(), hal.Screen{Status: "hello"}); err != nil {
		t.Fatal(err)
	}
	if bl.Read() != gpio.Low {
		t.Error("backlight not on (low) after the first frame")
	}
	mustHalt(t, hw)
	if bl.Read() != gpio.High {
		t.Error("backlight not off (high) after Halt")
	}
	if n := r.spis["SPI1.0"].closed.Load(); n != 1 {
		t.Errorf("SPI closed %d times", n)
	}
}

func TestAutoThermometer(t *testing.T) {
	b, err := LoadShipped("rpi4-fridge-2door")
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t)
	if err := os.RemoveAll(env.w1); err != nil {
		t.Fatal(err)
	}
	hw, err := Build(b, newFakeResolver(), env.opts(nil))
	if err != nil {
		t.Fatalf("a missing thermometer must not stop the cabinet: %v", err)
	}
	defer mustHalt(t, hw)
	th := hw.Cabinet.Thermometer
	ctx := context.Background()
	steps := []struct {
		name    string
		sensors []string
		want    float64
		errIs   error
	}{
		{name: "no w1 bus", errIs: ds18b20.ErrNotFound},
		{name: "bus without sensors", sensors: []string{}, errIs: ds18b20.ErrNotFound},
		{name: "two sensors", sensors: []string{"28-0000000000a1", "28-0000000000a2"}, errIs: hal.ErrFault},
		{name: "one sensor", sensors: []string{"28-0000000000a2"}, want: 3.25},
		{name: "another one appears: the first is kept", sensors: []string{"28-0000000000a2", "28-0000000000a3"}, want: 3.25},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.sensors != nil {
				if err := os.RemoveAll(env.w1); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(env.w1, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, id := range st.sensors {
					writeFile(t, filepath.Join(env.w1, id, "temperature"), "3250\n")
				}
			}
			got, err := th.Celsius(ctx)
			switch {
			case st.errIs != nil:
				if !errors.Is(err, st.errIs) || !errors.Is(err, hal.ErrFault) {
					t.Fatalf("Celsius = %v, %v; want a fault wrapping %v", got, err, st.errIs)
				}
			case err != nil || got != st.want:
				t.Fatalf("Celsius = %v, %v; want %v", got, err, st.want)
			}
		})
	}
	if !strings.Contains(th.String(), "28-0000000000a2") {
		t.Errorf("thermometer %q does not name the sensor it found", th)
	}
}

func TestBuildRejects(t *testing.T) {
	b, err := LoadShipped("rpi4-fridge-2door")
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t)
	tests := []struct {
		name   string
		board  *Board
		opts   *BuildOpts
		substr string
	}{
		{name: "nil board", opts: env.opts(nil), substr: "needs a board"},
		{name: "unusable stored calibration", board: b,
			opts:   env.opts(map[int]scale.Calibration{2: {Offset: 5}}),
			substr: "shelf 2: stored calibration: scale: counts per gram 0"},
		{name: "missing framebuffer", board: testBoard(t, "active_low: false, fail_safe: false", "", ""),
			opts:   &BuildOpts{FBOpts: &fbdev.Opts{SysfsRoot: t.TempDir()}},
			substr: "test.yaml:10: display: fbdev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hw, err := Build(tt.board, newFakeResolver(), tt.opts)
			if hw != nil || err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Fatalf("Build = %v, %v; want an error containing %q", hw, err, tt.substr)
			}
		})
	}
}

// TestHostResolver checks what the real resolver answers on any machine:
// names that exist nowhere, and stacks that do not fit. It touches no pin.
func TestHostResolver(t *testing.T) {
	if _, err := NewHostResolver(nil); err == nil {
		t.Error("NewHostResolver(nil) succeeded")
	}
	generic := func(stack string) *Board {
		b := testBoard(t, "active_low: false, fail_safe: false", "", "")
		b.GPIOStack = GPIOStack(stack)
		return b
	}

	t.Run("raspberry pi file", func(t *testing.T) {
		b, err := LoadShipped("rpi4-fridge-2door")
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewHostResolver(b)
		if rpi.Present() {
			if errors.Is(err, ErrWrongHost) && !strings.Contains(err.Error(), "gpiochip0") {
				t.Fatalf("on a Raspberry Pi: %v", err)
			}
			return
		}
		if !errors.Is(err, ErrWrongHost) || !strings.Contains(err.Error(), "rpi4-fridge-2door.yaml is for a Raspberry Pi 4, but this machine is not a Raspberry Pi") {
			t.Fatalf("off a Raspberry Pi: %v; want ErrWrongHost naming the file", err)
		}
	})

	t.Run("names that exist nowhere", func(t *testing.T) {
		r, err := NewHostResolver(generic("auto"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"nosuchchip-bangfu/3", "nosuchchip-bangfu/PA7", "GPIO77x"} {
			if p, err := r.Pin(name); p != nil || !errors.Is(err, ErrPinNotFound) || !strings.Contains(err.Error(), name) {
				t.Errorf("Pin(%q) = %v, %v; want ErrPinNotFound naming it", name, p, err)
			}
		}
		if p, err := r.SPI("SPI9.7"); p != nil || !errors.Is(err, ErrPinNotFound) || !strings.Contains(err.Error(), "SPI9.7") {
			t.Errorf("SPI(SPI9.7) = %v, %v; want ErrPinNotFound naming it", p, err)
		}
	})

	t.Run("chip lines under sysfs", func(t *testing.T) {
		// Either the machine has no sysfs GPIO (NewHostResolver says so)
		// or the name is refused: a chip line is a character-device name.
		r, err := NewHostResolver(generic("sysfs"))
		if err == nil {
			_, err = r.Pin("gpiochip0/5")
		}
		if !errors.Is(err, ErrWrongHost) {
			t.Fatalf("got %v, want ErrWrongHost", err)
		}
	})

	t.Run("cdev without a GPIO chip", func(t *testing.T) {
		_, err := NewHostResolver(generic("cdev"))
		switch {
		case len(gpioioctl.Chips) > 0 && err != nil:
			t.Fatalf("this machine has GPIO chips, yet: %v", err)
		case len(gpioioctl.Chips) == 0 && (!errors.Is(err, ErrWrongHost) || !strings.Contains(err.Error(), "/dev/gpiochip0")):
			t.Fatalf("no GPIO chips here, got %v; want ErrWrongHost naming /dev/gpiochip0", err)
		}
	})
}

// twoCellBoard has shelf 1 on two cells sharing one clock, shelf 2 on two
// cells with clocks of their own and shelf 3 on two cells whose right one
// is dead (its data line stays high: never ready).
const twoCellBoard = `model: two-cell test
host: rpi4
display:
  fbdev: {device: /dev/fb0}
doors:
  - number: 1
    lock: {pin: GPIO5, active_low: true, fail_safe: false}
    switch: {pin: GPIO6, closed_level: low, pull: up}
shelves:
  - number: 1
    door: 1
    hx711: {clock: GPIO17, data: GPIO27, shared_clock: true}
    hx711_right: {clock: GPIO17, data: GPIO22, shared_clock: true}
  - number: 2
    door: 1
    hx711: {clock: GPIO12, data: GPIO13}
    hx711_right: {clock: GPIO16, data: GPIO26}
  - number: 3
    door: 1
    hx711: {clock: GPIO18, data: GPIO19}
    hx711_right: {clock: GPIO20, data: GPIO21, ready_timeout: 20ms}
`

// wireChips connects fake chips on clock pin clk to r.
func wireChips(r *fakeResolver, clk string, chips *fakeHX711s) {
	c := newFakePin(clk)
	c.onOut = chips.clock
	r.pins[clk] = c
	for name := range chips.values {
		p := newFakePin(name)
		p.read = chips.data(name)
		r.pins[name] = p
	}
}

func TestBuildTwoCellShelves(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b, err := Parse("two.yaml", []byte(twoCellBoard))
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeResolver()
	wireChips(r, "GPIO17", &fakeHX711s{values: map[string]int32{"GPIO27": 150000, "GPIO22": 250000}})
	wireChips(r, "GPIO12", &fakeHX711s{values: map[string]int32{"GPIO13": -120000}})
	wireChips(r, "GPIO16", &fakeHX711s{values: map[string]int32{"GPIO26": 0}})
	wireChips(r, "GPIO18", &fakeHX711s{values: map[string]int32{"GPIO19": 50000}})
	wireChips(r, "GPIO20", &fakeHX711s{values: map[string]int32{}})
	dead := newFakePin("GPIO21")
	dead.read = func() gpio.Level { return gpio.High } // pulled up, no chip
	r.pins["GPIO21"] = dead

	left := map[int]scale.Calibration{
		1: {Offset: 50000, CountsPerGram: 200},   // 500 g
		2: {Offset: -170000, CountsPerGram: 100}, // 500 g
		3: {Offset: 0, CountsPerGram: 100},       // 500 g
	}
	right := map[int]scale.Calibration{
		1: {Offset: 50000, CountsPerGram: 200}, // 1000 g
		2: {Offset: 20000, CountsPerGram: -40}, // 500 g, cell wired inverted
		3: {Offset: 0, CountsPerGram: 100},
	}
	env := newTestEnv(t)
	clk := clocktest.New()
	o := env.opts(left)
	o.RightCalibrations = right
	o.Scale = scale.Opts{Clock: clk.Now, RetryDelay: time.Millisecond}
	hw, err := Build(b, r, o)
	if err != nil {
		t.Fatal(err)
	}
	defer mustHalt(t, hw)
	for n := 1; n <= 3; n++ {
		if hw.Raw[n] == nil || hw.RawRight[n] == nil {
			t.Fatalf("shelf %d: raw amplifiers left %v right %v", n, hw.Raw[n], hw.RawRight[n])
		}
	}
	if len(hw.groups) != 5 {
		t.Errorf("%d hx711 groups, want 5 (one shared clock, four own)", len(hw.groups))
	}
	for _, s := range hw.Cabinet.Shelves {
		if f, ok := s.Scale.(*scale.Filter); !ok || f.Calibration() != scale.PairCalibration {
			t.Errorf("shelf %d total %T: want a Filter with PairCalibration", s.Number, s.Scale)
		}
		if f, ok := s.Right.(*scale.Filter); !ok || f.Calibration() != right[s.Number] {
			t.Errorf("shelf %d right %T: want a Filter with the right cell's calibration", s.Number, s.Right)
		}
	}

	_, stop := runHardware(t, hw)
	defer stop()
	wait := func(what string, sc hal.Scale, cond func(hal.Reading, error) bool) {
		t.Helper()
		waitReading(t, what, sc, cond)
	}
	sampled := func(rd hal.Reading, err error) bool {
		if err != nil && !errors.Is(err, hx711.ErrTiming) {
			t.Fatalf("reading: %v", err)
		}
		return rd.Samples > 0
	}
	shelves := hw.Cabinet.Shelves
	for _, c := range []struct {
		shelf        int
		total, right float64
	}{{1, 1500, 1000}, {2, 1000, 500}} {
		s := shelves[c.shelf-1]
		wait(fmt.Sprintf("shelf %d total", c.shelf), s.Scale, sampled)
		wait(fmt.Sprintf("shelf %d right", c.shelf), s.Right, sampled)
		if rd, _ := s.Scale.Reading(); math.Abs(rd.Grams-c.total) > 1e-6 {
			t.Errorf("shelf %d total reads %v g, want %v", c.shelf, rd.Grams, c.total)
		}
		if rd, _ := s.Right.Reading(); math.Abs(rd.Grams-c.right) > 1e-6 {
			t.Errorf("shelf %d right reads %v g, want %v", c.shelf, rd.Grams, c.right)
		}
	}

	// Shelf 3's right cell is dead: its total never reads (no half-weight
	// of the left cell's 500 g) and, once the no-data limit has passed,
	// reads as a fault naming the right cell.
	s3 := shelves[2]
	clk.Advance(3 * time.Second)
	wait("shelf 3 total", s3.Scale, func(rd hal.Reading, err error) bool {
		if rd.Samples > 0 {
			t.Fatalf("shelf 3 total reads %+v with a dead right cell", rd)
		}
		return errors.Is(err, hal.ErrFault) && errors.Is(err, scale.ErrNoData) &&
			strings.Contains(fmt.Sprint(err), "right cell") && strings.Contains(fmt.Sprint(err), "not ready")
	})
	if _, err := s3.Right.Reading(); !errors.Is(err, hal.ErrFault) {
		t.Errorf("shelf 3 right with a dead cell: %v, want a fault", err)
	}
}

func TestTwoCellShelfNotCalibrated(t *testing.T) {
	b, err := Parse("two.yaml", []byte(twoCellBoard))
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t)
	cal := scale.Calibration{CountsPerGram: 100}
	o := env.opts(map[int]scale.Calibration{1: cal, 2: cal})
	o.RightCalibrations = map[int]scale.Calibration{1: cal, 3: cal}
	hw, err := Build(b, newFakeResolver(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer mustHalt(t, hw)
	want := map[int]string{
		2: "run cabinet calibrate --shelf 2 --cell right",
		3: "run cabinet calibrate --shelf 3 --cell left",
	}
	for _, s := range hw.Cabinet.Shelves {
		for _, sc := range []hal.Scale{s.Scale, s.Right} {
			_, err := sc.Reading()
			if s.Number == 1 {
				if err != nil {
					t.Errorf("calibrated shelf 1: %v", err)
				}
				continue
			}
			if !errors.Is(err, ErrNotCalibrated) || !errors.Is(err, hal.ErrFault) || !strings.Contains(fmt.Sprint(err), want[s.Number]) {
				t.Errorf("shelf %d: %v; want a fault saying %q", s.Number, err, want[s.Number])
			}
		}
	}
	if len(hw.filters) != 2 {
		t.Errorf("%d filters, want 2 (shelf 1's total and right)", len(hw.filters))
	}
}

// runHardware runs hw until stop, which waits for Run to return and
// reports its error; ctx is the context it runs under.
func runHardware(t *testing.T, hw *Hardware) (ctx context.Context, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hw.Run(ctx) }()
	return ctx, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// waitReading polls sc until cond holds. It waits in wall time, on
// purpose: these tests build the cabinet the way a board does, so the HX711
// groups bit-bang periph's gpiotest pins on the system clock (the
// microsecond clock-high timing is what they check) and the scale filters
// stamp samples with it; there is no clock to advance, and no signal when a
// sample lands. The 5 ms poll costs nothing; the deadline only fails a
// broken driver instead of hanging.
func waitReading(t *testing.T, what string, sc hal.Scale, cond func(hal.Reading, error) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		rd, err := sc.Reading()
		if cond(rd, err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %+v, %v", what, rd, err)
		}
	}
}
