package screen

import (
	"fmt"
	"image"
	"reflect"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/hal"
)

const typicalURL = "https://pay.bangfu.example/q?c=NM-150102-0007&n=8f3a2c91d0b64e7a&t=1741766400&s=9c1f0e7b2a4d6c8e0f1a3b5c7d9e1f20"

func TestQRModulesAreWholePixels(t *testing.T) {
	payloads := []struct{ name, qr string }{
		{"short", "https://b.example/q?c=1"},
		{"typical", typicalURL},
		{"long", typicalURL + "&x=" + strings.Repeat("0123456789abcdef", 40)},
	}
	sizes := []image.Point{{240, 320}, {320, 240}, {128, 160}, {480, 800}}
	for _, p := range payloads {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", p.name, sz.X, sz.Y), func(t *testing.T) {
				s := hal.Screen{QR: p.qr, Status: "Scan to open - 3 min"}
				l := plan(s, sz.X, sz.Y)
				if l.modules == nil || l.scale < 1 {
					t.Fatalf("no QR code planned (scale %d)", l.scale)
				}
				img := Render(s, sz.X, sz.Y)
				checkQR(t, img, l)
				n := len(l.modules)
				room := sz.Y - 2*margin - (len(l.lines)*(glyphH+lineGap)-lineGap)*l.textS - margin
				if (l.scale+1)*n <= min(sz.X, room) {
					t.Errorf("scale %d is not the largest that fits (%d modules, room %dx%d)", l.scale, n, sz.X, room)
				}
				if l.textY < l.qrY+n*l.scale {
					t.Errorf("text at y=%d overlaps the QR code ending at y=%d", l.textY, l.qrY+n*l.scale)
				}
				if last := l.textY + (len(l.lines)*(glyphH+lineGap)-lineGap)*l.textS; last > sz.Y {
					t.Errorf("text ends at y=%d, below the screen", last)
				}
				if len(l.lines) == 0 || !hasInk(img, image.Rect(0, l.textY, sz.X, sz.Y)) {
					t.Error("status text missing")
				}
			})
		}
	}
}

// checkQR checks img against the planned modules and, independently, reads
// the module size back from the top-left finder pattern.
func checkQR(t *testing.T, img *image.RGBA, l layout) {
	t.Helper()
	n, s := len(l.modules), l.scale
	block := image.Rect(l.qrX, l.qrY, l.qrX+n*s, l.qrY+n*s)
	if !block.In(img.Rect) {
		t.Fatalf("QR block %v outside image %v", block, img.Rect)
	}
	for my, row := range l.modules {
		for mx, on := range row {
			want := white
			if on {
				want = black
			}
			for y := l.qrY + my*s; y < l.qrY+(my+1)*s; y++ {
				for x := l.qrX + mx*s; x < l.qrX+(mx+1)*s; x++ {
					if got := img.RGBAAt(x, y); got != want {
						t.Fatalf("module (%d,%d) pixel (%d,%d) = %v, want %v", mx, my, x, y, got, want)
					}
				}
			}
		}
	}
	// The quiet zone: QuietZone modules of white on every side.
	for i := range n {
		for q := range QuietZone {
			for _, m := range [][2]int{{i, q}, {i, n - 1 - q}, {q, i}, {n - 1 - q, i}} {
				if l.modules[m[1]][m[0]] {
					t.Fatalf("quiet-zone module (%d,%d) is dark", m[0], m[1])
				}
			}
		}
	}
	if hasInk(img, image.Rect(l.qrX, l.qrY, l.qrX+n*s, l.qrY+QuietZone*s)) ||
		hasInk(img, image.Rect(l.qrX, l.qrY, l.qrX+QuietZone*s, l.qrY+n*s)) {
		t.Fatal("ink in the quiet zone")
	}
	// From pixels alone: the finder pattern starts after the quiet zone and
	// its top edge is a run of exactly 7 modules.
	fy := l.qrY + QuietZone*s
	fx := l.qrX + QuietZone*s
	if img.RGBAAt(fx, fy) != black || img.RGBAAt(fx-1, fy) != white || img.RGBAAt(fx, fy-1) != white {
		t.Fatalf("finder pattern does not start at (%d,%d)", fx, fy)
	}
	run := 0
	for x := fx; img.RGBAAt(x, fy) == black; x++ {
		run++
	}
	if run != 7*s {
		t.Errorf("finder edge is %d px, want 7 modules of %d px", run, s)
	}
}

func hasInk(img *image.RGBA, r image.Rectangle) bool {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if img.RGBAAt(x, y) != white {
				return true
			}
		}
	}
	return false
}

// inkBounds is the bounding box of every non-white pixel.
func inkBounds(img *image.RGBA) image.Rectangle {
	var b image.Rectangle
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			if img.RGBAAt(x, y) != white {
				b = b.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return b
}

func TestOnlyBlackAndWhite(t *testing.T) {
	img := Render(hal.Screen{QR: typicalURL, Status: "Door open. Take what you need."}, 240, 320)
	for y := range 320 {
		for x := range 240 {
			if c := img.RGBAAt(x, y); c != white && c != black {
				t.Fatalf("pixel (%d,%d) = %v", x, y, c)
			}
		}
	}
}

func TestNoQR(t *testing.T) {
	tests := []struct {
		name      string
		s         hal.Screen
		wantLines []string
	}{
		{"empty QR shows only text", hal.Screen{Status: "Out of service"}, []string{"Out of service"}},
		{"QR too long to encode", hal.Screen{QR: strings.Repeat("x", 4000), Status: "Closed"},
			[]string{qrErrorText, "Closed"}},
		{"blank screen", hal.Screen{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := plan(tt.s, 240, 320)
			if l.modules != nil {
				t.Fatal("a QR code was planned")
			}
			if !reflect.DeepEqual(l.lines, tt.wantLines) {
				t.Errorf("lines = %q, want %q", l.lines, tt.wantLines)
			}
			img := Render(tt.s, 240, 320)
			ink := inkBounds(img)
			if tt.wantLines == nil {
				if !ink.Empty() {
					t.Errorf("blank screen has ink at %v", ink)
				}
				return
			}
			textH := (len(l.lines)*(glyphH+lineGap) - lineGap) * l.textS
			if ink.Min.Y < l.textY || ink.Max.Y > l.textY+textH {
				t.Errorf("ink %v outside the text band y=%d…%d", ink, l.textY, l.textY+textH)
			}
			// Centred: equal space above and below, within a pixel.
			if d := ink.Min.Y - (320 - ink.Max.Y); d < -2 || d > 2 {
				t.Errorf("text not centred vertically: ink %v", ink)
			}
		})
	}
}

func TestQRDoesNotFit(t *testing.T) {
	long := typicalURL + strings.Repeat("0123456789abcdef", 40)
	l := plan(hal.Screen{QR: long, Status: "ok"}, 60, 60)
	if l.modules != nil {
		t.Fatal("planned a QR code larger than the screen")
	}
	if len(l.lines) == 0 || !strings.HasPrefix(qrErrorText, l.lines[0]) {
		t.Errorf("lines = %q, want the notice first", l.lines)
	}
	Render(hal.Screen{QR: long}, 60, 60)
	Render(hal.Screen{QR: long, Status: "x"}, 0, 0)
	Render(hal.Screen{QR: long, Status: "x"}, -5, 3)
}

func TestDrawText(t *testing.T) {
	for _, s := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("scale %d", s), func(t *testing.T) {
			img := image.NewRGBA(image.Rect(0, 0, 40, 30))
			fill(img, img.Rect, white)
			drawText(img, "1a", 2, 3, s)
			one, a := glyphSrc['1'], glyphSrc['A']
			for y := range img.Rect.Dy() {
				for x := range img.Rect.Dx() {
					want := false
					gx, gy := (x-2)/s, (y-3)/s
					if x >= 2 && y >= 3 && gy < glyphH {
						switch {
						case gx < glyphW:
							want = one[gy][gx] == '#'
						case gx >= advanceX && gx < advanceX+glyphW:
							want = a[gy][gx-advanceX] == '#'
						}
					}
					if got := img.RGBAAt(x, y) == black; got != want {
						t.Fatalf("pixel (%d,%d) ink %v, want %v", x, y, got, want)
					}
				}
			}
		})
	}
}

func TestFont(t *testing.T) {
	for _, r := range "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ .,:;!?-+/()[]'\"%#*=_<>@&$¥" {
		if _, ok := glyphs[r]; !ok {
			t.Errorf("no glyph for %q", r)
		}
	}
	for r := 'a'; r <= 'z'; r++ {
		if glyphFor(r) != glyphFor(r-'a'+'A') {
			t.Errorf("%q does not map to upper case", r)
		}
	}
	for _, r := range "柜€\x00é" {
		if glyphFor(r) != boxGlyph {
			t.Errorf("%q is not drawn as a box", r)
		}
	}
	seen := map[glyph]rune{boxGlyph: '□'}
	for r, g := range glyphs {
		if o, dup := seen[g]; dup {
			t.Errorf("%q and %q share a glyph", r, o)
		}
		seen[g] = r
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		text string
		n    int
		want []string
	}{
		{"Scan to open", 20, []string{"Scan to open"}},
		{"Scan to open", 8, []string{"Scan to", "open"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"a\nb c", 10, []string{"a", "b c"}},
		{"  spaced   out  ", 20, []string{"spaced out"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.text, tt.n), func(t *testing.T) {
			if got := wrap(tt.text, tt.n); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("wrap = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLongStatusIsCapped(t *testing.T) {
	lines, s := wrapText(strings.Repeat("word ", 100), 232)
	if s != 1 || len(lines) != maxTextLines || !strings.HasSuffix(lines[maxTextLines-1], "...") {
		t.Errorf("lines = %q at scale %d", lines, s)
	}
	for _, l := range lines {
		if textWidth(l, s) > 232 {
			t.Errorf("line %q is %d px wide", l, textWidth(l, s))
		}
	}
}
