package board

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

func TestShippedBoards(t *testing.T) {
	if got := Shipped(); !reflect.DeepEqual(got, []string{"rpi4-ambient-1door-twocell.yaml", "rpi4-ambient-1door.yaml", "rpi4-fridge-2door.yaml"}) {
		t.Fatalf("shipped boards %v", got)
	}
	t.Run("fridge", func(t *testing.T) {
		b, err := LoadShipped("rpi4-fridge-2door")
		if err != nil {
			t.Fatal(err)
		}
		if b.Host != HostRPi4 || b.GPIOStack != StackCdev || len(b.Doors) != 2 || len(b.Shelves) != 8 {
			t.Fatalf("host %s stack %s, %d doors, %d shelves", b.Host, b.GPIOStack, len(b.Doors), len(b.Shelves))
		}
		for _, d := range b.Doors {
			l := d.Lock
			if l.FailSafe || l.Mode != LockHold || l.Feedback == nil || !l.ActiveLow || l.Settle != 300*time.Millisecond {
				t.Errorf("door %d lock %+v: want fail-secure, hold, active-low, with feedback", d.Number, l)
			}
			if d.Switch.ClosedLevel != gpio.Low || d.Switch.Pull != gpio.Float || d.Switch.Debounce != 50*time.Millisecond {
				t.Errorf("door %d switch %+v", d.Number, d.Switch)
			}
		}
		want := map[int]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2}
		if got := b.ShelfDoors(); !reflect.DeepEqual(got, want) {
			t.Fatalf("ShelfDoors %v, want %v", got, want)
		}
		if got := b.ShelvesBehind(2); !reflect.DeepEqual(got, []int{5, 6, 7, 8}) {
			t.Fatalf("ShelvesBehind(2) = %v", got)
		}
		st := b.Display.ST7789
		if st == nil || b.Display.FBDev != nil || st.SPI != "SPI0.0" || st.Width != 240 || st.Height != 320 ||
			!st.Invert || st.SPISpeed != 32*physic.MegaHertz || st.RST != "" || st.Backlight != nil {
			t.Fatalf("display %+v", b.Display)
		}
		if b.Thermometer == nil || b.Thermometer.DS18B20 != "auto" || b.Thermometer.Pin != "GPIO4" {
			t.Fatalf("thermometer %+v", b.Thermometer)
		}
		if b.Indicator == nil || b.Indicator.LED.Pin != "GPIO26" || b.Indicator.Buzzer == nil {
			t.Fatalf("indicator %+v", b.Indicator)
		}
		// Every header GPIO is claimed exactly once, but for the shared clock.
		seen := map[string]int{}
		for _, p := range b.Pins() {
			seen[p.Pin]++
		}
		for n := 0; n <= 27; n++ {
			pin := "GPIO" + strconv.Itoa(n)
			want := 1
			if pin == "GPIO16" {
				want = 8
			}
			if seen[pin] != want {
				t.Errorf("%s claimed %d times, want %d", pin, seen[pin], want)
			}
		}
	})
	t.Run("ambient", func(t *testing.T) {
		b, err := LoadShipped("rpi4-ambient-1door.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Doors) != 1 || len(b.Shelves) != 4 || b.Thermometer != nil || b.Display.FBDev == nil ||
			b.Display.FBDev.Device != "/dev/fb0" || b.Display.ST7789 != nil {
			t.Fatalf("ambient board %+v", b)
		}
		if l := b.Doors[0].Lock; l.Mode != LockPulse || l.PulseTime != 400*time.Millisecond {
			t.Fatalf("lock %+v", l)
		}
		g := b.HX711Groups()
		if len(g) != 1 || g[0].Clock != "GPIO17" || !reflect.DeepEqual(g[0].Shelves, []int{1, 2, 3, 4}) ||
			!reflect.DeepEqual(g[0].Data, []string{"GPIO27", "GPIO22", "GPIO23", "GPIO24"}) {
			t.Fatalf("groups %+v", g)
		}
	})
	t.Run("ambient two-cell", func(t *testing.T) {
		b, err := LoadShipped("rpi4-ambient-1door-twocell")
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Doors) != 1 || len(b.Shelves) != 4 || b.Display.FBDev == nil {
			t.Fatalf("two-cell board %+v", b)
		}
		for _, s := range b.Shelves {
			if s.Right == nil || !s.Right.SharedClock || s.Right.Clock != "GPIO17" {
				t.Errorf("shelf %d right cell %+v: want one on the shared clock GPIO17", s.Number, s.Right)
			}
		}
		g := b.HX711Groups()
		if len(g) != 1 || g[0].Clock != "GPIO17" ||
			!reflect.DeepEqual(g[0].Shelves, []int{1, 1, 2, 2, 3, 3, 4, 4}) ||
			!reflect.DeepEqual(g[0].Cells, []Cell{CellLeft, CellRight, CellLeft, CellRight, CellLeft, CellRight, CellLeft, CellRight}) ||
			!reflect.DeepEqual(g[0].Data, []string{"GPIO27", "GPIO18", "GPIO22", "GPIO19", "GPIO23", "GPIO21", "GPIO24", "GPIO25"}) {
			t.Fatalf("groups %+v", g)
		}
		// The same wiring as the one-cell ambient board, plus the right
		// cells on four of its spare pins.
		one, err := LoadShipped("rpi4-ambient-1door")
		if err != nil {
			t.Fatal(err)
		}
		pins := func(b *Board) map[string]bool {
			m := map[string]bool{}
			for _, p := range b.Pins() {
				m[p.Pin] = true
			}
			return m
		}
		p1, p2 := pins(one), pins(b)
		for p := range p1 {
			if !p2[p] {
				t.Errorf("%s used on the one-cell board but not on the two-cell one", p)
			}
		}
		var added []string
		for p := range p2 {
			if !p1[p] {
				added = append(added, p)
			}
		}
		slices.SortFunc(added, func(a, b string) int {
			if pinLess(a, b) {
				return -1
			}
			return 1
		})
		if !reflect.DeepEqual(added, []string{"GPIO18", "GPIO19", "GPIO21", "GPIO25"}) {
			t.Errorf("two-cell board adds pins %v", added)
		}
	})
	for _, name := range Shipped() {
		t.Run("format round trip "+name, func(t *testing.T) {
			b, err := LoadShipped(name)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, b)
		})
	}
}

// roundTrip checks that Format writes a file Parse reads back as b.
func roundTrip(t *testing.T, b *Board) {
	t.Helper()
	if err := b.Validate(); err != nil {
		t.Fatalf("accepted board fails Validate: %v", err)
	}
	text, err := b.Format()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Parse(b.Source(), text)
	if err != nil {
		t.Fatalf("Format wrote a file Parse refuses: %v\n%s", err, text)
	}
	if !sameBoard(b, b2) {
		t.Fatalf("round trip changed the board:\n%+v\n%+v\n%s", b, b2, text)
	}
}

func sameBoard(a, b *Board) bool {
	x, y := *a, *b
	x.lines, y.lines = nil, nil
	if len(x.Reserved) == 0 && len(y.Reserved) == 0 {
		x.Reserved, y.Reserved = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	data, err := shipped.ReadFile("boards/rpi4-ambient-1door.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Load(good)
	if err != nil || b.Source() != good {
		t.Fatalf("Load: %v, source %q", err, b.Source())
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("model: x\nhost: rpi9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad+`:2: host "rpi9"`) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Load of a bad file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxFileBytes)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Load of a %d-byte file: %v", MaxFileBytes+2, err)
	}
	if _, err := Load(filepath.Join(dir, "none.yaml")); err == nil || !strings.HasPrefix(err.Error(), "board: ") {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if _, err := LoadShipped("nope"); err == nil {
		t.Fatal("LoadShipped of an unknown name succeeded")
	}
}

func TestHX711Groups(t *testing.T) {
	b := parseOK(t, base+`  - number: 2
    door: 1
    hx711: {clock: GPIO22, data: GPIO23, shared_clock: true, ready_timeout: 500ms}
  - number: 3
    door: 1
    hx711: {clock: GPIO24, data: GPIO25}
  - number: 4
    door: 1
    hx711: {clock: GPIO22, data: GPIO26, shared_clock: true}
`)
	want := []HX711Group{
		{Clock: "GPIO17", Gain: GainA128, Shelves: []int{1}, Cells: []Cell{CellLeft}, Data: []string{"GPIO27"}},
		{Clock: "GPIO22", Gain: GainA128, ReadyTimeout: 500 * time.Millisecond, Shelves: []int{2, 4}, Cells: []Cell{CellLeft, CellLeft}, Data: []string{"GPIO23", "GPIO26"}},
		{Clock: "GPIO24", Gain: GainA128, Shelves: []int{3}, Cells: []Cell{CellLeft}, Data: []string{"GPIO25"}},
	}
	if got := b.HX711Groups(); !reflect.DeepEqual(got, want) {
		t.Fatalf("groups\n%+v\nwant\n%+v", got, want)
	}
	roundTrip(t, b)
}

// twoCell is base with shelf 2 carried by two cells on one shared clock and
// shelf 3 by two cells on clocks of their own.
const twoCell = base + `  - number: 2
    door: 1
    hx711: {clock: GPIO22, data: GPIO23, shared_clock: true}
    hx711_right: {clock: GPIO22, data: GPIO24, shared_clock: true, ready_timeout: 500ms}
  - number: 3
    door: 1
    hx711: {clock: GPIO12, data: GPIO13, gain: A64}
    hx711_right:
      clock: GPIO16
      data: GPIO26
      gain: A64
`

func TestTwoCellShelves(t *testing.T) {
	b := parseOK(t, twoCell)
	if b.Shelves[0].Right != nil {
		t.Fatalf("one-cell shelf 1 has a right cell %+v", b.Shelves[0].Right)
	}
	if r := b.Shelves[1].Right; r == nil || *r != (HX711{Clock: "GPIO22", Data: "GPIO24", Gain: GainA128, SharedClock: true, ReadyTimeout: 500 * time.Millisecond}) {
		t.Fatalf("shelf 2 right cell %+v", r)
	}
	if r := b.Shelves[2].Right; r == nil || *r != (HX711{Clock: "GPIO16", Data: "GPIO26", Gain: GainA64}) {
		t.Fatalf("shelf 3 right cell %+v", r)
	}
	want := []HX711Group{
		{Clock: "GPIO17", Gain: GainA128, Shelves: []int{1}, Cells: []Cell{CellLeft}, Data: []string{"GPIO27"}},
		{Clock: "GPIO22", Gain: GainA128, ReadyTimeout: 500 * time.Millisecond, Shelves: []int{2, 2}, Cells: []Cell{CellLeft, CellRight}, Data: []string{"GPIO23", "GPIO24"}},
		{Clock: "GPIO12", Gain: GainA64, Shelves: []int{3}, Cells: []Cell{CellLeft}, Data: []string{"GPIO13"}},
		{Clock: "GPIO16", Gain: GainA64, Shelves: []int{3}, Cells: []Cell{CellRight}, Data: []string{"GPIO26"}},
	}
	if got := b.HX711Groups(); !reflect.DeepEqual(got, want) {
		t.Fatalf("groups\n%+v\nwant\n%+v", got, want)
	}
	uses := map[string][]string{}
	for _, p := range b.Pins() {
		uses[p.Pin] = append(uses[p.Pin], p.Use)
	}
	for pin, want := range map[string][]string{
		"GPIO22": {"shelf 2 hx711 clock", "shelf 2 hx711_right clock"},
		"GPIO24": {"shelf 2 hx711_right data"},
		"GPIO16": {"shelf 3 hx711_right clock"},
		"GPIO26": {"shelf 3 hx711_right data"},
	} {
		if !reflect.DeepEqual(uses[pin], want) {
			t.Errorf("Pins: %s used by %q, want %q", pin, uses[pin], want)
		}
	}
	roundTrip(t, b)
}

func parseOK(t *testing.T, text string) *Board {
	t.Helper()
	b, err := Parse("t.yaml", []byte(text))
	if err != nil {
		t.Fatalf("valid board refused: %v\n%s", err, text)
	}
	return b
}

// base is a small valid board; shelves come last so cases can append
// shelves to it.
const base = `model: test cabinet
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
    hx711: {clock: GPIO17, data: GPIO27}
`

func TestValidBoards(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"base", base},
		{"generic chip/line pins", strings.Replace(strings.Replace(base, "host: rpi4", "host: generic", 1),
			"GPIO5,", "gpiochip0/17,", 1) + `  - number: 2
    door: 1
    hx711: {clock: pinctrl-rp1/PA7, data: GPIO1023}
`},
		{"st7789 with everything", `model: m
host: rpi5
gpio_stack: auto
doors:
  - number: 2
    lock:
      pin: GPIO5
      active_low: false
      fail_safe: true
      mode: pulse
      pulse_time: 1s
      settle: 0s
      feedback: {pin: GPIO12, locked_level: high, pull: down}
    switch: {pin: GPIO6, closed_level: high, pull: none, debounce: 1ms, poll: 1s}
shelves:
  - {number: 7, door: 2, hx711: {clock: GPIO13, data: GPIO27, gain: B32, ready_timeout: 10s}}
display:
  st7789: {spi: SPI1.2, dc: GPIO25, rst: GPIO24, backlight: {pin: GPIO23, active_low: true},
    width: 240, height: 240, rotation: 270, x_offset: 0, y_offset: 80, invert: false, spi_speed: 62.5MHz}
thermometer: {ds18b20: 28-0123456789ab}
indicator: {led: {pin: GPIO22}}
reserved: {GPIO14: console, GPIO15: console}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, parseOK(t, tt.yaml))
		})
	}
}

// sub replaces old by new once; the test fails to build its case if old is
// missing.
func sub(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("test case: " + old + " not in file")
	}
	return strings.Replace(s, old, new, 1)
}

// edit is sub that also marks the line where new ends with "#<".
func edit(s, old, new string) string {
	i := strings.Index(s, old)
	if i < 0 {
		panic("test case: " + old + " not in file")
	}
	s = s[:i] + new + s[i+len(old):]
	end := i + len(new)
	if nl := strings.IndexByte(s[end:], '\n'); nl >= 0 {
		end += nl
	} else {
		end = len(s)
	}
	return s[:end] + " #<" + s[end:]
}

var reMark = regexp.MustCompile(`#(<+)`)

// TestErrors gives each bad file with "#<" at the end of every line an error
// must name ("#<<" for two errors), in order; want holds one fragment per
// error. No other error may be reported.
// twoCellShelf appends shelf 2 with both cells to base.
func twoCellShelf(left, right string) string {
	return base + "  - number: 2\n    door: 1\n    hx711: " + left + "\n    hx711_right: " + right + "\n"
}

func TestErrors(t *testing.T) {
	shelf2 := func(hx string) string { return base + "  - number: 2\n    door: 1\n    hx711: " + hx + " #<\n" }
	sharedBase := sub(base, "data: GPIO27}", "data: GPIO27, shared_clock: true}")
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", "colour: red #<\n" + base,
			[]string{`board: unknown key "colour" (allowed: model, host,`}},
		{"unknown nested key", edit(base, "fail_safe: false}", "fail_safe: false, pinn: GPIO9}"),
			[]string{`door 1 lock: unknown key "pinn" (allowed: pin, active_low,`}},
		{"soc instead of host", edit(sub(base, "model: test cabinet", "model: test cabinet #<"), "host: rpi4", "soc: rpi4"),
			[]string{`host is required: rpi3`, `board: unknown key "soc"; did you mean "host"?`}},
		{"draft spelling of shared_clock", edit(base, "data: GPIO27}", "data: GPIO27, clock_shared: true}"),
			[]string{`shelf 1 hx711: unknown key "clock_shared"; did you mean "shared_clock"?`}},
		{"draft spelling of the thermometer id", base + "thermometer: {id: auto} #<<\n",
			[]string{`thermometer: unknown key "id"; did you mean "ds18b20"?`, `thermometer: ds18b20 "": want a w1 id`}},
		{"unknown host", edit(base, "host: rpi4", "host: rpi9"),
			[]string{`host "rpi9": want rpi3, rpi4, rpi5 or generic`}},
		{"bad gpio_stack", edit(base, "host: rpi4", "host: rpi4\ngpio_stack: gpiomem"),
			[]string{`gpio_stack "gpiomem": want cdev, sysfs or auto`}},
		{"unknown pin on a Pi", edit(base, "pin: GPIO6,", "pin: GPIO28,"),
			[]string{`door 1 switch: unknown pin "GPIO28": on rpi4 use GPIO0…GPIO27`}},
		{"header pin number", edit(base, "data: GPIO27}", `data: "11"}`),
			[]string{`shelf 1 hx711 data: unknown pin "11"`}},
		{"leading zero", edit(base, "pin: GPIO5,", "pin: GPIO05,"),
			[]string{`door 1 lock: unknown pin "GPIO05"`}},
		{"unknown pin on generic", edit(sub(base, "host: rpi4", "host: generic"), "pin: GPIO5,", "pin: GPIO1024,"),
			[]string{`door 1 lock: unknown pin "GPIO1024": on generic use GPIO<n> (n < 1024) or <chip>/<line>`}},
		{"chip line offset too big", edit(sub(base, "host: rpi4", "host: generic"), "pin: GPIO5,", "pin: gpiochip0/4096,"),
			[]string{`door 1 lock: unknown pin "gpiochip0/4096"`}},
		{"pin used twice", edit(base, "data: GPIO27}", "data: GPIO5}"),
			[]string{`shelf 1 hx711 data: pin GPIO5 already used by door 1 lock`}},
		{"pin used twice is reported at the later line", "reserved:\n  GPIO27: console\n" + edit(base, "data: GPIO27}", "data: GPIO27}"),
			[]string{`shelf 1 hx711 data: pin GPIO27 already used by reserved (console)`}},
		{"reserved without a use", edit(base, "host: rpi4", "host: rpi4\nreserved: {GPIO14: \"\"}"),
			[]string{`reserved GPIO14: say what uses it`}},
		{"clock shared without saying so", shelf2("{clock: GPIO17, data: GPIO22}"),
			[]string{`shelf 2 hx711 clock: pin GPIO17 already used by shelf 1 hx711 clock (set shared_clock: true on every hx711`}},
		{"clock shared by one side only", shelf2("{clock: GPIO17, data: GPIO22, shared_clock: true}"),
			[]string{`shelf 2 hx711 clock: pin GPIO17 already used by shelf 1 hx711 clock`}},
		{"shared clock alone", edit(base, "data: GPIO27}", "data: GPIO27, shared_clock: true}"),
			[]string{`shelf 1 hx711: shared_clock is true but no other hx711 uses clock GPIO17`}},
		{"shared clock with two gains", sharedBase + "  - number: 2\n    door: 1\n    hx711: {clock: GPIO17, data: GPIO22, shared_clock: true, gain: A64} #<\n",
			[]string{`shelf 2 hx711: gain A64 differs from shelf 1 hx711's A128 on shared clock GPIO17`}},
		{"shared clock on a lock's pin", edit(base, "{clock: GPIO17, data: GPIO27}", "{clock: GPIO5, data: GPIO27, shared_clock: true}"),
			[]string{`shelf 1 hx711 clock: pin GPIO5 already used by door 1 lock`}},
		{"right cell on a lock's pin", twoCellShelf("{clock: GPIO22, data: GPIO23}", "{clock: GPIO24, data: GPIO5} #<"),
			[]string{`shelf 2 hx711_right data: pin GPIO5 already used by door 1 lock`}},
		{"right cell on its left cell's data pin", twoCellShelf("{clock: GPIO22, data: GPIO23}", "{clock: GPIO24, data: GPIO23} #<"),
			[]string{`shelf 2 hx711_right data: pin GPIO23 already used by shelf 2 hx711 data`}},
		{"right cell on another shelf's clock unshared", twoCellShelf("{clock: GPIO22, data: GPIO23}", "{clock: GPIO17, data: GPIO24} #<"),
			[]string{`shelf 2 hx711_right clock: pin GPIO17 already used by shelf 1 hx711 clock (set shared_clock: true on every hx711`}},
		{"cells sharing a clock one side only", twoCellShelf("{clock: GPIO22, data: GPIO23, shared_clock: true}", "{clock: GPIO22, data: GPIO24} #<"),
			[]string{`shelf 2 hx711_right clock: pin GPIO22 already used by shelf 2 hx711 clock`}},
		{"cells sharing a clock with two gains", twoCellShelf("{clock: GPIO22, data: GPIO23, shared_clock: true}", "{clock: GPIO22, data: GPIO24, shared_clock: true, gain: B32} #<"),
			[]string{`shelf 2 hx711_right: gain B32 differs from shelf 2 hx711's A128 on shared clock GPIO22`}},
		{"right cell shared clock alone", twoCellShelf("{clock: GPIO22, data: GPIO23}", "{clock: GPIO24, data: GPIO25, shared_clock: true} #<"),
			[]string{`shelf 2 hx711_right: shared_clock is true but no other hx711 uses clock GPIO24`}},
		{"right cell without data", twoCellShelf("{clock: GPIO22, data: GPIO23}", "{clock: GPIO24} #<"),
			[]string{`shelf 2 hx711_right: data is required`}},
		{"right cell with a bad gain and timeout", twoCellShelf("{clock: GPIO22, data: GPIO23}", "{clock: GPIO24, data: GPIO25, gain: A32, ready_timeout: 1ms} #<<"),
			[]string{`shelf 2 hx711_right: gain "A32": want A128, B32 or A64`, `shelf 2 hx711_right: ready_timeout 1ms outside 10ms…10s`}},
		{"right cell without hx711", base + "  - number: 2\n    door: 1\n    hx711_right: {clock: GPIO22, data: GPIO23} #<\n",
			[]string{`shelf 2: hx711 is missing: a shelf with hx711_right needs hx711 for its left cell`}},
		{"right cell unknown key", twoCellShelf("{clock: GPIO22, data: GPIO23}", "{clock: GPIO24, data: GPIO25, dout: GPIO26} #<"),
			[]string{`shelf 2 hx711_right: unknown key "dout"; did you mean "data"?`}},
		{"right cell as hx711_2", base + "  - number: 2\n    door: 1\n    hx711: {clock: GPIO22, data: GPIO23}\n    hx711_2: {clock: GPIO24, data: GPIO25} #<\n",
			[]string{`shelf 2: unknown key "hx711_2"; did you mean "hx711_right"?`}},
		{"right cell not a mapping", twoCellShelf("{clock: GPIO22, data: GPIO23}", "GPIO24 #<"),
			[]string{`shelf 2 hx711_right: want a mapping of keys, got "GPIO24"`}},
		{"shelf without a scale", base + "  - number: 2 #<\n    door: 1\n",
			[]string{`shelf 2: hx711 is missing: every shelf needs a scale`}},
		{"scale without data", shelf2("{clock: GPIO22}"),
			[]string{`shelf 2 hx711: data is required`}},
		{"shelf behind a missing door", base + "  - number: 2\n    door: 3 #<\n    hx711: {clock: GPIO22, data: GPIO23}\n",
			[]string{`shelf 2: door 3 does not exist (doors: 1)`}},
		{"shelf without a door", base + "  - number: 2 #<\n    hx711: {clock: GPIO22, data: GPIO23}\n",
			[]string{`shelf 2: door is required`}},
		{"duplicate shelf numbers", base + "  - number: 1 #<\n    door: 1\n    hx711: {clock: GPIO22, data: GPIO23}\n",
			[]string{`shelf 1: number repeated (first on line 10)`}},
		{"duplicate door numbers", sub(base, "shelves:", "  - number: 1 #<\n    lock: {pin: GPIO12, active_low: true, fail_safe: false}\n"+
			"    switch: {pin: GPIO13, closed_level: low, pull: up}\nshelves:"),
			[]string{`door 1: number repeated (first on line 6)`}},
		{"door without a number", edit(base, "  - number: 1\n    lock: {pin: GPIO5, active_low: true, fail_safe: false}",
			"  - lock: {pin: GPIO5, active_low: true, fail_safe: false}"),
			[]string{`door #1 in the list: number is required, 1 or more`}},
		{"missing lock", edit(sub(base, "    lock: {pin: GPIO5, active_low: true, fail_safe: false}\n", ""), "  - number: 1", "  - number: 1"),
			[]string{`door 1 lock is missing: every door needs a lock`}},
		{"missing switch", edit(sub(base, "    switch: {pin: GPIO6, closed_level: low, pull: up}\n", ""), "  - number: 1", "  - number: 1"),
			[]string{`door 1 switch is missing: every door needs its reed switch`}},
		{"lock without pin or safety choices", sub(base, "{pin: GPIO5, active_low: true, fail_safe: false}", "{mode: hold} #<<<"),
			[]string{`door 1 lock: active_low is required`, `door 1 lock: fail_safe is required: false for a fail-secure bolt`, `door 1 lock: pin is required`}},
		{"duration without a unit", edit(base, "fail_safe: false}", "fail_safe: false, settle: 300}"),
			[]string{`door 1 lock: settle: duration "300" needs a unit, e.g. "300ms"`}},
		{"bad duration", edit(base, "pull: up}", "pull: up, debounce: soon}"),
			[]string{`door 1 switch: debounce: bad duration "soon", want e.g. "300ms"`}},
		{"duration out of range", edit(base, "pull: up}", "pull: up, poll: 2s}"),
			[]string{`door 1 switch: poll 2s outside 1ms…1s`}},
		{"negative settle", edit(base, "fail_safe: false}", "fail_safe: false, settle: -1ms}"),
			[]string{`door 1 lock: settle -1ms outside 0…10s`}},
		{"pulse mode without pulse_time", edit(base, "fail_safe: false}", "fail_safe: false, mode: pulse}"),
			[]string{`door 1 lock: mode pulse needs pulse_time`}},
		{"pulse_time in hold mode", edit(base, "fail_safe: false}", "fail_safe: false, pulse_time: 1s}"),
			[]string{`door 1 lock: pulse_time is only for mode pulse`}},
		{"pulse_time too short", edit(base, "fail_safe: false}", "fail_safe: false, mode: pulse, pulse_time: 1ms}"),
			[]string{`door 1 lock: pulse_time 1ms outside 10ms…5s`}},
		{"pulse_time longer than the lock driver allows", edit(base, "fail_safe: false}", "fail_safe: false, mode: pulse, pulse_time: 8s}"),
			[]string{`door 1 lock: pulse_time 8s outside 10ms…5s`}},
		{"bad mode", edit(base, "fail_safe: false}", "fail_safe: false, mode: latch}"),
			[]string{`door 1 lock: mode "latch": want hold or pulse`}},
		{"bad level", edit(base, "closed_level: low", "closed_level: 0"),
			[]string{`door 1 switch: closed_level: level "0", want high or low`}},
		{"missing level", edit(base, "switch: {pin: GPIO6, closed_level: low, pull: up}", "switch: {pin: GPIO6, pull: up}"),
			[]string{`door 1 switch: closed_level is required: the level the switch reads while the door is shut`}},
		{"feedback without a level", edit(base, "fail_safe: false}", "fail_safe: false, feedback: {pin: GPIO12, pull: up}}"),
			[]string{`door 1 lock feedback: locked_level is required`}},
		{"bad pull", edit(base, "pull: up}", "pull: pullup}"),
			[]string{`door 1 switch: pull: pull "pullup", want up, down or none`}},
		{"missing pull", edit(base, ", pull: up}", "}"),
			[]string{`door 1 switch: pull is required: up, down or none`}},
		{"boolean spelled yes", edit(base, "active_low: true", "active_low: yes"),
			[]string{`door 1 lock: active_low: want true or false, got "yes"`}},
		{"bad gain", edit(base, "data: GPIO27}", "data: GPIO27, gain: A32}"),
			[]string{`shelf 1 hx711: gain "A32": want A128, B32 or A64`}},
		{"ready_timeout out of range", edit(base, "data: GPIO27}", "data: GPIO27, ready_timeout: 1m}"),
			[]string{`shelf 1 hx711: ready_timeout 1m0s outside 10ms…10s`}},
		{"no display", edit(sub(base, "display:\n  fbdev: {device: /dev/fb0}\n", ""), "model: test cabinet", "model: test cabinet"),
			[]string{`display is required: st7789 or fbdev`}},
		{"two displays", edit(base, "  fbdev: {device: /dev/fb0}", "  st7789: {spi: SPI0.0, dc: GPIO25, width: 240, height: 320}\n  fbdev: {device: /dev/fb0}"),
			[]string{`display: st7789 and fbdev both given; a cabinet has one screen`}},
		{"empty display", edit(base, "display:\n  fbdev: {device: /dev/fb0}", "display: {}"),
			[]string{`display: want st7789 or fbdev`}},
		{"bad fbdev", edit(base, "/dev/fb0}", "/dev/sda}"),
			[]string{`display fbdev: device "/dev/sda": want /dev/fbN`}},
		{"st7789 on a port the header lacks", edit(base, "  fbdev: {device: /dev/fb0}", "  st7789: {spi: SPI2.0, dc: GPIO25, width: 240, height: 320}"),
			[]string{`display st7789: spi "SPI2.0": the rpi4 header has SPI0.0, SPI0.1, SPI1.0, SPI1.1 and SPI1.2`}},
		{"st7789 port syntax on generic", edit(sub(base, "host: rpi4", "host: generic"), "  fbdev: {device: /dev/fb0}", "  st7789: {spi: /dev/spidev0.0, dc: GPIO25, width: 240, height: 320}"),
			[]string{`display st7789: spi "/dev/spidev0.0": want SPI<bus>.<chip select>`}},
		{"st7789 dc on an SPI pin", edit(base, "  fbdev: {device: /dev/fb0}", "  st7789:\n    spi: SPI0.1\n    width: 240\n    height: 320\n    dc: GPIO10"),
			[]string{`display dc: pin GPIO10 already used by display SPI0.1 MOSI`}},
		{"st7789 claims SPI1 chip selects", edit(sub(base, "  fbdev: {device: /dev/fb0}", "  st7789: {spi: SPI1.1, dc: GPIO25, width: 240, height: 320}"),
			"{clock: GPIO17, data: GPIO27}", "{clock: GPIO22, data: GPIO17}"),
			[]string{`shelf 1 hx711 data: pin GPIO17 already used by display SPI1.1 CE1`}},
		{"st7789 geometry", sub(base, "  fbdev: {device: /dev/fb0}\n",
			"  st7789:\n    spi: SPI0.0\n    dc: GPIO25\n    width: 320 #<\n    height: 480 #<\n    rotation: 45 #<\n    x_offset: -1 #<\n    spi_speed: 100MHz #<\n"),
			[]string{`width 320: want 240`, `height 480: want 240 or 320`, `rotation 45: want 0, 90, 180 or 270`, `x_offset -1 outside 0…80`, `spi_speed 100MHz outside 1MHz…80MHz`}},
		{"st7789 without dc", edit(base, "  fbdev: {device: /dev/fb0}", "  st7789: {spi: SPI0.0, width: 240, height: 320}"),
			[]string{`display st7789: dc is required`}},
		{"bad frequency", edit(base, "  fbdev: {device: /dev/fb0}", "  st7789: {spi: SPI0.0, dc: GPIO25, width: 240, height: 320, spi_speed: fast}"),
			[]string{`display st7789: spi_speed: frequency "fast", want e.g. "32MHz"`}},
		{"bad thermometer id", base + "thermometer: {ds18b20: 28-XYZ} #<\n",
			[]string{`thermometer: ds18b20 "28-XYZ": want a w1 id like 28-0123456789ab`}},
		{"thermometer on a used pin", base + "thermometer: {ds18b20: auto, pin: GPIO6} #<\n",
			[]string{`thermometer 1-wire bus: pin GPIO6 already used by door 1 switch`}},
		{"indicator without led", base + "indicator: {buzzer: {pin: GPIO22}} #<\n",
			[]string{`indicator led is missing: an indicator needs its LED`}},
		{"number is not a number", sub(base, "  - number: 1\n    door: 1", "  - number: one #<\n    door: 1"),
			[]string{`shelf #1 in the list: number: want a whole number, got "one"`}},
		{"huge number", sub(base, "  - number: 1\n    door: 1", "  - number: 99999999999 #<\n    door: 1"),
			[]string{`shelf #1 in the list: number: want a whole number, got "99999999999"`}},
		{"list where a mapping belongs", edit(base, "    switch: {pin: GPIO6, closed_level: low, pull: up}", "    switch: [GPIO6]"),
			[]string{`door 1 switch: want a mapping of keys, got a list`}},
		{"mapping where a list belongs", "model: m\nhost: rpi4\ndisplay: {fbdev: {device: /dev/fb0}}\ndoors: {number: 1} #<\nshelves: [] #<\n",
			[]string{`board: doors: want a list (items starting with "- "), got a mapping`, `shelves: a cabinet needs at least one shelf`}},
		{"empty value", edit(base, "model: test cabinet", "model:"),
			[]string{`board: model: want a value, got nothing`}},
		{"repeated key", edit(base, "host: rpi4", "host: rpi4\nhost: rpi3"),
			[]string{`board: key "host" repeated (first on line 2)`}},
		{"several problems sorted by line", edit(edit(edit(base, "data: GPIO27}", "data: GPIO27, gain: X}"), "pin: GPIO6,", "pin: GPIO99,"), "host: rpi4", "host: rpi4\nbogus: 1"),
			[]string{`unknown key "bogus"`, `unknown pin "GPIO99"`, `gain "X"`}},
		{"anchor and alias", sub(edit(base, "    lock: {pin: GPIO5", "    lock: &l {pin: GPIO5"),
			"shelves:", "  - number: 2\n    lock: *l #<\n    switch: {pin: GPIO12, closed_level: low, pull: up}\nshelves:"),
			[]string{`anchor &l: anchors and aliases are not allowed`, `alias *l: anchors and aliases are not allowed`}},
		{"custom tag", edit(base, "model: test cabinet", "model: !secret cabinet"),
			[]string{`tag !secret: custom tags are not allowed`}},
		{"second document", base + "--- #<\nmodel: again\n",
			[]string{`a second YAML document: a board file holds one`}},
		{"YAML syntax error", base + "  - number: [2 #<\n",
			[]string{`YAML: did not find expected ',' or ']'`}},
		{"YAML unclosed flow list", "model: m\nhost: [rpi4 #<\ndoors: 1\n",
			[]string{`YAML: did not find expected ',' or ']'`}},
		{"YAML list item inside a mapping", "model: m\n- x #<\n",
			[]string{`YAML: did not find expected key`}},
		{"YAML indentation error", "model: m\n  host: rpi4 #<\n",
			[]string{`YAML: mapping values are not allowed in this context`}},
		{"YAML bad block", "model: m\nhost: rpi4\n- x #<\n",
			[]string{`YAML: did not find expected key`}},
		{"tab indentation", base + "\tbad: 1 #<\n",
			[]string{`YAML: found character that cannot start any token`}},
		{"not a mapping", "- a #<\n- b\n",
			[]string{`board: want a mapping of keys, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var marks []int
			for i, l := range strings.Split(tt.yaml, "\n") {
				if m := reMark.FindStringSubmatch(l); m != nil {
					for range len(m[1]) {
						marks = append(marks, i+1)
					}
				}
			}
			if len(marks) != len(tt.want) {
				t.Fatalf("test has %d markers for %d messages:\n%s", len(marks), len(tt.want), tt.yaml)
			}
			b, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s\nboard %+v", tt.yaml, b)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("%d problems reported, want %d:\n%v\nfile:\n%s", len(got), len(tt.want), err, tt.yaml)
			}
			for i, w := range tt.want {
				prefix := "t.yaml:" + strconv.Itoa(marks[i]) + ": "
				if !strings.HasPrefix(got[i], prefix) || !strings.Contains(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s…%s", i+1, got[i], prefix, w)
				}
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "t.yaml: empty file"},
		{"comments only", "# nothing\n", "t.yaml: empty file"},
		{"too large", "#" + strings.Repeat("x", MaxFileBytes), "t.yaml: board: file too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want %s…", err, tt.want)
			}
		})
	}
}

func TestValidateBoardBuiltInCode(t *testing.T) {
	const name = "rpi4-ambient-1door.yaml"
	b, err := LoadShipped(name)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := shipped.ReadFile("boards/" + name)
	lineOf := func(s string, nth int) int {
		for i, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, s) {
				if nth--; nth == 0 {
					return i + 1
				}
			}
		}
		t.Fatalf("%q not in %s", s, name)
		return 0
	}
	b.Shelves[2].Door = 4
	b.Doors[0].Switch.Pin = "GPIO27"
	err = b.Validate()
	want := []string{
		name + ":" + strconv.Itoa(lineOf("data: GPIO27", 1)) + ": shelf 1 hx711 data: pin GPIO27 already used by door 1 switch",
		name + ":" + strconv.Itoa(lineOf("door: 1", 3)) + ": shelf 3: door 4 does not exist (doors: 1)",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}

	var empty Board
	err = empty.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "board: model is required") {
		t.Fatalf("empty board: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 0 {
		t.Fatalf("errors.As *Error: %v", e)
	}
}
