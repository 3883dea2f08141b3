package screen

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"os"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// DefaultFontPath is the CJK font the display uses unless the environment
// variable FontEnv names another: GNU Unifont from Debian's fonts-unifont.
// Its outlines are its 16-pixel bitmap, so at 16 and 32 pixels every pixel
// is wholly ink or wholly paper: crisp on a small panel, and the same
// picture on every architecture.
const DefaultFontPath = "/usr/share/fonts/opentype/unifont/unifont.otf"

// FontEnv names the environment variable that overrides DefaultFontPath
// (an OpenType or TrueType file, or a collection: its first font). Fonts
// other than Unifont work too; their anti-aliasing is snapped to black and
// white, which suits a bitmap-designed font best.
const FontEnv = "BANGFU_DISPLAY_FONT"

// ErrNoFont means the CJK font could not be loaded: screens with a Title or
// Body then show only their QR code and English status.
var ErrNoFont = errors.New("screen: no CJK font")

// Font is a loaded outline font for the Chinese text. It is safe for
// concurrent use: every rendering makes its own faces.
type Font struct {
	name string
	f    *opentype.Font
}

// LoadFont loads the font file at path; a collection (.ttc) gives its
// first font. Errors wrap ErrNoFont.
func LoadFont(path string) (*Font, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoFont, err)
	}
	return ParseFont(path, data)
}

// ParseFont parses a font file's contents; name is for messages.
func ParseFont(name string, data []byte) (*Font, error) {
	var f *opentype.Font
	var err error
	if bytes.HasPrefix(data, []byte("ttcf")) {
		var c *opentype.Collection
		if c, err = opentype.ParseCollection(data); err == nil {
			f, err = c.Font(0)
		}
	} else {
		f, err = opentype.Parse(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoFont, name, err)
	}
	return &Font{name: name, f: f}, nil
}

// String names the font's file.
func (f *Font) String() string { return f.name }

var defaultFont struct {
	once sync.Once
	f    *Font
	err  error
}

// FontPath is the font DefaultFont loads: $BANGFU_DISPLAY_FONT when set,
// else DefaultFontPath.
func FontPath() string {
	if p := os.Getenv(FontEnv); p != "" {
		return p
	}
	return DefaultFontPath
}

// defaultFontFunc is what Render and Display use; tests replace it.
var defaultFontFunc = DefaultFont

// DefaultFont loads the font at FontPath once and returns it, or the error
// of that one attempt (wrapping ErrNoFont) on every call.
func DefaultFont() (*Font, error) {
	defaultFont.once.Do(func() {
		defaultFont.f, defaultFont.err = LoadFont(FontPath())
		if defaultFont.err != nil {
			defaultFont.err = fmt.Errorf("%w (install fonts-unifont or set %s)", defaultFont.err, FontEnv)
		}
	})
	return defaultFont.f, defaultFont.err
}

// pen draws one size of one font: the outline font, or the built-in one.
type pen interface {
	// height is a line's height in pixels.
	height() int
	// width is line's width in pixels.
	width(line string) int
	// draw draws line with its top-left corner at (x, y), clipped to img.
	draw(img *image.RGBA, line string, x, y int)
	// has reports whether the pen can draw r.
	has(r rune) bool
}

// builtinPen is the built-in 5×7 font at a whole scale.
type builtinPen struct{ s int }

func (p builtinPen) height() int                                 { return glyphH * p.s }
func (p builtinPen) width(line string) int                       { return textWidth(line, p.s) }
func (p builtinPen) draw(img *image.RGBA, line string, x, y int) { drawText(img, line, x, y, p.s) }
func (p builtinPen) has(r rune) bool {
	_, ok := glyphs[r]
	if !ok && r < 0x80 {
		_, ok = glyphs[toUpperASCII(r)]
	}
	return ok
}

func toUpperASCII(r rune) rune {
	if r >= 'a' && r <= 'z' {
		return r - 'a' + 'A'
	}
	return r
}

// outlinePen is the outline font at a pixel size. Glyphs are placed at
// whole pixels and their coverage is snapped to black or white (at or
// above one half is ink), so the display stays two-coloured.
type outlinePen struct {
	face   font.Face
	f      *opentype.Font
	buf    sfnt.Buffer
	px     int
	ascent int
}

// pen returns f at px pixels per em. A face keeps scratch buffers: each
// rendering takes its own.
func (f *Font) pen(px int) *outlinePen {
	face, err := opentype.NewFace(f.f, &opentype.FaceOptions{Size: float64(px), DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		// Only a non-positive size fails, which callers never ask for.
		panic("screen: " + err.Error())
	}
	m := face.Metrics()
	return &outlinePen{face: face, f: f.f, px: px, ascent: m.Ascent.Ceil()}
}

func (p *outlinePen) height() int { return p.px }

func (p *outlinePen) width(line string) int {
	var w fixed.Int26_6
	for _, r := range line {
		w += p.advance(r)
	}
	return w.Ceil()
}

func (p *outlinePen) advance(r rune) fixed.Int26_6 {
	if !p.has(r) {
		r = replacement
	}
	a, _ := p.face.GlyphAdvance(r)
	return a
}

// replacement stands in for a character the font lacks.
const replacement = '□'

func (p *outlinePen) has(r rune) bool {
	i, err := p.f.GlyphIndex(&p.buf, r)
	return err == nil && i != 0
}

func (p *outlinePen) draw(img *image.RGBA, line string, x, y int) {
	dot := fixed.P(x, y+p.ascent)
	for _, r := range line {
		if !p.has(r) {
			r = replacement
		}
		dr, mask, mp, adv, ok := p.face.Glyph(dot, r)
		if ok {
			clip := dr.Intersect(img.Rect)
			for py := clip.Min.Y; py < clip.Max.Y; py++ {
				for px := clip.Min.X; px < clip.Max.X; px++ {
					_, _, _, a := mask.At(mp.X+px-dr.Min.X, mp.Y+py-dr.Min.Y).RGBA()
					if a >= 0x8000 {
						fill(img, image.Rect(px, py, px+1, py+1), black)
					}
				}
			}
		}
		dot.X += adv
	}
}
