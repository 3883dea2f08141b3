package st7789

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/screen"
)

// rig is one panel's surroundings: an SPI port (a spitest fake) wrapped so
// that every transfer is logged with the DC level it went out at, recording
// pins for DC, RST and BL, and a recording Sleep. The log reads like the
// datasheet: "C 2A" is a command byte, "D 00 00 00 EF" its parameters,
// "D [4096 bytes]" pixel data, "rst Low" a pin change, "sleep 120ms" a wait.
type rig struct {
	mu     sync.Mutex
	events []string
	xfers  []xfer // every transfer with the DC level it went out at
	port   spi.Port
	dc     *recPin
	rst    *recPin
	bl     *recPin
	failTx int // 1-based transfer number that fails with errBus; 0 never
	maxTx  int // what the connection reports as conn.Limits.MaxTxSize
	mode   spi.Mode
	hz     physic.Frequency
	ntx    int
}

type xfer struct {
	dc gpio.Level
	w  []byte
}

var errBus = errors.New("test: SPI bus fault")

func newRig(port spi.Port) *rig {
	r := &rig{port: port}
	r.dc = &recPin{name: "dc", r: r, quiet: true}
	r.rst = &recPin{name: "rst", r: r}
	r.bl = &recPin{name: "bl", r: r}
	return r
}

func (r *rig) log(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *rig) sleep(d time.Duration) { r.log("sleep " + d.String()) }

// take returns the events so far and forgets them.
func (r *rig) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

func (r *rig) takeXfers() []xfer {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := r.xfers
	r.xfers = nil
	return x
}

func (r *rig) String() string { return "rig(" + r.port.String() + ")" }

func (r *rig) Connect(f physic.Frequency, m spi.Mode, bits int) (spi.Conn, error) {
	if bits != 8 {
		return nil, fmt.Errorf("test: %d bits per word", bits)
	}
	r.mode, r.hz = m, f
	c, err := r.port.Connect(f, m, bits)
	if err != nil {
		return nil, err
	}
	return &rigConn{r: r, c: c}, nil
}

type rigConn struct {
	r *rig
	c spi.Conn
}

func (c *rigConn) String() string      { return "SPI0.0" }
func (c *rigConn) Duplex() conn.Duplex { return conn.Half }
func (c *rigConn) TxPackets([]spi.Packet) error {
	return errors.New("test: TxPackets not expected")
}
func (c *rigConn) MaxTxSize() int { return c.r.maxTx }

func (c *rigConn) Tx(w, rd []byte) error {
	r := c.r
	lvl := r.dc.level()
	r.mu.Lock()
	r.ntx++
	fail := r.ntx == r.failTx
	r.xfers = append(r.xfers, xfer{lvl, bytes.Clone(w)})
	r.mu.Unlock()
	var s string
	switch {
	case lvl == gpio.Low:
		s = "C " + hexBytes(w)
	case len(w) > 4:
		s = fmt.Sprintf("D [%d bytes]", len(w))
	default:
		s = "D " + hexBytes(w)
	}
	r.log(s)
	if fail {
		return errBus
	}
	return c.c.Tx(w, rd)
}

func hexBytes(b []byte) string {
	s := make([]string, len(b))
	for i, v := range b {
		s[i] = fmt.Sprintf("%02X", v)
	}
	return strings.Join(s, " ")
}

// recPin is a gpio.PinOut that remembers its level and logs changes.
type recPin struct {
	name  string
	r     *rig
	quiet bool  // DC changes twice a command: its level shows in the C/D prefix instead
	err   error // returned by Out when set
	mu    sync.Mutex
	l     gpio.Level
}

func (p *recPin) String() string   { return p.name }
func (p *recPin) Halt() error      { return nil }
func (p *recPin) Name() string     { return p.name }
func (p *recPin) Number() int      { return -1 }
func (p *recPin) Function() string { return "Out/" + p.level().String() }
func (p *recPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("test: no PWM")
}

func (p *recPin) Out(l gpio.Level) error {
	if p.err != nil {
		return p.err
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	if !p.quiet {
		p.r.log(p.name + " " + l.String())
	}
	return nil
}

func (p *recPin) level() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.l
}

var _ gpio.PinOut = (*recPin)(nil)
var _ pin.Pin = (*recPin)(nil)

// ops turns the C/D lines of a transcript into the transfers a Playback
// expects; other lines (pins, sleeps) are skipped.
func ops(t *testing.T, transcript ...string) []conntest.IO {
	t.Helper()
	var io []conntest.IO
	for _, line := range transcript {
		kind, rest, _ := strings.Cut(line, " ")
		if kind != "C" && kind != "D" {
			continue
		}
		var w []byte
		for _, h := range strings.Fields(rest) {
			v, err := strconv.ParseUint(h, 16, 8)
			if err != nil {
				t.Fatalf("transcript line %q: %v", line, err)
			}
			w = append(w, byte(v))
		}
		io = append(io, conntest.IO{W: w})
	}
	return io
}

// initTranscript is what New sends for a panel with the given MADCTL and
// inversion, after the reset pulse.
func initTranscript(madctl byte, invert bool) []string {
	inv := "C 20"
	if invert {
		inv = "C 21"
	}
	return []string{
		"C 01", "sleep 150ms",
		"C 11", "sleep 120ms",
		"C 3A", "D 55",
		"C 36", fmt.Sprintf("D %02X", madctl),
		inv,
		"C 13", "sleep 10ms",
		"C 29", "sleep 10ms",
	}
}

var resetTranscript = []string{
	"rst High", "sleep 10µs", "rst Low", "sleep 10µs", "rst High", "sleep 120ms",
}

func checkEvents(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func closePlayback(t *testing.T, pb *spitest.Playback) {
	t.Helper()
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

func TestInit(t *testing.T) {
	tests := []struct {
		name   string
		opts   Opts
		rst    bool
		madctl byte
		invert bool
		bounds image.Point
	}{
		{"240x320 portrait with reset", Opts{Width: 240, Height: 320, Invert: true}, true, 0x00, true, image.Pt(240, 320)},
		{"no reset pin", Opts{Invert: true}, false, 0x00, true, image.Pt(240, 320)},
		{"not inverted", Opts{Width: 240, Height: 320}, true, 0x00, false, image.Pt(240, 320)},
		{"rotation 90", Opts{Rotation: 90, Invert: true}, true, 0x60, true, image.Pt(320, 240)},
		{"rotation 180", Opts{Rotation: 180, Invert: true}, true, 0xC0, true, image.Pt(240, 320)},
		{"rotation 270", Opts{Rotation: 270, Invert: true}, true, 0xA0, true, image.Pt(320, 240)},
		{"240x240", Opts{Width: 240, Height: 240, Invert: true}, true, 0x00, true, image.Pt(240, 240)},
		{"CS-less module in Mode3", Opts{Width: 240, Height: 240, Mode: spi.Mode3 | spi.NoCS, Invert: true}, true, 0x00, true, image.Pt(240, 240)},
		{"240x240 rotation 270", Opts{Width: 240, Height: 240, Rotation: 270, XOffset: 80, Invert: true}, true, 0xA0, true, image.Pt(240, 240)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			if tt.rst {
				want = append(want, resetTranscript...)
			}
			want = append(want, initTranscript(tt.madctl, tt.invert)...)
			pb := &spitest.Playback{Playback: conntest.Playback{Ops: ops(t, want...), DontPanic: true}}
			r := newRig(pb)
			o := tt.opts
			o.Sleep = r.sleep
			var rst gpio.PinOut
			if tt.rst {
				rst = r.rst
			}
			d, err := New(r, r.dc, rst, &o)
			if err != nil {
				t.Fatal(err)
			}
			closePlayback(t, pb)
			checkEvents(t, r.take(), want)
			for i, x := range r.takeXfers() {
				wantDC := gpio.High
				if isCommand(want, i) {
					wantDC = gpio.Low
				}
				if x.dc != wantDC {
					t.Errorf("transfer %d (% X) with DC %s, want %s", i, x.w, x.dc, wantDC)
				}
			}
			if got := d.Bounds(); got != (image.Rectangle{Max: tt.bounds}) {
				t.Errorf("Bounds = %v, want %v", got, image.Rectangle{Max: tt.bounds})
			}
			if r.hz != 32*physic.MegaHertz || r.mode != tt.opts.Mode {
				t.Errorf("connected at %s %s, want 32MHz %s", r.hz, r.mode, tt.opts.Mode)
			}
			if r.dc.level() != gpio.Low {
				t.Error("DC not left low (command) after init")
			}
		})
	}
}

// isCommand reports whether the i-th transfer of transcript is a command.
func isCommand(transcript []string, i int) bool {
	n := 0
	for _, line := range transcript {
		if strings.HasPrefix(line, "C ") || strings.HasPrefix(line, "D ") {
			if n == i {
				return line[0] == 'C'
			}
			n++
		}
	}
	return false
}

func TestInvalidOpts(t *testing.T) {
	tests := []struct {
		name string
		opts Opts
	}{
		{"320 wide", Opts{Width: 320, Height: 240}},
		{"128x160", Opts{Width: 128, Height: 160}},
		{"240x280", Opts{Width: 240, Height: 280}},
		{"rotation 45", Opts{Rotation: 45}},
		{"rotation -90", Opts{Rotation: -90}},
		{"negative offset", Opts{YOffset: -1}},
		{"Mode1", Opts{Mode: spi.Mode1}},
		{"LSB first", Opts{Mode: spi.Mode0 | spi.LSBFirst}},
		{"chunk 1", Opts{ChunkSize: 1}},
		{"negative chunk", Opts{ChunkSize: -4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No transfers expected: the fake fails on any.
			pb := &spitest.Playback{Playback: conntest.Playback{DontPanic: true}}
			r := newRig(pb)
			o := tt.opts
			o.Sleep = r.sleep
			_, err := New(r, r.dc, r.rst, &o)
			if !errors.Is(err, ErrInvalidOpts) {
				t.Fatalf("New = %v, want ErrInvalidOpts", err)
			}
			if e := r.take(); len(e) != 0 {
				t.Errorf("touched the hardware: %q", e)
			}
		})
	}
	t.Run("nil DC", func(t *testing.T) {
		pb := &spitest.Playback{Playback: conntest.Playback{DontPanic: true}}
		if _, err := New(pb, nil, nil, &Opts{Sleep: func(time.Duration) {}}); !errors.Is(err, ErrInvalidOpts) {
			t.Fatalf("New = %v, want ErrInvalidOpts", err)
		}
	})
}

// newDev makes a panel on a recording port, forgetting the init transfers.
func newDev(t *testing.T, o Opts) (*Dev, *rig, *spitest.Record) {
	t.Helper()
	rec := &spitest.Record{}
	r := newRig(rec)
	o.Sleep = r.sleep
	if o.Backlight == nil {
		o.Backlight = r.bl
	}
	d, err := New(r, r.dc, r.rst, &o)
	if err != nil {
		t.Fatal(err)
	}
	r.take()
	r.takeXfers()
	return d, r, rec
}

// twoColour is white in a 100×50 block at the top left and blue elsewhere.
func twoColour(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{0, 0, 0xff, 0xff}
			if x < 100 && y < 50 {
				c = color.RGBA{0xff, 0xff, 0xff, 0xff}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func TestFullScreenDraw(t *testing.T) {
	const w, h = 240, 320
	want := make([]byte, 0, w*h*2)
	for y := range h {
		for x := range w {
			if x < 100 && y < 50 {
				want = append(want, 0xFF, 0xFF) // white
			} else {
				want = append(want, 0x00, 0x1F) // blue: five bits in the low byte
			}
		}
	}
	rgba := twoColour(w, h)
	nrgba := image.NewNRGBA(rgba.Rect) // not RGBA: takes the generic path
	copy(nrgba.Pix, rgba.Pix)
	for _, src := range []image.Image{rgba, nrgba} {
		t.Run(fmt.Sprintf("%T", src), func(t *testing.T) {
			transcript := append(initTranscript(0x00, true),
				"C 2A", "D 00 00 00 EF", // columns 0…239
				"C 2B", "D 00 00 01 3F", // rows 0…319
				"C 2C")
			io := ops(t, transcript...)
			for b := want; len(b) > 0; b = b[min(4096, len(b)):] {
				io = append(io, conntest.IO{W: b[:min(4096, len(b))]})
			}
			pb := &spitest.Playback{Playback: conntest.Playback{Ops: io, DontPanic: true}}
			r := newRig(pb)
			d, err := New(r, r.dc, nil, &Opts{Invert: true, Backlight: r.bl, Sleep: r.sleep})
			if err != nil {
				t.Fatal(err)
			}
			r.take()
			r.takeXfers()
			if err := d.Draw(d.Bounds(), src, image.Point{}); err != nil {
				t.Fatal(err)
			}
			closePlayback(t, pb)
			xs := r.takeXfers()
			for i, x := range xs {
				if cmd := i == 0 || i == 2 || i == 4; (x.dc == gpio.Low) != cmd {
					t.Errorf("transfer %d (%d bytes) went out with DC %s", i, len(x.w), x.dc)
				}
			}
			if n := len(xs) - 5; n != 38 { // 153600 bytes = 37 × 4096 + 2048
				t.Errorf("%d pixel transfers, want 38", n)
			}
			if e := r.take(); e[len(e)-1] != "bl High" {
				t.Errorf("backlight not turned on after the first frame: %q", e)
			}
		})
	}
}

func TestPartialDraw(t *testing.T) {
	// src pixel (x, y) is a colour made from its own coordinates, so the
	// bytes show which source pixels were sent.
	src := image.NewRGBA(image.Rect(-8, -8, 300, 400))
	for y := src.Rect.Min.Y; y < src.Rect.Max.Y; y++ {
		for x := src.Rect.Min.X; x < src.Rect.Max.X; x++ {
			src.SetRGBA(x, y, color.RGBA{uint8(x * 8), uint8(y * 4), uint8(x ^ y), 0xff})
		}
	}
	small := src.SubImage(image.Rect(0, 0, 16, 4))
	tests := []struct {
		name      string
		opts      Opts
		r         image.Rectangle
		src       image.Image
		sp        image.Point
		caset     string
		raset     string
		wantSrc   image.Rectangle // the source pixels expected on the wire
		noTraffic bool
	}{
		{"window", Opts{}, image.Rect(10, 20, 30, 25), src, image.Pt(5, 7),
			"D 00 0A 00 1D", "D 00 14 00 18", image.Rect(5, 7, 25, 12), false},
		{"240x240 rotated 180 with row offset", Opts{Width: 240, Height: 240, Rotation: 180, YOffset: 80},
			image.Rect(10, 20, 30, 25), src, image.Pt(0, 0),
			"D 00 0A 00 1D", "D 00 64 00 68", image.Rect(0, 0, 20, 5), false}, // rows 100…104
		{"240x240 rotated 270 with column offset", Opts{Width: 240, Height: 240, Rotation: 270, XOffset: 80},
			image.Rect(0, 0, 240, 240), src, image.Pt(0, 0),
			"D 00 50 01 3F", "D 00 00 00 EF", image.Rect(0, 0, 240, 240), false}, // columns 80…319
		{"landscape 320x240", Opts{Rotation: 90},
			image.Rect(300, 200, 320, 240), src, image.Pt(-8, -8),
			"D 01 2C 01 3F", "D 00 C8 00 EF", image.Rect(-8, -8, 12, 32), false},
		{"clipped to the panel", Opts{}, image.Rect(230, 310, 260, 340), src, image.Pt(0, 0),
			"D 00 E6 00 EF", "D 01 36 01 3F", image.Rect(0, 0, 10, 10), false},
		{"negative corner clipped", Opts{}, image.Rect(-5, -5, 5, 5), src, image.Pt(0, 0),
			"D 00 00 00 04", "D 00 00 00 04", image.Rect(5, 5, 10, 10), false},
		{"clipped to the source", Opts{}, image.Rect(100, 100, 200, 200), small, image.Pt(0, 0),
			"D 00 64 00 73", "D 00 64 00 67", image.Rect(0, 0, 16, 4), false},
		{"off the panel", Opts{}, image.Rect(240, 0, 300, 10), src, image.Pt(0, 0), "", "", image.Rectangle{}, true},
		{"empty rectangle", Opts{}, image.Rect(5, 5, 5, 50), src, image.Pt(0, 0), "", "", image.Rectangle{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, r, _ := newDev(t, tt.opts)
			if err := d.Draw(tt.r, tt.src, tt.sp); err != nil {
				t.Fatal(err)
			}
			xs := r.takeXfers()
			ev := r.take()
			if tt.noTraffic {
				if len(xs) != 0 || len(ev) != 0 {
					t.Fatalf("drew nothing yet sent %q", ev)
				}
				return
			}
			n := tt.wantSrc.Dx() * tt.wantSrc.Dy() * 2
			want := []string{"C 2A", tt.caset, "C 2B", tt.raset, "C 2C"}
			for k := n; k > 0; k -= 4096 {
				want = append(want, fmt.Sprintf("D [%d bytes]", min(k, 4096)))
			}
			want = append(want, "bl High")
			checkEvents(t, ev, want)
			var wire []byte
			for _, x := range xs[5:] {
				wire = append(wire, x.w...)
			}
			var exp []byte
			for y := tt.wantSrc.Min.Y; y < tt.wantSrc.Max.Y; y++ {
				for x := tt.wantSrc.Min.X; x < tt.wantSrc.Max.X; x++ {
					c := src.RGBAAt(x, y)
					v := screen.ToRGB565(c.R, c.G, c.B)
					exp = append(exp, byte(v>>8), byte(v))
				}
			}
			if !bytes.Equal(wire, exp) {
				t.Errorf("pixel data (%d bytes) differs from source %v (%d bytes)", len(wire), tt.wantSrc, len(exp))
			}
		})
	}
}

func TestChunking(t *testing.T) {
	tests := []struct {
		name      string
		chunk     int
		maxTx     int
		wantChunk int
	}{
		{"default", 0, 0, 4096},
		{"small", 64, 0, 64},
		{"odd rounds down to whole pixels", 7, 0, 6},
		{"port limit lowers it", 4096, 1000, 1000},
		{"port limit above chunk", 512, 65536, 512},
		{"one frame", 240 * 240 * 2, 0, 240 * 240 * 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &spitest.Record{}
			r := newRig(rec)
			r.maxTx = tt.maxTx
			d, err := New(r, r.dc, nil, &Opts{Width: 240, Height: 240, ChunkSize: tt.chunk, Sleep: r.sleep})
			if err != nil {
				t.Fatal(err)
			}
			r.takeXfers()
			img := twoColour(240, 240)
			if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
				t.Fatal(err)
			}
			xs := r.takeXfers()[5:]
			const total = 240 * 240 * 2
			wantN := (total + tt.wantChunk - 1) / tt.wantChunk
			if len(xs) != wantN {
				t.Fatalf("%d pixel transfers, want %d", len(xs), wantN)
			}
			var wire []byte
			for i, x := range xs {
				if x.dc != gpio.High {
					t.Fatalf("pixel transfer %d with DC low", i)
				}
				if i < len(xs)-1 && len(x.w) != tt.wantChunk {
					t.Fatalf("transfer %d is %d bytes, want %d", i, len(x.w), tt.wantChunk)
				}
				wire = append(wire, x.w...)
			}
			exp := make([]byte, total)
			toRGB565BE(exp, image.Pt(240, 240), img, image.Point{})
			if !bytes.Equal(wire, exp) {
				t.Error("chunks do not add up to the frame")
			}
		})
	}
}

func TestHaltAndWake(t *testing.T) {
	d, r, _ := newDev(t, Opts{})
	img := twoColour(240, 320)
	if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	r.take()
	if err := d.Draw(image.Rect(0, 0, 2, 1), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.take(), []string{"C 2A", "D 00 00 00 01", "C 2B", "D 00 00 00 00", "C 2C", "D FF FF FF FF"})

	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.take(), []string{"bl Low", "C 28", "C 10", "sleep 5ms"})
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.take(), nil)

	if err := d.Draw(image.Rect(0, 0, 2, 1), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r.take(), []string{
		"C 11", "sleep 120ms",
		"C 2A", "D 00 00 00 01", "C 2B", "D 00 00 00 00", "C 2C", "D FF FF FF FF",
		"C 29", "bl High",
	})
}

func TestErrorsPropagate(t *testing.T) {
	// Transfers of New: 9 (7 commands, 2 parameters).
	for _, n := range []int{1, 4, 9} {
		t.Run(fmt.Sprintf("init transfer %d", n), func(t *testing.T) {
			r := newRig(&spitest.Record{})
			r.failTx = n
			_, err := New(r, r.dc, nil, &Opts{Sleep: r.sleep})
			if !errors.Is(err, errBus) || !strings.HasPrefix(err.Error(), "st7789: init: ") {
				t.Fatalf("New = %v, want st7789: init: … %v", err, errBus)
			}
		})
	}
	for _, n := range []int{1, 2, 5, 6, 20} {
		t.Run(fmt.Sprintf("draw transfer %d", n), func(t *testing.T) {
			d, r, _ := newDev(t, Opts{})
			r.mu.Lock()
			r.failTx = r.ntx + n
			r.mu.Unlock()
			err := d.Draw(d.Bounds(), twoColour(240, 320), image.Point{})
			if !errors.Is(err, errBus) || !strings.HasPrefix(err.Error(), "st7789: draw ") {
				t.Fatalf("Draw = %v, want st7789: draw … %v", err, errBus)
			}
		})
	}
	t.Run("halt", func(t *testing.T) {
		d, r, _ := newDev(t, Opts{})
		r.mu.Lock()
		r.failTx = r.ntx + 2
		r.mu.Unlock()
		if err := d.Halt(); !errors.Is(err, errBus) {
			t.Fatalf("Halt = %v, want %v", err, errBus)
		}
	})
	t.Run("connect", func(t *testing.T) {
		rec := &spitest.Record{Initialized: true} // a second Connect fails
		r := newRig(rec)
		if _, err := New(r, r.dc, nil, &Opts{Sleep: r.sleep}); err == nil || !strings.HasPrefix(err.Error(), "st7789: connect ") {
			t.Fatalf("New = %v, want a connect error", err)
		}
	})
	t.Run("DC pin", func(t *testing.T) {
		r := newRig(&spitest.Record{})
		r.dc.err = errBus
		if _, err := New(r, r.dc, nil, &Opts{Sleep: r.sleep}); !errors.Is(err, errBus) {
			t.Fatalf("New = %v, want %v", err, errBus)
		}
	})
	t.Run("reset pin", func(t *testing.T) {
		r := newRig(&spitest.Record{})
		r.rst.err = errBus
		if _, err := New(r, r.dc, r.rst, &Opts{Sleep: r.sleep}); !errors.Is(err, errBus) {
			t.Fatalf("New = %v, want %v", err, errBus)
		}
	})
}

func TestDescribe(t *testing.T) {
	d, _, _ := newDev(t, Opts{Width: 240, Height: 240, Rotation: 90})
	if s := d.String(); s != "st7789(SPI0.0, 240x240, rotation 90)" {
		t.Errorf("String = %q", s)
	}
	if c := d.ColorModel().Convert(color.RGBA{0xff, 0, 0, 0xff}); c != screen.RGB565(0xF800) {
		t.Errorf("ColorModel converts red to %v", c)
	}
}

func TestNilOptsUseDefaults(t *testing.T) {
	saved := DefaultOpts
	t.Cleanup(func() { DefaultOpts = saved })
	want := initTranscript(0x00, true)
	pb := &spitest.Playback{Playback: conntest.Playback{Ops: ops(t, want...), DontPanic: true}}
	r := newRig(pb)
	DefaultOpts.Sleep = r.sleep
	d, err := New(r, r.dc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	closePlayback(t, pb)
	checkEvents(t, r.take(), want)
	if d.Bounds() != image.Rect(0, 0, 240, 320) || d.chunk != 4096 || r.hz != 32*physic.MegaHertz {
		t.Errorf("bounds %v chunk %d at %s, want the defaults", d.Bounds(), d.chunk, r.hz)
	}
}

func TestConcurrentUse(t *testing.T) {
	d, _, rec := newDev(t, Opts{})
	img := twoColour(240, 320)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 3 {
				if (i+j)%3 == 2 {
					if err := d.Halt(); err != nil {
						t.Error(err)
					}
					continue
				}
				if err := d.Draw(image.Rect(0, i*10, 200, i*10+10), img, image.Pt(0, i*10)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rec.Lock()
	defer rec.Unlock()
	// Every RAMWR must be followed by exactly its window's bytes: a draw
	// interleaved with another would break the count.
	for i, op := range rec.Ops {
		if len(op.W) == 1 && op.W[0] == cmdRAMWR && i+1 < len(rec.Ops) {
			if n := len(rec.Ops[i+1].W); n != 200*10*2 {
				t.Fatalf("RAMWR followed by %d bytes", n)
			}
		}
	}
}

// screenFixture is a typical payment screen.
var screenFixture = hal.Screen{
	QR:     "https://pay.bangfu.example/q?c=NM-150102-0007&n=8f3a2c91d0b64e7a&t=1741766400",
	Status: "Scan to open",
}

// discardPort is an SPI port whose transfers go nowhere, to measure the
// driver alone.
type discardPort struct{}

func (discardPort) String() string { return "discard" }
func (discardPort) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) {
	return discardConn{}, nil
}

type discardConn struct{}

func (discardConn) String() string               { return "discard" }
func (discardConn) Duplex() conn.Duplex          { return conn.Half }
func (discardConn) Tx(w, r []byte) error         { return nil }
func (discardConn) TxPackets([]spi.Packet) error { return nil }

// BenchmarkDraw measures one full 240×320 frame of the rendered cabinet
// screen: through spitest.Record (which copies every transfer, as in the
// tests) and through a port that discards (the driver's own cost).
func BenchmarkDraw(b *testing.B) {
	img := screen.Render(screenFixture, 240, 320)
	for _, bm := range []struct {
		name string
		port func() (spi.Port, func()) // a fresh port per run (-count) and its reset
	}{
		{"record", func() (spi.Port, func()) {
			rec := &spitest.Record{}
			return rec, func() { rec.Ops = rec.Ops[:0] }
		}},
		{"discard", func() (spi.Port, func()) { return discardPort{}, func() {} }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			port, reset := bm.port()
			dc := &recPin{name: "dc", quiet: true}
			d, err := New(port, dc, nil, &Opts{Sleep: func(time.Duration) {}})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(240 * 320 * 2)
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
					b.Fatal(err)
				}
				reset()
			}
		})
	}
}
