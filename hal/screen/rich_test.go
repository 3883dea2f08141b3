package screen

import (
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/hal"
)

func TestWrapPx(t *testing.T) {
	p := testFont(t).pen(textPx) // 16 px per Chinese character, 8 per Latin one
	tests := []struct {
		text  string
		width int
		want  []string
	}{
		{"扫码购物", 64, []string{"扫码购物"}},
		{"扫码购物", 48, []string{"扫码购", "物"}},
		// Closing punctuation stays with the character before it.
		{"未取商品，未扣款", 64, []string{"未取商", "品，未扣", "款"}},
		{"SCAN TO SHOP", 56, []string{"SCAN TO", "SHOP"}},
		{"a\nb c", 100, []string{"a", "b c"}},
		{"1号门已开锁", 48, []string{"1号门", "已开锁"}},
		{"ABCDEFGHIJ", 32, []string{"ABCD", "EFGH", "IJ"}},
		{"  spaced   out  ", 200, []string{"spaced   out"}},
	}
	for _, tt := range tests {
		if got := wrapPx(p, tt.text, tt.width); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("wrapPx(%q, %d) = %q, want %q", tt.text, tt.width, got, tt.want)
		}
	}
}

func TestFitText(t *testing.T) {
	p := testFont(t).pen(textPx)
	for _, tt := range []struct {
		text  string
		width int
		want  string
	}{
		{"四子王旗", 64, "四子王旗"},
		{"四子王旗手撕风干羊肉", 64, "四子王…"}, // "…" is 8 px wide in Unifont
		{"AB CD", 33, "AB…"},
		{"四子", 4, ""},
	} {
		if got := fitText(p, tt.text, tt.width); got != tt.want || p.width(got) > tt.width {
			t.Errorf("fitText(%q, %d) = %q (%d px), want %q", tt.text, tt.width, got, p.width(got), tt.want)
		}
	}
}

func TestFitReportsWhatIsCut(t *testing.T) {
	f := testFont(t)
	long := hal.Screen{Title: "谢谢惠顾", Status: "THANK YOU", Body: strings.Repeat("互助青稞米\t×2\t¥45.80\n", 20)}
	if err := Fit(long, 240, 240, f); err == nil || !strings.Contains(err.Error(), "lines dropped") {
		t.Errorf("Fit = %v, want lines dropped", err)
	}
	// What was cut ends in an ellipsis, and nothing is drawn off the glass.
	c := planColumn(long, 240, 240, f)
	if c.height() > 240-2*margin || !c.rows[len(c.rows)-1].cut {
		t.Errorf("column %d px tall, last row cut %v", c.height(), c.rows[len(c.rows)-1].cut)
	}
	tooBig := hal.Screen{Title: "扫码购物", QR: typicalURL + strings.Repeat("0123456789abcdef", 40), Status: "SCAN"}
	if err := Fit(tooBig, 120, 120, f); err == nil || !strings.Contains(err.Error(), "QR code does not fit") {
		t.Errorf("Fit = %v, want the QR code not fitting", err)
	}
	img := RenderFont(tooBig, 120, 120, f)
	if !hasInk(img, img.Rect) {
		t.Error("nothing drawn")
	}
	if err := Fit(hal.Screen{QR: typicalURL, Status: "SCAN TO SHOP"}, 240, 240, nil); err != nil {
		t.Errorf("plain screen: %v", err)
	}
	if err := Fit(hal.Screen{Status: strings.Repeat("word ", 100)}, 240, 240, nil); err == nil {
		t.Error("a capped status fits")
	}
	// Degenerate sizes draw without panicking.
	for _, sz := range []image.Point{{0, 0}, {-3, 5}, {10, 10}, {40, 400}} {
		RenderFont(long, sz.X, sz.Y, f)
		RenderFont(tooBig, sz.X, sz.Y, f)
	}
}

// The QR code keeps its whole-pixel modules and quiet zone under a title.
func TestRichQR(t *testing.T) {
	f := testFont(t)
	for _, sz := range []image.Point{{240, 240}, {240, 320}, {320, 240}, {128, 160}} {
		s := hal.Screen{Title: "扫码购物", QR: typicalURL, Status: "SCAN TO SHOP"}
		c := planColumn(s, sz.X, sz.Y, f)
		if c.modules == nil || c.scale < 1 {
			t.Fatalf("%v: no code planned", sz)
		}
		img := RenderFont(s, sz.X, sz.Y, f)
		y := max((sz.Y-c.height())/2, margin)
		for _, r := range c.rows {
			if r.qr {
				break
			}
			y += r.h + r.gap
		}
		y += groupGap // the code's own gap
		checkQR(t, img, layout{modules: c.modules, qrX: c.qrX, qrY: y, scale: c.scale})
	}
}

func TestLoadFont(t *testing.T) {
	if _, err := LoadFont(filepath.Join(t.TempDir(), "none.otf")); !errors.Is(err, ErrNoFont) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ParseFont("junk", []byte("not a font at all")); !errors.Is(err, ErrNoFont) {
		t.Errorf("junk: %v", err)
	}
	t.Setenv(FontEnv, "/elsewhere/font.ttf")
	if got := FontPath(); got != "/elsewhere/font.ttf" {
		t.Errorf("FontPath() = %q with %s set", got, FontEnv)
	}
	t.Setenv(FontEnv, "")
	if got := FontPath(); got != DefaultFontPath {
		t.Errorf("FontPath() = %q", got)
	}
}

// glass is a display.Drawer that keeps the last frame.
type glass struct {
	frames int
	last   *image.RGBA
}

func (g *glass) String() string          { return "glass" }
func (g *glass) ColorModel() color.Model { return color.RGBAModel }
func (g *glass) Bounds() image.Rectangle { return image.Rect(0, 0, 240, 240) }
func (g *glass) Halt() error             { return nil }
func (g *glass) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	g.frames++
	g.last = src.(*image.RGBA)
	return nil
}

// Without its font, the display shows the code and the English status,
// and says so once.
func TestDisplayWithoutFont(t *testing.T) {
	missing := errors.Join(ErrNoFont, os.ErrNotExist)
	prev := defaultFontFunc
	defaultFontFunc = func() (*Font, error) { return nil, missing }
	t.Cleanup(func() { defaultFontFunc = prev })

	g := &glass{}
	d := NewDisplay("test", g)
	s := hal.Screen{Title: "扫码购物", QR: typicalURL, Status: "SCAN TO SHOP"}
	if err := d.Show(t.Context(), s); !errors.Is(err, ErrNoFont) {
		t.Fatalf("Show = %v, want ErrNoFont", err)
	}
	if g.frames != 1 {
		t.Fatalf("%d frames drawn, want the fallback", g.frames)
	}
	want := RenderFont(hal.Screen{QR: s.QR, Status: s.Status}, 240, 240, nil)
	if !reflect.DeepEqual(g.last.Pix, want.Pix) {
		t.Error("the fallback is not the code and the status in the built-in font")
	}
	if err := d.Show(t.Context(), s); err != nil || g.frames != 1 {
		t.Fatalf("second Show = %v after %d frames, want nil and no redraw", err, g.frames)
	}
	if err := d.Show(t.Context(), hal.Screen{Title: "请稍候", Status: "PLEASE WAIT"}); err != nil || g.frames != 2 {
		t.Fatalf("next screen: Show = %v after %d frames, want nil: the missing font is told once", err, g.frames)
	}
	// Render falls back the same way.
	if got := Render(s, 240, 240); !reflect.DeepEqual(got.Pix, want.Pix) {
		t.Error("Render without the font is not the fallback")
	}
}
