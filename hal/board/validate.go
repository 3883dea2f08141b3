package board

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"github.com/bangfu/cabinet/hal/lock"
)

// Limits the validator enforces.
const (
	maxDoors   = 32
	maxShelves = 128
	maxModel   = 200
)

var (
	reChipLine = regexp.MustCompile(`^([A-Za-z0-9_.:-]{1,64})/([A-Za-z0-9_-]{1,64})$`)
	reSPI      = regexp.MustCompile(`^SPI([0-9])\.([0-9])$`)
	reFB       = regexp.MustCompile(`^/dev/fb[0-9]{1,2}$`)
	reW1       = regexp.MustCompile(`^28-[0-9a-f]{12}$`)
)

// gpioNumber parses "GPIO<n>" without leading zeros (gpioreg's spelling).
func gpioNumber(s string) (int, bool) {
	digits, ok := strings.CutPrefix(s, "GPIO")
	if !ok || digits == "" || len(digits) > 4 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// checkPin reports why name is not a pin of host h, or "" if it is.
func checkPin(h Host, name string) string {
	switch {
	case h.RaspberryPi():
		if n, ok := gpioNumber(name); ok && n <= 27 {
			return ""
		}
		return fmt.Sprintf("unknown pin %q: on %s use GPIO0…GPIO27 (Broadcom numbers, not header pin numbers)", name, h)
	case h == HostGeneric:
		if n, ok := gpioNumber(name); ok && n < 1024 {
			return ""
		}
		if m := reChipLine.FindStringSubmatch(name); m != nil {
			if n, err := strconv.Atoi(m[2]); err != nil || n < 1024 {
				return ""
			}
		}
		return fmt.Sprintf("unknown pin %q: on generic use GPIO<n> (n < 1024) or <chip>/<line> such as gpiochip0/17", name)
	}
	return "" // an unknown host is reported once, not per pin
}

// piSPI returns the header pins an SPI port claims on a Raspberry Pi, or
// ok=false for a port the header does not have.
func piSPI(port string) (pins map[string]string, ok bool) {
	m := reSPI.FindStringSubmatch(port)
	if m == nil {
		return nil, false
	}
	bus, cs := m[1], int(m[2][0]-'0')
	switch {
	case bus == "0" && cs <= 1:
		// dtparam=spi=on claims both chip selects whichever one is used.
		return map[string]string{"GPIO9": "MISO", "GPIO10": "MOSI", "GPIO11": "SCLK", "GPIO8": "CE0", "GPIO7": "CE1"}, true
	case bus == "1" && cs <= 2:
		pins = map[string]string{"GPIO19": "MISO", "GPIO20": "MOSI", "GPIO21": "SCLK"}
		for i, p := range []string{"GPIO18", "GPIO17", "GPIO16"}[:cs+1] {
			pins[p] = fmt.Sprintf("CE%d", i)
		}
		return pins, true
	}
	return nil, false
}

// use is one claim on a pin.
type use struct {
	pin   string
	use   string // "door 1 lock"
	path  string // where it is written
	clock int    // index of the shelf whose hx711 clock this is, else -1
	cell  Cell   // with clock: which of the shelf's amplifiers
}

// uses lists every pin claimed, in the order they are written.
func (b *Board) uses() []use {
	var out []use
	add := func(pin, what, path string) {
		if pin != "" {
			out = append(out, use{pin: pin, use: what, path: path, clock: -1})
		}
	}
	for _, p := range slices.Sorted(maps.Keys(b.Reserved)) {
		add(p, "reserved ("+b.Reserved[p]+")", "reserved."+p)
	}
	for i, d := range b.Doors {
		p := fmt.Sprintf("doors[%d]", i)
		add(d.Lock.Pin, fmt.Sprintf("door %d lock", d.Number), p+".lock.pin")
		if d.Lock.Feedback != nil {
			add(d.Lock.Feedback.Pin, fmt.Sprintf("door %d lock feedback", d.Number), p+".lock.feedback.pin")
		}
		add(d.Switch.Pin, fmt.Sprintf("door %d switch", d.Number), p+".switch.pin")
	}
	for i, s := range b.Shelves {
		for _, c := range []Cell{CellLeft, CellRight} {
			h := s.cell(c)
			if h == nil {
				continue
			}
			p := fmt.Sprintf("shelves[%d].%s", i, c.key())
			if h.Clock != "" {
				out = append(out, use{pin: h.Clock, use: fmt.Sprintf("shelf %d %s clock", s.Number, c.key()), path: p + ".clock", clock: i, cell: c})
			}
			add(h.Data, fmt.Sprintf("shelf %d %s data", s.Number, c.key()), p+".data")
		}
	}
	if st := b.Display.ST7789; st != nil {
		if b.Host.RaspberryPi() {
			if pins, ok := piSPI(st.SPI); ok {
				for _, pin := range slices.Sorted(maps.Keys(pins)) {
					add(pin, fmt.Sprintf("display %s %s", st.SPI, pins[pin]), "display.st7789.spi")
				}
			}
		}
		add(st.DC, "display dc", "display.st7789.dc")
		add(st.RST, "display rst", "display.st7789.rst")
		if st.Backlight != nil {
			add(st.Backlight.Pin, "display backlight", "display.st7789.backlight.pin")
		}
	}
	if t := b.Thermometer; t != nil {
		add(t.Pin, "thermometer 1-wire bus", "thermometer.pin")
	}
	if ind := b.Indicator; ind != nil {
		add(ind.LED.Pin, "indicator led", "indicator.led.pin")
		if ind.Buzzer != nil {
			add(ind.Buzzer.Pin, "indicator buzzer", "indicator.buzzer.pin")
		}
	}
	return out
}

// validator checks a Board's values; the decoder has already checked the
// file's shape and syntax.
type validator struct {
	b      *Board
	failed map[string]bool // paths the decoder already reported
	errs   []*Error
}

func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// line is the line of path, or of its nearest written ancestor.
func (v *validator) line(path string) int {
	for {
		if l, ok := v.b.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parent(path)
	}
}

// written reports whether path appears in the file (always true for a
// Board built in code, so its messages name the field).
func (v *validator) written(path string) bool {
	if v.b.lines == nil {
		return true
	}
	_, ok := v.b.lines[path]
	return ok
}

func (v *validator) errorf(path, format string, a ...any) {
	for p := path; ; p = parent(p) {
		if v.failed[p] {
			return // the decoder said why already
		}
		if p == "" {
			break
		}
	}
	v.errs = append(v.errs, &Error{File: v.b.file, Line: v.line(path), Msg: fmt.Sprintf(format, a...)})
}

// between checks an optional duration: 0 or within lo…hi.
func (v *validator) between(path, what string, d, lo, hi time.Duration) {
	if d != 0 && (d < lo || d > hi) {
		v.errorf(path, "%s %v outside %v…%v", what, d, lo, hi)
	}
}

func (v *validator) pin(path, what, pin string) {
	if pin == "" {
		return
	}
	if msg := checkPin(v.b.Host, pin); msg != "" {
		v.errorf(path, "%s: %s", what, msg)
	}
}

func (v *validator) pull(path, what string, p gpio.Pull) {
	switch p {
	case gpio.PullUp, gpio.PullDown, gpio.Float:
	case gpio.PullNoChange:
		v.errorf(path, "%s: pull is required: up, down or none (for an external resistor)", what)
	default:
		v.errorf(path, "%s: pull %v: want up, down or none", what, p)
	}
}

// need reports a required pin that is empty: "is missing" when its whole
// block is absent from the file.
func (v *validator) need(block, what, pin, why string) {
	if pin != "" {
		return
	}
	if v.written(block) {
		v.errorf(block+".pin", "%s: pin is required", what)
		return
	}
	v.errorf(block, "%s is missing: %s", what, why)
}

func (v *validator) run() {
	b := v.b
	switch {
	case strings.TrimSpace(b.Model) == "":
		v.errorf("model", "model is required: name the cabinet model")
	case len(b.Model) > maxModel:
		v.errorf("model", "model is longer than %d characters", maxModel)
	case strings.IndexFunc(b.Model, unicode.IsControl) >= 0:
		v.errorf("model", "model has control characters")
	}
	switch b.Host {
	case HostRPi3, HostRPi4, HostRPi5, HostGeneric:
	case "":
		v.errorf("host", "host is required: rpi3, rpi4, rpi5 or generic")
	default:
		v.errorf("host", "host %q: want rpi3, rpi4, rpi5 or generic", b.Host)
	}
	switch b.GPIOStack {
	case StackCdev, StackSysfs, StackAuto:
	default:
		v.errorf("gpio_stack", "gpio_stack %q: want cdev, sysfs or auto", b.GPIOStack)
	}
	for _, p := range slices.Sorted(maps.Keys(b.Reserved)) {
		path := "reserved." + p
		v.pin(path, "reserved", p)
		if strings.TrimSpace(b.Reserved[p]) == "" {
			v.errorf(path, "reserved %s: say what uses it", p)
		}
	}
	v.doors()
	v.shelves()
	v.display()
	if t := b.Thermometer; t != nil {
		if t.DS18B20 != "auto" && !reW1.MatchString(t.DS18B20) {
			v.errorf("thermometer.ds18b20", "thermometer: ds18b20 %q: want a w1 id like 28-0123456789ab (lower-case hex) or auto", t.DS18B20)
		}
		v.pin("thermometer.pin", "thermometer", t.Pin)
	}
	if ind := b.Indicator; ind != nil {
		v.need("indicator.led", "indicator led", ind.LED.Pin, "an indicator needs its LED")
		v.pin("indicator.led.pin", "indicator led", ind.LED.Pin)
		if ind.Buzzer != nil {
			v.need("indicator.buzzer", "indicator buzzer", ind.Buzzer.Pin, "")
			v.pin("indicator.buzzer.pin", "indicator buzzer", ind.Buzzer.Pin)
		}
	}
	v.pinsOnce()
}

func (v *validator) doors() {
	b := v.b
	switch {
	case len(b.Doors) == 0:
		v.errorf("doors", "doors: a cabinet needs at least one door")
	case len(b.Doors) > maxDoors:
		v.errorf("doors", "doors: %d doors, at most %d", len(b.Doors), maxDoors)
	}
	first := map[int]string{}
	for i, d := range b.Doors {
		p := fmt.Sprintf("doors[%d]", i)
		what := fmt.Sprintf("door %d", d.Number)
		if d.Number < 1 {
			what = fmt.Sprintf("door #%d in the list", i+1)
			v.errorf(p+".number", "%s: number is required, 1 or more", what)
		} else if prev, dup := first[d.Number]; dup {
			v.errorf(p+".number", "%s: number repeated (first on line %d)", what, v.line(prev))
		} else {
			first[d.Number] = p
		}

		l := d.Lock
		lw := what + " lock"
		v.need(p+".lock", lw, l.Pin, "every door needs a lock")
		if v.written(p + ".lock") {
			v.lock(p+".lock", lw, l)
		}

		s := d.Switch
		sw := what + " switch"
		v.need(p+".switch", sw, s.Pin, "every door needs its reed switch")
		if v.written(p + ".switch") {
			v.pin(p+".switch.pin", sw, s.Pin)
			v.pull(p+".switch.pull", sw, s.Pull)
			v.between(p+".switch.debounce", sw+": debounce", s.Debounce, time.Millisecond, time.Second)
			v.between(p+".switch.poll", sw+": poll", s.Poll, time.Millisecond, time.Second)
		}
	}
}

func (v *validator) lock(p, lw string, l Lock) {
	v.pin(p+".pin", lw, l.Pin)
	switch l.Mode {
	case LockHold:
		if l.PulseTime != 0 {
			v.errorf(p+".pulse_time", "%s: pulse_time is only for mode pulse", lw)
		}
	case LockPulse:
		if l.PulseTime == 0 {
			v.errorf(p+".mode", "%s: mode pulse needs pulse_time", lw)
		}
		v.between(p+".pulse_time", lw+": pulse_time", l.PulseTime, 10*time.Millisecond, lock.MaxPulseTime)
	default:
		v.errorf(p+".mode", "%s: mode %q: want hold or pulse", lw, l.Mode)
	}
	if l.Settle < 0 || l.Settle > 10*time.Second {
		v.errorf(p+".settle", "%s: settle %v outside 0…10s", lw, l.Settle)
	}
	if fb := l.Feedback; fb != nil {
		fw := lw + " feedback"
		v.need(p+".feedback", fw, fb.Pin, "")
		v.pin(p+".feedback.pin", fw, fb.Pin)
		v.pull(p+".feedback.pull", fw, fb.Pull)
	}
}

func (v *validator) shelves() {
	b := v.b
	switch {
	case len(b.Shelves) == 0:
		v.errorf("shelves", "shelves: a cabinet needs at least one shelf")
	case len(b.Shelves) > maxShelves:
		v.errorf("shelves", "shelves: %d shelves, at most %d", len(b.Shelves), maxShelves)
	}
	var doors []int
	unnumbered := false // a door without a number may be the one a shelf means
	for _, d := range b.Doors {
		if d.Number < 1 {
			unnumbered = true
			continue
		}
		doors = append(doors, d.Number)
	}
	slices.Sort(doors)
	doors = slices.Compact(doors)
	first := map[int]string{}
	for i, s := range b.Shelves {
		p := fmt.Sprintf("shelves[%d]", i)
		what := fmt.Sprintf("shelf %d", s.Number)
		if s.Number < 1 {
			what = fmt.Sprintf("shelf #%d in the list", i+1)
			v.errorf(p+".number", "%s: number is required, 1 or more", what)
		} else if prev, dup := first[s.Number]; dup {
			v.errorf(p+".number", "%s: number repeated (first on line %d)", what, v.line(prev))
		} else {
			first[s.Number] = p
		}
		switch {
		case s.Door == 0:
			v.errorf(p+".door", "%s: door is required: the door in front of it", what)
		case !slices.Contains(doors, s.Door) && !unnumbered:
			v.errorf(p+".door", "%s: door %d does not exist (doors: %s)", what, s.Door, intList(doors))
		}
		if s.Right != nil && s.HX711.Clock == "" && s.HX711.Data == "" && !v.written(p+".hx711") {
			v.errorf(p+".hx711_right", "%s: hx711 is missing: a shelf with hx711_right needs hx711 for its left cell", what)
			continue
		}
		if !v.hx711(p, what, CellLeft, &s.HX711) {
			continue
		}
		if s.Right != nil {
			v.hx711(p, what, CellRight, s.Right)
		}
	}
}

// hx711 checks shelf what's amplifier for cell c, written under p; false
// when the left cell's block is missing altogether (already reported).
func (v *validator) hx711(p, what string, c Cell, h *HX711) bool {
	hw := what + " " + c.key()
	p += "." + c.key()
	if c == CellLeft && h.Clock == "" && h.Data == "" && !v.written(p) {
		v.errorf(parent(p), "%s: hx711 is missing: every shelf needs a scale", what)
		return false
	}
	if h.Clock == "" {
		v.errorf(p, "%s: clock is required", hw)
	}
	if h.Data == "" {
		v.errorf(p, "%s: data is required", hw)
	}
	v.pin(p+".clock", hw+" clock", h.Clock)
	v.pin(p+".data", hw+" data", h.Data)
	switch h.Gain {
	case GainA128, GainB32, GainA64:
	default:
		v.errorf(p+".gain", "%s: gain %q: want A128, B32 or A64", hw, h.Gain)
	}
	v.between(p+".ready_timeout", hw+": ready_timeout", h.ReadyTimeout, 10*time.Millisecond, 10*time.Second)
	return true
}

func intList(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func (v *validator) display() {
	d := v.b.Display
	switch {
	case d.ST7789 == nil && d.FBDev == nil:
		v.errorf("display", "display is required: st7789 or fbdev")
	case d.ST7789 != nil && d.FBDev != nil:
		v.errorf("display.fbdev", "display: st7789 and fbdev both given; a cabinet has one screen")
	}
	if st := d.ST7789; st != nil {
		const p = "display.st7789"
		switch {
		case st.SPI == "":
			v.errorf(p, "display st7789: spi is required, e.g. SPI0.0")
		case v.b.Host.RaspberryPi():
			if _, ok := piSPI(st.SPI); !ok {
				v.errorf(p+".spi", "display st7789: spi %q: the %s header has SPI0.0, SPI0.1, SPI1.0, SPI1.1 and SPI1.2", st.SPI, v.b.Host)
			}
		case !reSPI.MatchString(st.SPI):
			v.errorf(p+".spi", "display st7789: spi %q: want SPI<bus>.<chip select>, e.g. SPI0.0", st.SPI)
		}
		if st.DC == "" {
			v.errorf(p, "display st7789: dc is required")
		}
		v.pin(p+".dc", "display dc", st.DC)
		v.pin(p+".rst", "display rst", st.RST)
		if bl := st.Backlight; bl != nil {
			v.need(p+".backlight", "display backlight", bl.Pin, "")
			v.pin(p+".backlight.pin", "display backlight", bl.Pin)
		}
		if st.Width != 240 {
			v.errorf(p+".width", "display st7789: width %d: want 240", st.Width)
		}
		if st.Height != 240 && st.Height != 320 {
			v.errorf(p+".height", "display st7789: height %d: want 240 or 320", st.Height)
		}
		switch st.Rotation {
		case 0, 90, 180, 270:
		default:
			v.errorf(p+".rotation", "display st7789: rotation %d: want 0, 90, 180 or 270", st.Rotation)
		}
		if st.XOffset < 0 || st.XOffset > 80 {
			v.errorf(p+".x_offset", "display st7789: x_offset %d outside 0…80", st.XOffset)
		}
		if st.YOffset < 0 || st.YOffset > 80 {
			v.errorf(p+".y_offset", "display st7789: y_offset %d outside 0…80", st.YOffset)
		}
		if st.SPISpeed != 0 && (st.SPISpeed < physic.MegaHertz || st.SPISpeed > 80*physic.MegaHertz) {
			v.errorf(p+".spi_speed", "display st7789: spi_speed %v outside 1MHz…80MHz", st.SPISpeed)
		}
	}
	if fb := d.FBDev; fb != nil && !reFB.MatchString(fb.Device) {
		v.errorf("display.fbdev.device", "display fbdev: device %q: want /dev/fbN", fb.Device)
	}
}

// pinsOnce checks that no pin is claimed twice, except one HX711 clock line
// that every shelf on it declares shared.
func (v *validator) pinsOnce() {
	us := v.b.uses()
	sort.SliceStable(us, func(i, j int) bool { return v.line(us[i].path) < v.line(us[j].path) })
	owner := map[string]use{}
	clash := map[string]bool{}
	for _, u := range us {
		prev, taken := owner[u.pin]
		if !taken {
			owner[u.pin] = u
			continue
		}
		if u.clock >= 0 && prev.clock >= 0 {
			sa, sb := v.b.Shelves[prev.clock], v.b.Shelves[u.clock]
			a, b := sa.cell(prev.cell), sb.cell(u.cell)
			if !a.SharedClock || !b.SharedClock {
				clash[u.pin] = true
				v.errorf(u.path, "%s: pin %s already used by %s (set shared_clock: true on every hx711 that shares one clock line)",
					u.use, u.pin, prev.use)
				continue
			}
			if a.Gain != b.Gain {
				v.errorf(parent(u.path)+".gain", "shelf %d %s: gain %s differs from shelf %d %s's %s on shared clock %s (one clock line sets one gain)",
					sb.Number, u.cell.key(), b.Gain, sa.Number, prev.cell.key(), a.Gain, u.pin)
			}
			continue
		}
		clash[u.pin] = true
		v.errorf(u.path, "%s: pin %s already used by %s", u.use, u.pin, prev.use)
	}
	onClock := map[string]int{}
	for _, s := range v.b.Shelves {
		for _, c := range []Cell{CellLeft, CellRight} {
			if h := s.cell(c); h != nil {
				onClock[h.Clock]++
			}
		}
	}
	for i, s := range v.b.Shelves {
		for _, cl := range []Cell{CellLeft, CellRight} {
			h := s.cell(cl)
			if h == nil {
				continue
			}
			if c := h.Clock; h.SharedClock && c != "" && onClock[c] == 1 && !clash[c] {
				v.errorf(fmt.Sprintf("shelves[%d].%s.shared_clock", i, cl.key()),
					"shelf %d %s: shared_clock is true but no other hx711 uses clock %s", s.Number, cl.key(), c)
			}
		}
	}
}
