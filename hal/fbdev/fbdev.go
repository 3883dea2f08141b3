// Package fbdev draws on a Linux framebuffer device (/dev/fbN) as a periph
// display.Drawer, for HDMI and DSI screens and for SPI panels the kernel
// already drives (fbtft, tinydrm); hal/screen.Display puts the cabinet's
// screen on it.
//
// fbdev owns reading the framebuffer's geometry from sysfs and converting
// pixels to its format. It must not change the video mode, the console or
// the panel's overlay, or decide what is shown.
//
// # Setup
//
// The kernel creates /dev/fb0 for HDMI and DSI when the KMS overlay is on
// (dtoverlay=vc4-kms-v3d in config.txt; its fbdev emulation is on by
// default), and /dev/fb1 and up for SPI panels with their own overlay. The
// process needs write access to the device: on Raspberry Pi OS, membership
// of the video group. Keep the text console off this framebuffer (fbcon=map:
// on the kernel command line, or no getty on its tty and
// vt.global_cursor_default=0), or console text and the cursor will write over
// the picture.
//
// Geometry comes from /sys/class/graphics/fbN: virtual_size ("1920,1080"),
// bits_per_pixel and stride (bytes per row, which may include padding).
// The virtual size is taken as the visible one, which it is unless
// something has set up double buffering with a taller virtual screen.
//
// Pixels are written with WriteAt at y·stride + x·bytes per pixel. 16 bpp
// is RGB565, 32 bpp is XRGB8888, both little-endian in memory as on every
// ARM board the cabinet runs on.
package fbdev

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/conn/v3/display"

	"github.com/bangfu/cabinet/hal/screen"
)

// Sentinel errors Open and Draw wrap.
var (
	// ErrNoDevice means the framebuffer or its sysfs entry does not exist.
	ErrNoDevice = errors.New("fbdev: no such framebuffer")
	// ErrUnsupported means the framebuffer's pixel format is not one fbdev
	// can write, or its geometry makes no sense.
	ErrUnsupported = errors.New("fbdev: unsupported framebuffer")
	// ErrClosed means Close was called.
	ErrClosed = errors.New("fbdev: closed")
)

// Opts configures Open. Zero fields take the values of DefaultOpts.
type Opts struct {
	// SysfsRoot is the directory holding fbN/virtual_size etc.
	SysfsRoot string
	// DevPath is the device file; empty means DevDir/name.
	DevPath string
	// DevDir is the directory of device files.
	DevDir string
}

// DefaultOpts are the real system's paths.
var DefaultOpts = Opts{
	SysfsRoot: "/sys/class/graphics",
	DevDir:    "/dev",
}

// Dev is an open framebuffer. It implements display.Drawer; all methods are
// safe for concurrent use.
type Dev struct {
	name   string
	rect   image.Rectangle
	bpp    int // bits per pixel: 16 or 32
	stride int // bytes per row

	mu  sync.Mutex
	f   *os.File // nil once closed
	row []byte   // one row of converted pixels, reused by every Draw
}

// Open opens framebuffer name ("fb0", or "/dev/fb0" whose base name is used
// for sysfs) after reading its geometry.
func Open(name string, opts *Opts) (*Dev, error) {
	o := DefaultOpts
	if opts != nil {
		o.SysfsRoot = cmp.Or(opts.SysfsRoot, o.SysfsRoot)
		o.DevDir = cmp.Or(opts.DevDir, o.DevDir)
		o.DevPath = opts.DevPath
	}
	fb := filepath.Base(name)
	if fb == "." || fb == string(filepath.Separator) || !strings.HasPrefix(fb, "fb") {
		return nil, fmt.Errorf("%w: %q is not a framebuffer name like fb0", ErrNoDevice, name)
	}
	dev := o.DevPath
	if dev == "" {
		if filepath.IsAbs(name) {
			dev = name
		} else {
			dev = filepath.Join(o.DevDir, fb)
		}
	}
	sys := filepath.Join(o.SysfsRoot, fb)

	size, err := readSysfs(sys, "virtual_size")
	if err != nil {
		return nil, err
	}
	ws, hs, ok := strings.Cut(size, ",")
	w, errW := strconv.Atoi(ws)
	h, errH := strconv.Atoi(hs)
	if !ok || errW != nil || errH != nil || w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: %s: virtual_size %q", ErrUnsupported, fb, size)
	}
	bpp, err := readSysfsInt(sys, "bits_per_pixel")
	if err != nil {
		return nil, err
	}
	if bpp != 16 && bpp != 32 {
		return nil, fmt.Errorf("%w: %s: %d bits per pixel, want 16 or 32 (set framebuffer_depth in config.txt, or the overlay's bpp)",
			ErrUnsupported, fb, bpp)
	}
	stride, err := readSysfsInt(sys, "stride")
	if err != nil {
		return nil, err
	}
	if stride < w*bpp/8 {
		return nil, fmt.Errorf("%w: %s: stride %d bytes is less than %d pixels of %d bits", ErrUnsupported, fb, stride, w, bpp)
	}

	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w (is the panel's overlay enabled in config.txt?)", ErrNoDevice, err)
		}
		return nil, fmt.Errorf("fbdev: %w", err)
	}
	return &Dev{
		name:   fmt.Sprintf("fbdev(%s, %dx%d, %d bpp)", fb, w, h, bpp),
		rect:   image.Rect(0, 0, w, h),
		bpp:    bpp,
		stride: stride,
		f:      f,
		row:    make([]byte, w*bpp/8),
	}, nil
}

func readSysfs(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %w (is the panel's overlay enabled in config.txt?)", ErrNoDevice, err)
	}
	if err != nil {
		return "", fmt.Errorf("fbdev: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func readSysfsInt(dir, file string) (int, error) {
	s, err := readSysfs(dir, file)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s/%s: %q", ErrUnsupported, filepath.Base(dir), file, s)
	}
	return n, nil
}

// String describes the framebuffer.
func (d *Dev) String() string { return d.name }

// ColorModel returns the framebuffer's pixel format: screen.RGB565Model at
// 16 bpp, color.RGBAModel at 32 bpp (opaque: the X byte is not alpha).
func (d *Dev) ColorModel() color.Model {
	if d.bpp == 16 {
		return screen.RGB565Model
	}
	return color.RGBAModel
}

// Bounds returns the screen's rectangle at the origin.
func (d *Dev) Bounds() image.Rectangle { return d.rect }

// Draw writes the part of src that falls on r (clipped to the screen and to
// src); screen point r.Min shows src point sp. Pixels outside r are kept.
func (d *Dev) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	r, sp = screen.Clip(d.rect, r, src, sp)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return ErrClosed
	}
	if r.Empty() {
		return nil
	}
	return d.draw(r, src, sp)
}

// draw writes rows; the caller holds mu and has clipped r.
func (d *Dev) draw(r image.Rectangle, src image.Image, sp image.Point) error {
	bytesPP := d.bpp / 8
	for y := r.Min.Y; y < r.Max.Y; y++ {
		n := convertRow(d.row, d.bpp, src, sp.X, sp.Y+y-r.Min.Y, r.Dx())
		// int64 before multiplying: 32-bit ARM has a 32-bit int.
		off := int64(y)*int64(d.stride) + int64(r.Min.X*bytesPP)
		if _, err := d.f.WriteAt(d.row[:n], off); err != nil {
			return fmt.Errorf("fbdev: draw %v: row %d: %w", r, y, err)
		}
	}
	return nil
}

// Halt blanks the screen to black.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return ErrClosed
	}
	return d.blank()
}

// blank paints the whole screen black; the caller holds mu.
func (d *Dev) blank() error {
	if err := d.draw(d.rect, image.Black, image.Point{}); err != nil {
		return fmt.Errorf("fbdev: blank: %w", err)
	}
	return nil
}

// Close blanks the screen and closes the device. Later calls return
// ErrClosed.
func (d *Dev) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return ErrClosed
	}
	err := d.blank()
	if cerr := d.f.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("fbdev: %w", cerr))
	}
	d.f = nil
	return err
}

// convertRow writes n pixels of src's row y starting at x into buf in the
// framebuffer's format and returns the number of bytes written.
//
// *image.RGBA, what screen.Render produces, is read straight from its pixel
// slice; going through At would allocate for every pixel.
func convertRow(buf []byte, bpp int, src image.Image, x, y, n int) int {
	if s, ok := src.(*image.RGBA); ok {
		pix := s.Pix[s.PixOffset(x, y):]
		pix = pix[:4*n]
		if bpp == 16 {
			for i := 0; i < n; i++ {
				c := screen.ToRGB565(pix[4*i], pix[4*i+1], pix[4*i+2])
				buf[2*i], buf[2*i+1] = byte(c), byte(c>>8)
			}
			return 2 * n
		}
		for i := 0; i < n; i++ {
			buf[4*i], buf[4*i+1], buf[4*i+2], buf[4*i+3] = pix[4*i+2], pix[4*i+1], pix[4*i], 0xff
		}
		return 4 * n
	}
	for i := 0; i < n; i++ {
		r, g, b, _ := src.At(x+i, y).RGBA()
		if bpp == 16 {
			c := screen.ToRGB565(uint8(r>>8), uint8(g>>8), uint8(b>>8))
			buf[2*i], buf[2*i+1] = byte(c), byte(c>>8)
		} else {
			buf[4*i], buf[4*i+1], buf[4*i+2], buf[4*i+3] = uint8(b>>8), uint8(g>>8), uint8(r>>8), 0xff
		}
	}
	return n * bpp / 8
}

var _ display.Drawer = (*Dev)(nil)
