// Package st7789 drives a Sitronix ST7789 TFT panel over SPI as a periph
// display.Drawer; hal/screen.Display puts the cabinet's screen on it.
//
// st7789 owns the controller's command set, the panel geometry (size,
// rotation, RAM offsets) and the RGB565 pixel stream. It must not open the
// SPI bus or GPIO pins itself (the application owns them and passes them
// in), call host.Init, or decide what is shown.
//
// # Datasheet
//
// Sitronix ST7789V, "240RGB x 320 dot 262K color with frame memory single-chip
// TFT controller/driver" (module vendors ship it with their boards).
//
// Commands used, from its system function command list; each is one byte
// sent with DC low, its parameters follow with DC high:
//
//	0x01 SWRESET  software reset; wait 5 ms, 120 ms before SLPOUT
//	0x10 SLPIN    sleep in; wait 5 ms, 120 ms before SLPOUT
//	0x11 SLPOUT   sleep out; wait 5 ms, 120 ms before SLPIN
//	0x13 NORON    normal display mode (no partial area)
//	0x20 INVOFF   display inversion off
//	0x21 INVON    display inversion on
//	0x28 DISPOFF  panel output off, frame memory kept
//	0x29 DISPON   panel output on
//	0x2A CASET    column window: XS high, XS low, XE high, XE low (inclusive)
//	0x2B RASET    row window: YS high, YS low, YE high, YE low (inclusive)
//	0x2C RAMWR    write pixels into the window, left to right, top to bottom
//	0x36 MADCTL   memory access order: MY 0x80, MX 0x40, MV 0x20
//	0x3A COLMOD   pixel format; 0x55 is 16 bits per pixel (RGB565)
//
// In 16-bit mode over the 4-wire 8-bit serial interface each pixel is two
// bytes, most significant first: RRRRRGGG GGGBBBBB. The serial write clock
// cycle may be as short as 16 ns (62.5 MHz); 32 MHz leaves margin for the
// jumper wires of a cabinet door.
//
// # Wiring
//
// Power the module from 3.3 V: the ST7789's logic is not 5 V tolerant, and
// neither are the board's GPIOs. On a Raspberry Pi with SPI0 enabled
// (dtparam=spi=on):
//
//	module  board                       note
//	VCC     3.3 V (pin 1 or 17)
//	GND     GND
//	SCL     SPI0 SCLK, GPIO11 (pin 23)  may be labelled SCK or CLK
//	SDA     SPI0 MOSI, GPIO10 (pin 19)  may be labelled MOSI or DIN
//	CS      SPI0 CE0, GPIO8 (pin 24)    "SPI0.0"; see Opts.Mode for modules without CS
//	DC      any free GPIO               may be labelled RS or A0; the dc pin of New
//	RES     any free GPIO, optional     the rst pin of New; tie high if unused
//	BLK     any free GPIO, optional     Opts.Backlight; tie to 3.3 V if unused
//
// The controller never answers (MISO is not wired), so a missing or miswired
// panel cannot be detected: New succeeds and the screen stays dark.
package st7789

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/bangfu/cabinet/hal/screen"
)

// Command bytes from the datasheet; see the package doc.
const (
	cmdSWRESET = 0x01
	cmdSLPIN   = 0x10
	cmdSLPOUT  = 0x11
	cmdNORON   = 0x13
	cmdINVOFF  = 0x20
	cmdINVON   = 0x21
	cmdDISPOFF = 0x28
	cmdDISPON  = 0x29
	cmdCASET   = 0x2A
	cmdRASET   = 0x2B
	cmdRAMWR   = 0x2C
	cmdMADCTL  = 0x36
	cmdCOLMOD  = 0x3A

	colmodRGB565 = 0x55

	madctlMY = 0x80 // rows bottom to top
	madctlMX = 0x40 // columns right to left
	madctlMV = 0x20 // rows and columns exchanged
)

// Waits from the datasheet, with some margin where the cost is only at start.
const (
	resetPulse   = 10 * time.Microsecond // RES low at least 10 µs
	resetRecover = 120 * time.Millisecond
	swresetWait  = 150 * time.Millisecond // 120 ms before SLPOUT
	sleepOutWait = 120 * time.Millisecond // 5 ms before a command, 120 ms before SLPIN
	sleepInWait  = 5 * time.Millisecond
	noronWait    = 10 * time.Millisecond
	dispOnWait   = 10 * time.Millisecond
)

// ErrInvalidOpts is wrapped by New when the options cannot describe a panel.
var ErrInvalidOpts = errors.New("st7789: invalid options")

// Opts configures a Dev. Zero numeric fields take the values of DefaultOpts;
// Invert is used as given, and New(…, nil) uses DefaultOpts as a whole.
type Opts struct {
	// Width and Height are the panel's native (unrotated, portrait) size in
	// pixels: 240×320 or 240×240.
	Width, Height int
	// Rotation turns the picture in quarter turns: 0, 90, 180 or 270 degrees
	// (MADCTL 0x00, 0x60, 0xC0, 0xA0). 90 and 270 are landscape: Bounds
	// swaps width and height.
	Rotation int
	// XOffset and YOffset are added to every column and row address, in
	// rotated coordinates. The controller's frame memory is 240×320; a
	// 240×240 panel is wired to its first 240 rows, so once MADCTL mirrors the
	// rows they start at 80. For a 240×240 panel use:
	//
	//	Rotation  XOffset  YOffset
	//	0         0        0
	//	90        0        0
	//	180       0        80
	//	270       80       0
	//
	// 240×320 panels need no offset. Some modules are wired differently: if
	// the picture is shifted with noise along one edge, move it here.
	XOffset, YOffset int
	// Invert sends INVON instead of INVOFF. Most IPS modules need it, and
	// without it black shows as white: a QR code in negative, which many
	// scanners refuse. A bool has no "unset", so it is not defaulted: set it.
	Invert bool
	// SPIHz is the SCL frequency (default 32 MHz).
	SPIHz physic.Frequency
	// Mode is the SPI mode: spi.Mode0 (the zero value) for modules with a CS
	// pin. Modules without one (many 240×240 ones tie CS low inside) only
	// work in spi.Mode3, where the idle-high clock keeps the controller's
	// bit counter in step; add spi.NoCS to leave the CE pin free. No other
	// flag is accepted.
	Mode spi.Mode
	// ChunkSize caps one SPI transfer in bytes (default 4096, spidev's
	// default bufsiz; raise it with spidev.bufsiz= on the kernel command
	// line). It is rounded down to whole pixels and lowered to the port's own
	// limit when the port reports one.
	ChunkSize int
	// Backlight, when not nil, drives the backlight (high is on). It is kept
	// off until the first Draw, so the panel's power-on noise never shows,
	// and turned off by Halt.
	Backlight gpio.PinOut
	// Sleep waits as the datasheet requires (default time.Sleep); tests
	// inject a recorder.
	Sleep func(time.Duration)
}

// DefaultOpts describes a 2" 240×320 IPS module in portrait.
var DefaultOpts = Opts{
	Width:     240,
	Height:    320,
	Invert:    true,
	SPIHz:     32 * physic.MegaHertz,
	ChunkSize: 4096,
}

// Dev is an ST7789 panel. It implements display.Drawer; all methods are safe
// for concurrent use.
type Dev struct {
	c      spi.Conn
	dc     gpio.PinOut
	bl     gpio.PinOut
	sleep  func(time.Duration)
	rect   image.Rectangle // in rotated coordinates
	xoff   int
	yoff   int
	madctl byte
	chunk  int
	name   string

	mu     sync.Mutex
	buf    []byte  // one frame of RGB565, reused by every Draw
	cmd    [1]byte // the command byte and its parameters, kept here so that
	params [4]byte // sending them allocates nothing
	lit    bool    // the backlight is on
	asleep bool    // Halt sent DISPOFF and SLPIN
}

// New connects to the panel on p, resets it (by pulse on rst when not nil,
// and by command), and initialises it for RGB565 with the options' rotation
// and inversion. dc selects command (low) or data (high) bytes.
//
// The panel's frame memory is not cleared, which takes a whole frame: the
// backlight (if Opts.Backlight is set) stays off until the first Draw, which
// should cover the whole screen.
func New(p spi.Port, dc gpio.PinOut, rst gpio.PinOut, opts *Opts) (*Dev, error) {
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	o.Width = cmp.Or(o.Width, DefaultOpts.Width)
	o.Height = cmp.Or(o.Height, DefaultOpts.Height)
	o.SPIHz = cmp.Or(o.SPIHz, DefaultOpts.SPIHz)
	o.ChunkSize = cmp.Or(o.ChunkSize, DefaultOpts.ChunkSize)
	if o.Sleep == nil {
		o.Sleep = time.Sleep
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if dc == nil {
		return nil, fmt.Errorf("%w: no DC pin", ErrInvalidOpts)
	}
	d := &Dev{
		dc:    dc,
		bl:    o.Backlight,
		sleep: o.Sleep,
		xoff:  o.XOffset,
		yoff:  o.YOffset,
		chunk: o.ChunkSize,
		buf:   make([]byte, o.Width*o.Height*2),
	}
	w, h := o.Width, o.Height
	switch o.Rotation {
	case 0:
		d.madctl = 0
	case 90:
		d.madctl = madctlMX | madctlMV
		w, h = h, w
	case 180:
		d.madctl = madctlMX | madctlMY
	case 270:
		d.madctl = madctlMY | madctlMV
		w, h = h, w
	}
	d.rect = image.Rect(0, 0, w, h)

	// Safe levels first: backlight off, DC idle as command.
	if d.bl != nil {
		if err := d.bl.Out(gpio.Low); err != nil {
			return nil, fmt.Errorf("st7789: backlight %s: %w", d.bl, err)
		}
	}
	if err := dc.Out(gpio.Low); err != nil {
		return nil, fmt.Errorf("st7789: DC %s: %w", dc, err)
	}
	c, err := p.Connect(o.SPIHz, o.Mode, 8)
	if err != nil {
		return nil, fmt.Errorf("st7789: connect %s: %w", p, err)
	}
	d.c = c
	if l, ok := c.(conn.Limits); ok {
		if m := l.MaxTxSize(); m > 0 && m < d.chunk {
			d.chunk = m
		}
	}
	// Whole pixels per transfer, so no pixel straddles a CS toggle.
	d.chunk &^= 1
	if d.chunk < 2 {
		return nil, fmt.Errorf("%w: SPI transfers of %d bytes cannot carry a pixel", ErrInvalidOpts, d.chunk)
	}
	d.name = fmt.Sprintf("st7789(%s, %dx%d, rotation %d)", c, o.Width, o.Height, o.Rotation)

	if rst != nil {
		for _, step := range []struct {
			l    gpio.Level
			wait time.Duration
		}{{gpio.High, resetPulse}, {gpio.Low, resetPulse}, {gpio.High, resetRecover}} {
			if err := rst.Out(step.l); err != nil {
				return nil, fmt.Errorf("st7789: reset %s: %w", rst, err)
			}
			d.sleep(step.wait)
		}
	}
	inv := byte(cmdINVOFF)
	if o.Invert {
		inv = cmdINVON
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range []struct {
		cmd   byte
		param int // -1 for none
		wait  time.Duration
	}{
		{cmdSWRESET, -1, swresetWait},
		{cmdSLPOUT, -1, sleepOutWait},
		{cmdCOLMOD, colmodRGB565, 0},
		{cmdMADCTL, int(d.madctl), 0},
		{inv, -1, 0},
		{cmdNORON, -1, noronWait},
		{cmdDISPON, -1, dispOnWait},
	} {
		var params []byte
		if s.param >= 0 {
			d.params[0] = byte(s.param)
			params = d.params[:1]
		}
		if err := d.command(s.cmd, params); err != nil {
			return nil, fmt.Errorf("st7789: init: %w", err)
		}
		if s.wait > 0 {
			d.sleep(s.wait)
		}
	}
	return d, nil
}

func (o *Opts) validate() error {
	switch {
	case o.Width != 240 || (o.Height != 240 && o.Height != 320):
		return fmt.Errorf("%w: panel %dx%d, want 240x240 or 240x320 (native portrait size; use Rotation for landscape)",
			ErrInvalidOpts, o.Width, o.Height)
	case o.Rotation != 0 && o.Rotation != 90 && o.Rotation != 180 && o.Rotation != 270:
		return fmt.Errorf("%w: rotation %d, want 0, 90, 180 or 270", ErrInvalidOpts, o.Rotation)
	case o.XOffset < 0 || o.YOffset < 0 || o.XOffset > 320 || o.YOffset > 320:
		return fmt.Errorf("%w: offset %d,%d outside the controller's 320 lines", ErrInvalidOpts, o.XOffset, o.YOffset)
	case o.SPIHz < 0:
		return fmt.Errorf("%w: SPI frequency %s", ErrInvalidOpts, o.SPIHz)
	case o.Mode&spi.Mode3 != spi.Mode0 && o.Mode&spi.Mode3 != spi.Mode3,
		o.Mode&^(spi.Mode3|spi.NoCS) != 0:
		return fmt.Errorf("%w: SPI %s, want Mode0 or Mode3, optionally with NoCS", ErrInvalidOpts, o.Mode)
	case o.ChunkSize < 2:
		return fmt.Errorf("%w: chunk size %d", ErrInvalidOpts, o.ChunkSize)
	}
	return nil
}

// String describes the panel and its SPI connection.
func (d *Dev) String() string { return d.name }

// ColorModel returns screen.RGB565Model, the controller's pixel format.
func (d *Dev) ColorModel() color.Model { return screen.RGB565Model }

// Bounds returns the panel's rectangle after rotation, at the origin.
func (d *Dev) Bounds() image.Rectangle { return d.rect }

// Draw writes the part of src that falls on r (clipped to the panel and to
// src) into the panel's frame memory; display point r.Min shows src point sp.
// Pixels outside r keep what they showed. After Halt, Draw wakes the panel.
func (d *Dev) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	r, sp = screen.Clip(d.rect, r, src, sp)
	if r.Empty() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := toRGB565BE(d.buf, r.Size(), src, sp)
	if d.asleep {
		if err := d.command(cmdSLPOUT, nil); err != nil {
			return fmt.Errorf("st7789: wake: %w", err)
		}
		d.sleep(sleepOutWait)
	}
	if err := d.window(r); err != nil {
		return fmt.Errorf("st7789: draw %v: %w", r, err)
	}
	if err := d.command(cmdRAMWR, nil); err != nil {
		return fmt.Errorf("st7789: draw %v: %w", r, err)
	}
	if err := d.dc.Out(gpio.High); err != nil {
		return fmt.Errorf("st7789: draw %v: DC: %w", r, err)
	}
	for b := d.buf[:n]; len(b) > 0; {
		k := min(len(b), d.chunk)
		if err := d.c.Tx(b[:k], nil); err != nil {
			return fmt.Errorf("st7789: draw %v: pixels: %w", r, err)
		}
		b = b[k:]
	}
	if d.asleep {
		// DISPON after the pixels, so that waking never flashes the frame
		// shown before Halt.
		if err := d.command(cmdDISPON, nil); err != nil {
			return fmt.Errorf("st7789: wake: %w", err)
		}
		d.asleep = false
	}
	if d.bl != nil && !d.lit {
		if err := d.bl.Out(gpio.High); err != nil {
			return fmt.Errorf("st7789: backlight %s: %w", d.bl, err)
		}
		d.lit = true
	}
	return nil
}

// Halt turns the backlight off and puts the panel to sleep (DISPOFF, SLPIN),
// keeping its frame memory. A later Draw wakes it.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.asleep {
		return nil
	}
	if d.bl != nil {
		if err := d.bl.Out(gpio.Low); err != nil {
			return fmt.Errorf("st7789: backlight %s: %w", d.bl, err)
		}
	}
	d.lit = false
	if err := d.command(cmdDISPOFF, nil); err != nil {
		return fmt.Errorf("st7789: halt: %w", err)
	}
	if err := d.command(cmdSLPIN, nil); err != nil {
		return fmt.Errorf("st7789: halt: %w", err)
	}
	// The datasheet also wants 120 ms between SLPIN and the SLPOUT that may
	// follow; the wake in Draw waits that long after SLPOUT, and Halt is rare
	// enough that the sum is no cost.
	d.sleep(sleepInWait)
	d.asleep = true
	return nil
}

// window sets CASET and RASET to r plus the RAM offsets. Caller holds mu.
func (d *Dev) window(r image.Rectangle) error {
	for _, a := range []struct {
		cmd        byte
		start, end int
	}{
		{cmdCASET, r.Min.X + d.xoff, r.Max.X - 1 + d.xoff},
		{cmdRASET, r.Min.Y + d.yoff, r.Max.Y - 1 + d.yoff},
	} {
		d.params = [4]byte{byte(a.start >> 8), byte(a.start), byte(a.end >> 8), byte(a.end)}
		if err := d.command(a.cmd, d.params[:]); err != nil {
			return err
		}
	}
	return nil
}

// command sends cmd with DC low, then its parameters with DC high. Caller
// holds mu (or owns d during New).
func (d *Dev) command(cmd byte, params []byte) error {
	if err := d.dc.Out(gpio.Low); err != nil {
		return fmt.Errorf("command 0x%02X: DC: %w", cmd, err)
	}
	d.cmd[0] = cmd
	if err := d.c.Tx(d.cmd[:], nil); err != nil {
		return fmt.Errorf("command 0x%02X: %w", cmd, err)
	}
	if len(params) == 0 {
		return nil
	}
	if err := d.dc.Out(gpio.High); err != nil {
		return fmt.Errorf("command 0x%02X: DC: %w", cmd, err)
	}
	if err := d.c.Tx(params, nil); err != nil {
		return fmt.Errorf("command 0x%02X parameters: %w", cmd, err)
	}
	return nil
}

var _ display.Drawer = (*Dev)(nil)
