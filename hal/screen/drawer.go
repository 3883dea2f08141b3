package screen

import (
	"context"
	"fmt"
	"image"
	"image/color"

	"periph.io/x/conn/v3/display"

	"github.com/bangfu/cabinet/hal"
)

// Display is a hal.Display on top of any periph display.Drawer (hal/st7789,
// hal/fbdev): it renders the hal.Screen with Render at the drawer's size and
// draws it in one call. All methods are safe for concurrent use.
//
// Show skips the redraw when the screen is unchanged since the last
// successful draw: the firmware re-shows its screen on every state pass, and
// a full frame over SPI takes tens of milliseconds.
type Display struct {
	name string
	d    display.Drawer

	// sem serialises drawing; a channel rather than a mutex so that Show can
	// give up waiting when its context ends.
	sem   chan struct{}
	shown hal.Screen // what is on the glass, when valid
	valid bool       // false after a failed draw or Halt: the glass is unknown
	// fontTold is set once Show has reported that the CJK font is missing.
	fontTold bool
}

// NewDisplay returns a Display named name (for logs; the drawer's own name
// when empty) drawing on d. Nothing is drawn until the first Show.
func NewDisplay(name string, d display.Drawer) *Display {
	if name == "" {
		name = d.String()
	}
	return &Display{name: name, d: d, sem: make(chan struct{}, 1)}
}

// Show renders s at the drawer's bounds and draws it, unless s is already
// showing. A draw that has started runs to its end: drawers take no context.
// When s needs the CJK font and it cannot be loaded, Show draws the code and
// the status and returns an error wrapping ErrNoFont, the first time only.
func (d *Display) Show(ctx context.Context, s hal.Screen) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("screen: %s: %w", d.name, err)
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("screen: %s: %w", d.name, ctx.Err())
	}
	defer func() { <-d.sem }()
	if d.valid && d.shown == s {
		return nil
	}
	b := d.d.Bounds()
	var f *Font
	var fontErr error
	if rich(s) {
		f, fontErr = defaultFontFunc()
	}
	img := RenderFont(s, b.Dx(), b.Dy(), f)
	if err := d.d.Draw(b, img, img.Rect.Min); err != nil {
		// The frame may be half drawn: the next Show must redraw.
		d.valid = false
		return fmt.Errorf("screen: %s: %w", d.name, err)
	}
	d.shown, d.valid = s, true
	if fontErr != nil && !d.fontTold {
		// Drawn without the Chinese text; said once, not on every screen.
		d.fontTold = true
		return fmt.Errorf("screen: %s: showing the English status only: %w", d.name, fontErr)
	}
	return nil
}

// String returns the display's name.
func (d *Display) String() string { return d.name }

// Halt halts the drawer (blank, backlight or panel off, as the driver does
// it). The next Show draws again whatever it is given.
func (d *Display) Halt() error {
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	d.valid = false
	if err := d.d.Halt(); err != nil {
		return fmt.Errorf("screen: %s: %w", d.name, err)
	}
	return nil
}

// RGB565 is a 16-bit colour as small TFT controllers and 16 bpp framebuffers
// store it: 5 bits of red in the top bits, 6 of green, 5 of blue. The byte
// order on the wire is the driver's business.
type RGB565 uint16

// ToRGB565 packs 8-bit channels, dropping their low bits. There is no
// dithering: what the cabinet shows is black and white.
func ToRGB565(r, g, b uint8) RGB565 {
	return RGB565(uint16(r)>>3<<11 | uint16(g)>>2<<5 | uint16(b)>>3)
}

// RGBA implements color.Color. Channels are widened by repeating their top
// bits so that full scale stays full scale (0x1f → 0xffff).
func (c RGB565) RGBA() (r, g, b, a uint32) {
	r5, g6, b5 := uint32(c>>11), uint32(c>>5)&0x3f, uint32(c)&0x1f
	r = (r5<<3 | r5>>2) * 0x101
	g = (g6<<2 | g6>>4) * 0x101
	b = (b5<<3 | b5>>2) * 0x101
	return r, g, b, 0xffff
}

// RGB565Model converts colours to RGB565. Translucent colours come out as
// drawn over black, which is what their premultiplied channels already are.
var RGB565Model = color.ModelFunc(func(c color.Color) color.Color {
	if c, ok := c.(RGB565); ok {
		return c
	}
	r, g, b, _ := c.RGBA()
	return ToRGB565(uint8(r>>8), uint8(g>>8), uint8(b>>8))
})

// Clip narrows a display.Drawer's Draw arguments to the pixels that exist
// both on the display (bounds) and in src, following image/draw's alignment:
// display point r.Min shows src point sp. It returns the display rectangle
// to update and the src point matching its top-left corner; the rectangle is
// empty when there is nothing to draw.
func Clip(bounds, r image.Rectangle, src image.Image, sp image.Point) (image.Rectangle, image.Point) {
	clipped := r.Intersect(bounds)
	sp = sp.Add(clipped.Min.Sub(r.Min))
	r = clipped
	sr := image.Rectangle{Min: sp, Max: sp.Add(r.Size())}.Intersect(src.Bounds())
	r = image.Rectangle{Min: r.Min.Add(sr.Min.Sub(sp)), Max: r.Min.Add(sr.Max.Sub(sp))}
	if r.Empty() {
		return image.Rectangle{}, image.Point{}
	}
	return r, sr.Min
}

var _ hal.Display = (*Display)(nil)
