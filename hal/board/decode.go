package board

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// Load reads and validates the board file at path. Errors name path.
func Load(path string) (*Board, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("board: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("board: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a board file's contents; name is used in
// error messages. It returns every problem found, joined and sorted by line.
func Parse(name string, data []byte) (*Board, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", name, ErrTooLarge, MaxFileBytes)
	}
	d := &decoder{file: name, lines: map[string]int{}, failed: map[string]bool{}}
	root, err := d.parse(data)
	if err != nil {
		return nil, err
	}
	b := &Board{file: name, lines: d.lines}
	d.board(root, b)
	v := &validator{b: b, failed: d.failed}
	v.run()
	errs := append(d.errs, v.errs...)
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return b, nil
}

// Validate checks b again: what Parse accepted passes, and a Board built or
// changed in code is checked by the same rules. Lines are reported when b
// came from Parse.
func (b *Board) Validate() error {
	v := &validator{b: b}
	v.run()
	if len(v.errs) > 0 {
		return joinSorted(v.errs)
	}
	return nil
}

func joinSorted(errs []*Error) error {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// decoder turns the YAML tree into a Board, recording the line of every key
// under a path ("doors[0].lock.pin") for the validator's messages.
type decoder struct {
	file   string
	lines  map[string]int
	failed map[string]bool // paths whose value could not be decoded
	errs   []*Error
}

func (d *decoder) errorf(line int, format string, a ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, a...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the root mapping of the only document in data.
func (d *decoder) parse(data []byte) (root *yaml.Node, err error) {
	fail := func(line int, format string, a ...any) error {
		return &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	// yaml.v3 has panicked on hostile input before (CVE-2022-28948); a
	// board file comes from a technician's laptop, so a parser panic is
	// reported as a bad file rather than crashing the tool.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fail(0, "yaml parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(0, "empty file")
		}
		return nil, yamlError(d.file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, fail(next.Line, "a second YAML document: a board file holds one")
	case !errors.Is(err, io.EOF):
		return nil, yamlError(d.file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fail(doc.Line, "not a YAML document")
	}
	// Anchors and aliases are refused: a board file is short, and a file
	// where one pin block stands for several is hard to rewire from.
	var walk func(n *yaml.Node)
	bad := false
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode {
			d.errorf(n.Line, "alias *%s: anchors and aliases are not allowed; write each value out", n.Value)
			bad = true
			return
		}
		if n.Anchor != "" {
			d.errorf(n.Line, "anchor &%s: anchors and aliases are not allowed; write each value out", n.Anchor)
			bad = true
		}
		if n.Tag != "" && n.Style&yaml.TaggedStyle != 0 && !strings.HasPrefix(n.Tag, "!!") {
			d.errorf(n.Line, "tag %s: custom tags are not allowed", n.Tag)
			bad = true
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc.Content[0])
	if bad {
		return nil, joinSorted(d.errs)
	}
	return doc.Content[0], nil
}

// parserProblems are yaml.v3's parser (not scanner) errors. yaml.v3 reports
// their line 0-based, one less than the line in an editor, and omits it on
// the first line; yamlError adds the one back.
var parserProblems = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"did not find expected node content", "did not find expected '-' indicator",
	"did not find expected key", "did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found undefined tag handle", "found duplicate %", "found incompatible YAML document",
}

// yamlError turns a yaml.v3 syntax error into an Error with its line.
func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1]) // the pattern allows only digits
		msg = m[2]
	}
	for _, p := range parserProblems {
		if strings.HasPrefix(msg, p) {
			line++
			break
		}
	}
	return &Error{File: file, Line: line, Msg: "YAML: " + msg}
}

// fields is one YAML mapping's keys, checked against the keys allowed there.
type fields struct {
	d    *decoder
	path string // "" for the root
	what string // "door 1 lock", for messages
	line int
	m    map[string][2]*yaml.Node // key → key node, value node
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// hints answer the commonest wrong keys.
var hints = map[string]string{
	"soc":   "host",
	"sw":    "switch",
	"reed":  "switch",
	"scale": "hx711",
	// A two-cell shelf's cells are hx711 (left) and hx711_right.
	"hx711_left":  "hx711",
	"right":       "hx711_right",
	"hx711_2":     "hx711_right",
	"right_hx711": "hx711_right",
	"sck":         "clock",
	"dout":        "data",
	"bl":          "backlight",
	"reset":       "rst",
	"spi_hz":      "spi_speed",
	// Spellings in early drafts of docs/hardware.md.
	"clock_shared": "shared_clock",
	"id":           "ds18b20",
}

// hx711Fields decodes the amplifier under key (hx711 or hx711_right) of a
// shelf; nil when the key is absent or not a mapping.
func hx711Fields(f *fields, key string) *HX711 {
	h := f.sub(key, f.what+" "+key, "clock", "data", "gain", "shared_clock", "ready_timeout")
	if h == nil {
		return nil
	}
	out := &HX711{
		Clock:        h.str("clock", false),
		Data:         h.str("data", false),
		Gain:         GainA128,
		SharedClock:  h.boolean("shared_clock", false, ""),
		ReadyTimeout: h.duration("ready_timeout"),
	}
	if h.has("gain") {
		out.Gain = Gain(h.str("gain", false))
	}
	return out
}

// mapping checks that n is a mapping with only the allowed keys, each once.
func (d *decoder) mapping(n *yaml.Node, path, what string, allowed ...string) *fields {
	f := &fields{d: d, path: path, what: what, line: n.Line, m: map[string][2]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, "%s: want a mapping of keys, got %s", what, describe(n))
		d.failed[path] = true
		return f
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.errorf(k.Line, "%s: key %s is not a name", what, describe(k))
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			msg := fmt.Sprintf("%s: unknown key %q (allowed: %s)", what, k.Value, strings.Join(allowed, ", "))
			if h, ok := hints[k.Value]; ok && h != k.Value && slices.Contains(allowed, h) {
				msg = fmt.Sprintf("%s: unknown key %q; did you mean %q?", what, k.Value, h)
			}
			d.errorf(k.Line, "%s", msg)
			continue
		}
		if prev, dup := f.m[k.Value]; dup {
			d.errorf(k.Line, "%s: key %q repeated (first on line %d)", what, k.Value, prev[0].Line)
			continue
		}
		f.m[k.Value] = [2]*yaml.Node{k, v}
		d.lines[join(path, k.Value)] = k.Line
	}
	return f
}

// describe names a node's kind for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func (f *fields) has(key string) bool { _, ok := f.m[key]; return ok }

// get returns key's value node; missing required keys are reported.
func (f *fields) get(key string, required bool, why string) *yaml.Node {
	kv, ok := f.m[key]
	if !ok {
		if required && !f.d.failed[f.path] {
			f.d.errorf(f.line, "%s: %s is required%s", f.what, key, why)
			f.d.failed[join(f.path, key)] = true
		}
		return nil
	}
	return kv[1]
}

func (f *fields) bad(key string, n *yaml.Node, format string, a ...any) {
	f.d.errorf(n.Line, "%s: %s: %s", f.what, key, fmt.Sprintf(format, a...))
	f.d.failed[join(f.path, key)] = true
}

// scalar returns key's scalar value node, or nil after reporting.
func (f *fields) scalar(key string, required bool, why string) *yaml.Node {
	n := f.get(key, required, why)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		f.bad(key, n, "want a value, got %s", describe(n))
		return nil
	}
	return n
}

func (f *fields) str(key string, required bool) string {
	n := f.scalar(key, required, "")
	if n == nil {
		return ""
	}
	return n.Value
}

func (f *fields) boolean(key string, required bool, why string) bool {
	n := f.scalar(key, required, why)
	if n == nil {
		return false
	}
	if n.ShortTag() != "!!bool" {
		f.bad(key, n, "want true or false, got %q", n.Value)
		return false
	}
	v, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		f.bad(key, n, "want true or false, got %q", n.Value)
	}
	return v
}

func (f *fields) integer(key string) int {
	n := f.scalar(key, false, "")
	if n == nil {
		return 0
	}
	// 32 bits: the same file must decode alike on a 32-bit ARM board.
	v, err := strconv.ParseInt(n.Value, 10, 32)
	if n.ShortTag() != "!!int" || err != nil {
		f.bad(key, n, "want a whole number, got %q", n.Value)
		return 0
	}
	return int(v)
}

func (f *fields) duration(key string) time.Duration {
	n := f.scalar(key, false, "")
	if n == nil {
		return 0
	}
	if n.ShortTag() != "!!str" {
		f.bad(key, n, "duration %q needs a unit, e.g. \"300ms\"", n.Value)
		return 0
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		f.bad(key, n, "bad duration %q, want e.g. \"300ms\"", n.Value)
		return 0
	}
	return v
}

func (f *fields) level(key string, why string) gpio.Level {
	n := f.scalar(key, true, why)
	if n == nil {
		return gpio.Low
	}
	switch n.Value {
	case "high":
		return gpio.High
	case "low":
		return gpio.Low
	}
	f.bad(key, n, "level %q, want high or low", n.Value)
	return gpio.Low
}

func (f *fields) pull(key string) gpio.Pull {
	n := f.scalar(key, false, "")
	if n == nil {
		return gpio.PullNoChange // reported as missing by the validator
	}
	switch n.Value {
	case "up":
		return gpio.PullUp
	case "down":
		return gpio.PullDown
	case "none":
		return gpio.Float
	}
	f.bad(key, n, "pull %q, want up, down or none", n.Value)
	return gpio.PullNoChange
}

func (f *fields) frequency(key string) physic.Frequency {
	n := f.scalar(key, false, "")
	if n == nil {
		return 0
	}
	var v physic.Frequency
	if n.ShortTag() != "!!str" || v.Set(n.Value) != nil {
		f.bad(key, n, "frequency %q, want e.g. \"32MHz\"", n.Value)
		return 0
	}
	return v
}

// sub returns key's mapping, or nil when absent or not a mapping.
func (f *fields) sub(key, what string, allowed ...string) *fields {
	n := f.get(key, false, "")
	if n == nil {
		return nil
	}
	s := f.d.mapping(n, join(f.path, key), what, allowed...)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	return s
}

// list returns key's items, or nil after reporting a non-list.
func (f *fields) list(key string) []*yaml.Node {
	n := f.get(key, false, "")
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		f.bad(key, n, "want a list (items starting with \"- \"), got %s", describe(n))
		return nil
	}
	return n.Content
}

// label is "door 2" for a list item whose number can be read, else "door #2
// in the list" from its position.
func label(kind string, n *yaml.Node, i int) string {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			if k.Value != "number" || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
				continue
			}
			if num, err := strconv.ParseInt(v.Value, 10, 32); err == nil {
				return fmt.Sprintf("%s %d", kind, num)
			}
		}
	}
	return fmt.Sprintf("%s #%d in the list", kind, i+1)
}

func (d *decoder) board(root *yaml.Node, b *Board) {
	top := d.mapping(root, "", "board", "model", "host", "gpio_stack", "reserved",
		"doors", "shelves", "display", "thermometer", "indicator")
	b.Model = top.str("model", false)
	b.Host = Host(top.str("host", false))
	b.GPIOStack = StackAuto
	if top.has("gpio_stack") {
		b.GPIOStack = GPIOStack(top.str("gpio_stack", false))
	}
	d.lines[""] = root.Line

	if n := top.get("reserved", false, ""); n != nil {
		b.Reserved = map[string]string{}
		r := d.mapping(n, "reserved", "reserved", reservedKeys(n)...)
		for k := range r.m {
			b.Reserved[k] = r.str(k, false)
		}
	}

	for i, n := range top.list("doors") {
		path := fmt.Sprintf("doors[%d]", i)
		d.lines[path] = n.Line
		f := d.mapping(n, path, label("door", n, i), "number", "lock", "switch")
		door := Door{Number: f.integer("number")}
		if l := f.sub("lock", f.what+" lock", "pin", "active_low", "fail_safe", "mode", "pulse_time", "settle", "feedback"); l != nil {
			door.Lock = Lock{
				Pin:       l.str("pin", false),
				ActiveLow: l.boolean("active_low", true, ": say whether the relay closes on a low level"),
				FailSafe:  l.boolean("fail_safe", true, ": false for a fail-secure bolt (locked unpowered), true for a maglock"),
				Mode:      LockHold,
				PulseTime: l.duration("pulse_time"),
				Settle:    l.duration("settle"),
			}
			if l.has("mode") {
				door.Lock.Mode = LockMode(l.str("mode", false))
			}
			if fb := l.sub("feedback", f.what+" lock feedback", "pin", "locked_level", "pull"); fb != nil {
				door.Lock.Feedback = &Feedback{
					Pin:         fb.str("pin", false),
					LockedLevel: fb.level("locked_level", ": the level the sensor reads while the bolt is out"),
					Pull:        fb.pull("pull"),
				}
			}
		}
		if s := f.sub("switch", f.what+" switch", "pin", "closed_level", "pull", "debounce", "poll"); s != nil {
			door.Switch = Switch{
				Pin:         s.str("pin", false),
				ClosedLevel: s.level("closed_level", ": the level the switch reads while the door is shut"),
				Pull:        s.pull("pull"),
				Debounce:    s.duration("debounce"),
				Poll:        s.duration("poll"),
			}
		}
		b.Doors = append(b.Doors, door)
	}

	for i, n := range top.list("shelves") {
		path := fmt.Sprintf("shelves[%d]", i)
		d.lines[path] = n.Line
		f := d.mapping(n, path, label("shelf", n, i), "number", "door", "hx711", "hx711_right")
		shelf := Shelf{Number: f.integer("number"), Door: f.integer("door")}
		if h := hx711Fields(f, "hx711"); h != nil {
			shelf.HX711 = *h
		}
		shelf.Right = hx711Fields(f, "hx711_right")
		b.Shelves = append(b.Shelves, shelf)
	}

	if disp := top.sub("display", "display", "st7789", "fbdev"); disp != nil {
		if s := disp.sub("st7789", "display st7789", "spi", "dc", "rst", "backlight", "width", "height",
			"rotation", "x_offset", "y_offset", "invert", "spi_speed"); s != nil {
			st := &ST7789{
				SPI:      s.str("spi", false),
				DC:       s.str("dc", false),
				RST:      s.str("rst", false),
				Width:    s.integer("width"),
				Height:   s.integer("height"),
				Rotation: s.integer("rotation"),
				XOffset:  s.integer("x_offset"),
				YOffset:  s.integer("y_offset"),
				Invert:   s.boolean("invert", false, ""),
				SPISpeed: s.frequency("spi_speed"),
			}
			st.Backlight = output(s, "backlight", "display backlight")
			b.Display.ST7789 = st
		}
		if fb := disp.sub("fbdev", "display fbdev", "device"); fb != nil {
			b.Display.FBDev = &FBDev{Device: fb.str("device", false)}
		}
		if !disp.has("st7789") && !disp.has("fbdev") && !d.failed["display"] {
			d.errorf(disp.line, "display: want st7789 or fbdev")
			d.failed["display"] = true
		}
	}

	if th := top.sub("thermometer", "thermometer", "ds18b20", "pin"); th != nil {
		b.Thermometer = &Thermometer{DS18B20: th.str("ds18b20", false), Pin: th.str("pin", false)}
	}
	if ind := top.sub("indicator", "indicator", "led", "buzzer"); ind != nil {
		b.Indicator = &Indicator{Buzzer: output(ind, "buzzer", "indicator buzzer")}
		if led := output(ind, "led", "indicator led"); led != nil {
			b.Indicator.LED = *led
		}
	}
}

// output decodes {pin, active_low}.
func output(f *fields, key, what string) *Output {
	o := f.sub(key, what, "pin", "active_low")
	if o == nil {
		return nil
	}
	return &Output{Pin: o.str("pin", false), ActiveLow: o.boolean("active_low", false, "")}
}

// reservedKeys allows every key of the reserved mapping: its keys are pin
// names, checked by the validator.
func reservedKeys(n *yaml.Node) []string {
	var keys []string
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
		}
	}
	return keys
}
