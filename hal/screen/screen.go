// Package screen renders what the cabinet's display shows (a hal.Screen: a
// QR code and short status text, and optionally a Chinese title and body)
// into an image, for framebuffer and SPI display drivers and for the
// simulator's PNG view.
//
// screen owns the layout, the QR rasterisation, a tiny built-in bitmap font
// for the English status, and the loading of the CJK font for the Chinese
// text (DefaultFontPath, overridden by $BANGFU_DISPLAY_FONT; see cjk.go). It
// must not touch display hardware, decide what the screen says or build the
// QR payload (payment does that).
//
// A screen without a Title or Body is drawn as it always was: the code and
// the status in the built-in font. One with them is drawn as a column in
// the CJK font (rich.go); when that font cannot be loaded it falls back to
// the code and the status in the built-in font, and Display.Show reports
// ErrNoFont once.
//
// Every pixel is black or white, on every architecture: the CJK font's
// coverage is snapped, and the default font (Unifont) is pixel-aligned at
// the sizes used, so golden images match exactly under qemu-arm too.
//
// The QR code is drawn at the largest whole number of pixels per module that
// fits, with a white quiet zone of at least four modules: scanners in shops
// fail on blurred or fractional modules long before they fail on small ones.
package screen

import (
	"image"
	"image/color"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/bangfu/cabinet/hal"
)

// QuietZone is the white border, in modules, kept around the QR code.
const QuietZone = 4

// margin is the blank space, in pixels, between the QR code, the text and the
// screen's edges.
const margin = 4

// maxTextLines caps the status text so that it cannot squeeze the QR code
// away; the status is meant to be one or two short lines.
const maxTextLines = 4

// qrErrorText is shown instead of a QR code that cannot be drawn.
const qrErrorText = "QR CODE UNAVAILABLE"

var (
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	black = color.RGBA{0, 0, 0, 0xff}
)

// layout is where Render puts things; tests check the image against it.
type layout struct {
	modules  [][]bool // QR modules including the quiet zone; nil for no code
	qrX, qrY int      // top-left pixel of the quiet zone
	scale    int      // pixels per module
	lines    []string // status text, wrapped
	textS    int      // pixels per font pixel
	textY    int      // top pixel of the first text line
}

// Render draws s on a white width×height image: the QR code centred at an
// integer module scale, the status text centred below it. An empty QR shows
// only the text; a QR that cannot be encoded or does not fit is replaced by a
// notice so that the status still shows. A screen with a Title or Body is
// drawn with DefaultFont, or without it (code and status only) when it
// cannot be loaded.
func Render(s hal.Screen, width, height int) *image.RGBA {
	var f *Font
	if rich(s) {
		f, _ = defaultFontFunc()
	}
	return RenderFont(s, width, height, f)
}

// RenderFont is Render with the CJK font f; nil draws the code and the
// status only, in the built-in font.
func RenderFont(s hal.Screen, width, height int, f *Font) *image.RGBA {
	width, height = max(width, 0), max(height, 0)
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Rect, white)
	if rich(s) && f != nil {
		renderColumn(img, planColumn(s, width, height, f))
		return img
	}
	l := plan(s, width, height)
	for my, row := range l.modules {
		for mx, on := range row {
			if on {
				fill(img, image.Rect(l.qrX+mx*l.scale, l.qrY+my*l.scale,
					l.qrX+(mx+1)*l.scale, l.qrY+(my+1)*l.scale), black)
			}
		}
	}
	lineH := (glyphH + lineGap) * l.textS
	for i, line := range l.lines {
		w := textWidth(line, l.textS)
		drawText(img, line, (width-w)/2, l.textY+i*lineH, l.textS)
	}
	return img
}

// plan lays s out on a width×height screen.
func plan(s hal.Screen, width, height int) layout {
	var l layout
	status := s.Status
	if s.QR != "" {
		mods, err := qrModules(s.QR)
		if err != nil {
			status = joinLines(qrErrorText, status)
		} else {
			l.modules = mods
		}
	}
	l.lines, l.textS = wrapText(status, width-2*margin)
	textH := 0
	if n := len(l.lines); n > 0 {
		textH = n*glyphH*l.textS + (n-1)*lineGap*l.textS
	}
	if l.modules != nil {
		room := height - 2*margin
		if textH > 0 {
			room -= textH + margin
		}
		n := len(l.modules)
		l.scale = min(width, room) / n
		if l.scale < 1 {
			// Too big for this screen even at one pixel per module.
			return plan(hal.Screen{Status: joinLines(qrErrorText, s.Status)}, width, height)
		}
		px := n * l.scale
		block := px
		if textH > 0 {
			block += margin + textH
		}
		l.qrX = (width - px) / 2
		l.qrY = (height - block) / 2
		l.textY = l.qrY + px + margin
		return l
	}
	l.textY = (height - textH) / 2
	return l
}

// qrModules encodes text and returns its modules with a quiet zone of
// QuietZone modules. go-qrcode's own border is disabled and added here, so
// the quiet zone does not depend on the library's choice.
func qrModules(text string) ([][]bool, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, err
	}
	q.DisableBorder = true
	bm := q.Bitmap()
	n := len(bm) + 2*QuietZone
	mods := make([][]bool, n)
	for y := range mods {
		mods[y] = make([]bool, n)
		if y >= QuietZone && y < n-QuietZone {
			copy(mods[y][QuietZone:], bm[y-QuietZone])
		}
	}
	return mods, nil
}

func joinLines(a, b string) string {
	if b == "" {
		return a
	}
	return a + "\n" + b
}

// wrapText breaks status into lines that fit width pixels, using the largest
// font scale (2 or 1) that needs no more than two lines. Lines beyond
// maxTextLines are dropped and the last kept line ends in "...".
func wrapText(status string, width int) ([]string, int) {
	status = strings.TrimSpace(status)
	if status == "" || width < glyphW {
		return nil, 1
	}
	if lines := wrap(status, cols(width, 2)); len(lines) <= 2 {
		return lines, 2
	}
	lines := wrap(status, cols(width, 1))
	if len(lines) > maxTextLines {
		lines = lines[:maxTextLines]
		last := []rune(lines[maxTextLines-1])
		c := cols(width, 1)
		if len(last) > c-3 {
			last = last[:max(c-3, 0)]
		}
		lines[maxTextLines-1] = string(last) + "..."
	}
	return lines, 1
}

// cols is how many characters fit width pixels at font scale s.
func cols(width, s int) int {
	// The last character needs no spacing column after it.
	return max((width+s)/(advanceX*s), 1)
}

// wrap breaks text at spaces into lines of at most n characters, splitting
// words longer than a line, and keeps explicit line breaks.
func wrap(text string, n int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		var line []rune
		for _, word := range strings.Fields(para) {
			w := []rune(word)
			for len(w) > 0 {
				switch {
				case len(line) == 0 && len(w) <= n:
					line, w = w, nil
				case len(line) > 0 && len(line)+1+len(w) <= n:
					line = append(append(line, ' '), w...)
					w = nil
				case len(line) > 0:
					lines = append(lines, string(line))
					line = nil
				default: // a word longer than a whole line
					lines = append(lines, string(w[:n]))
					w = w[n:]
				}
			}
		}
		if len(line) > 0 {
			lines = append(lines, string(line))
		}
	}
	return lines
}

// textWidth is the width in pixels of line at font scale s.
func textWidth(line string, s int) int {
	n := len([]rune(line))
	if n == 0 {
		return 0
	}
	return (n*advanceX - 1) * s
}

// drawText draws line with its top-left corner at (x, y), s pixels per font
// pixel, clipped to img.
func drawText(img *image.RGBA, line string, x, y, s int) {
	for _, r := range line {
		g := glyphFor(r)
		for gy := range glyphH {
			for gx := range glyphW {
				if g.set(gx, gy) {
					fill(img, image.Rect(x+gx*s, y+gy*s, x+(gx+1)*s, y+(gy+1)*s), black)
				}
			}
		}
		x += advanceX * s
	}
}

// fill paints r (clipped to img) with c.
func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		off := img.PixOffset(r.Min.X, y)
		for x := r.Min.X; x < r.Max.X; x++ {
			img.Pix[off+0] = c.R
			img.Pix[off+1] = c.G
			img.Pix[off+2] = c.B
			img.Pix[off+3] = c.A
			off += 4
		}
	}
}
