package fbdev

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bangfu/cabinet/hal/screen"
)

// fakeFB makes a sysfs directory and a zero-filled device file for a
// framebuffer of the given geometry and returns the Opts that point at them.
func fakeFB(t *testing.T, w, h, bpp, stride int) (Opts, string) {
	t.Helper()
	root := t.TempDir()
	sys := filepath.Join(root, "sys", "fb1")
	if err := os.MkdirAll(sys, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, v := range map[string]string{
		"virtual_size":   fmt.Sprintf("%d,%d\n", w, h),
		"bits_per_pixel": fmt.Sprintf("%d\n", bpp),
		"stride":         fmt.Sprintf("%d\n", stride),
	} {
		if err := os.WriteFile(filepath.Join(sys, file), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev := filepath.Join(root, "fb1")
	if err := os.WriteFile(dev, make([]byte, stride*h), 0o644); err != nil {
		t.Fatal(err)
	}
	return Opts{SysfsRoot: filepath.Join(root, "sys"), DevPath: dev}, dev
}

func readFB(t *testing.T, dev string) []byte {
	t.Helper()
	b, err := os.ReadFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pattern's pixel (x, y) is a colour made from its coordinates.
func pattern(r image.Rectangle) *image.RGBA {
	img := image.NewRGBA(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 9), uint8(y * 5), uint8(x ^ y), 0xff})
		}
	}
	return img
}

func TestPixelBytes(t *testing.T) {
	red := color.RGBA{0xff, 0, 0, 0xff}
	blue := color.RGBA{0, 0, 0xff, 0xff}
	tests := []struct {
		name        string
		bpp, stride int
		redBytes    []byte
		blueBytes   []byte
	}{
		// RGB565 little-endian: red 0xF800 is 00 F8; blue 0x001F is 1F 00.
		{"16 bpp", 16, 8 * 2, []byte{0x00, 0xF8}, []byte{0x1F, 0x00}},
		{"16 bpp padded stride", 16, 32, []byte{0x00, 0xF8}, []byte{0x1F, 0x00}},
		// XRGB8888 little-endian is B, G, R, X in memory.
		{"32 bpp", 32, 8 * 4, []byte{0x00, 0x00, 0xFF, 0xFF}, []byte{0xFF, 0x00, 0x00, 0xFF}},
		{"32 bpp padded stride", 32, 8*4 + 24, []byte{0x00, 0x00, 0xFF, 0xFF}, []byte{0xFF, 0x00, 0x00, 0xFF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, dev := fakeFB(t, 8, 4, tt.bpp, tt.stride)
			d, err := Open("fb1", &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			img := image.NewRGBA(image.Rect(0, 0, 8, 4))
			for y := range 4 {
				for x := range 8 {
					c := blue
					if x == y || (x == 7 && y == 3) {
						c = red
					}
					img.SetRGBA(x, y, c)
				}
			}
			if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
				t.Fatal(err)
			}
			fb := readFB(t, dev)
			bpp := tt.bpp / 8
			for y := range 4 {
				for x := range 8 {
					want := tt.blueBytes
					if x == y || (x == 7 && y == 3) {
						want = tt.redBytes
					}
					off := y*tt.stride + x*bpp
					if got := fb[off : off+bpp]; !bytes.Equal(got, want) {
						t.Errorf("pixel (%d,%d) at offset %d = % X, want % X", x, y, off, got, want)
					}
				}
				// Padding past the last pixel of a row stays untouched.
				for i := y*tt.stride + 8*bpp; i < (y+1)*tt.stride; i++ {
					if fb[i] != 0 {
						t.Fatalf("padding byte %d of row %d written", i, y)
					}
				}
			}
		})
	}
}

func TestPartialDraw(t *testing.T) {
	const w, h = 20, 10
	src := pattern(image.Rect(-4, -4, 40, 40))
	tests := []struct {
		name    string
		r       image.Rectangle
		src     image.Image
		sp      image.Point
		wantDst image.Rectangle // screen pixels written
		wantSrc image.Point     // source pixel shown at wantDst.Min
	}{
		{"window", image.Rect(3, 2, 9, 5), src, image.Pt(10, 11), image.Rect(3, 2, 9, 5), image.Pt(10, 11)},
		{"clipped right and bottom", image.Rect(15, 7, 30, 30), src, image.Pt(0, 0), image.Rect(15, 7, 20, 10), image.Pt(0, 0)},
		{"clipped left and top", image.Rect(-3, -2, 4, 3), src, image.Pt(0, 0), image.Rect(0, 0, 4, 3), image.Pt(3, 2)},
		{"clipped to the source", image.Rect(0, 0, 20, 10), src.SubImage(image.Rect(2, 3, 7, 5)), image.Pt(2, 3), image.Rect(0, 0, 5, 2), image.Pt(2, 3)},
		{"off screen", image.Rect(20, 0, 30, 10), src, image.Pt(0, 0), image.Rectangle{}, image.Point{}},
	}
	for _, bpp := range []int{16, 32} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%d bpp/%s", bpp, tt.name), func(t *testing.T) {
				stride := w*bpp/8 + 12
				opts, dev := fakeFB(t, w, h, bpp, stride)
				d, err := Open("fb1", &opts)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				if err := d.Draw(tt.r, tt.src, tt.sp); err != nil {
					t.Fatal(err)
				}
				fb := readFB(t, dev)
				B := bpp / 8
				for y := range h {
					for x := range w {
						off := y*stride + x*B
						got := fb[off : off+B]
						want := make([]byte, B)
						if p := image.Pt(x, y); p.In(tt.wantDst) {
							c := src.RGBAAt(tt.wantSrc.X+x-tt.wantDst.Min.X, tt.wantSrc.Y+y-tt.wantDst.Min.Y)
							want = pixelBytes(bpp, c)
						}
						if !bytes.Equal(got, want) {
							t.Fatalf("pixel (%d,%d) = % X, want % X", x, y, got, want)
						}
					}
				}
			})
		}
	}
}

// pixelBytes is c as the framebuffer stores it, built independently of the
// driver's conversion.
func pixelBytes(bpp int, c color.RGBA) []byte {
	if bpp == 32 {
		return []byte{c.B, c.G, c.R, 0xFF}
	}
	v := uint16(c.R>>3)<<11 | uint16(c.G>>2)<<5 | uint16(c.B>>3)
	return []byte{byte(v), byte(v >> 8)}
}

func TestGenericSource(t *testing.T) {
	for _, bpp := range []int{16, 32} {
		t.Run(fmt.Sprint(bpp), func(t *testing.T) {
			opts, dev := fakeFB(t, 4, 2, bpp, 4*bpp/8)
			d, err := Open("fb1", &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			c := color.RGBA{0x12, 0x34, 0x56, 0xff}
			if err := d.Draw(d.Bounds(), &image.Uniform{C: c}, image.Point{}); err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat(pixelBytes(bpp, c), 8)
			if got := readFB(t, dev); !bytes.Equal(got, want) {
				t.Errorf("frame = % X, want % X", got, want)
			}
		})
	}
}

func TestHaltAndClose(t *testing.T) {
	opts, dev := fakeFB(t, 6, 3, 32, 6*4+8)
	d, err := Open("fb1", &opts)
	if err != nil {
		t.Fatal(err)
	}
	img := pattern(image.Rect(0, 0, 6, 3))
	check := func(want func(x, y int) []byte) {
		t.Helper()
		fb := readFB(t, dev)
		for y := range 3 {
			for x := range 6 {
				off := y*(6*4+8) + x*4
				if got := fb[off : off+4]; !bytes.Equal(got, want(x, y)) {
					t.Fatalf("pixel (%d,%d) = % X, want % X", x, y, got, want(x, y))
				}
			}
		}
	}
	black := func(x, y int) []byte { return []byte{0, 0, 0, 0xFF} }
	drawn := func(x, y int) []byte { return pixelBytes(32, img.RGBAAt(x, y)) }

	if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	check(drawn)
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	check(black)
	if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	check(drawn)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	check(black)
	for name, err := range map[string]error{
		"Draw":  d.Draw(d.Bounds(), img, image.Point{}),
		"Halt":  d.Halt(),
		"Close": d.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) (string, Opts)
		want    error
		wantMsg string
	}{
		{"missing device", func(t *testing.T) (string, Opts) {
			o, dev := fakeFB(t, 8, 4, 16, 16)
			if err := os.Remove(dev); err != nil {
				t.Fatal(err)
			}
			return "fb1", o
		}, ErrNoDevice, "overlay enabled in config.txt"},
		{"missing sysfs entry", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 16, 16)
			return "fb7", o
		}, ErrNoDevice, "overlay enabled in config.txt"},
		{"not a framebuffer name", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 16, 16)
			return "ttyS0", o
		}, ErrNoDevice, "not a framebuffer"},
		{"24 bpp", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 24, 24)
			return "fb1", o
		}, ErrUnsupported, "24 bits per pixel"},
		{"8 bpp", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 8, 8)
			return "fb1", o
		}, ErrUnsupported, "8 bits per pixel"},
		{"stride too small", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 32, 16)
			return "fb1", o
		}, ErrUnsupported, "stride 16"},
		{"bad virtual_size", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 16, 16)
			writeSys(t, o, "virtual_size", "8x4\n")
			return "fb1", o
		}, ErrUnsupported, "virtual_size"},
		{"zero height", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 16, 16)
			writeSys(t, o, "virtual_size", "8,0\n")
			return "fb1", o
		}, ErrUnsupported, "virtual_size"},
		{"bad stride", func(t *testing.T) (string, Opts) {
			o, _ := fakeFB(t, 8, 4, 16, 16)
			writeSys(t, o, "stride", "lots\n")
			return "fb1", o
		}, ErrUnsupported, "stride"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, o := tt.setup(t)
			d, err := Open(name, &o)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) || !strings.HasPrefix(err.Error(), "fbdev: ") {
				t.Errorf("Open = %q, want %v mentioning %q", err, tt.want, tt.wantMsg)
			}
		})
	}
}

func writeSys(t *testing.T, o Opts, file, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(o.SysfsRoot, "fb1", file), []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDevicePathFromName(t *testing.T) {
	o, dev := fakeFB(t, 8, 4, 16, 16)
	// A /dev-style path: its base name finds sysfs, the path is opened.
	d, err := Open(dev, &Opts{SysfsRoot: o.SysfsRoot})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.String(); got != "fbdev(fb1, 8x4, 16 bpp)" {
		t.Errorf("String = %q", got)
	}
	if d.Bounds() != image.Rect(0, 0, 8, 4) {
		t.Errorf("Bounds = %v", d.Bounds())
	}
	if d.ColorModel() != screen.RGB565Model {
		t.Error("16 bpp colour model is not RGB565")
	}
	// A bare name under DevDir.
	d2, err := Open("fb1", &Opts{SysfsRoot: o.SysfsRoot, DevDir: filepath.Dir(dev)})
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
}

func TestConcurrentDraws(t *testing.T) {
	const w, h = 16, 8
	opts, dev := fakeFB(t, w, h, 16, w*2)
	d, err := Open("fb1", &opts)
	if err != nil {
		t.Fatal(err)
	}
	img := pattern(image.Rect(0, 0, w, h))
	var wg sync.WaitGroup
	for i := range h {
		wg.Go(func() {
			r := image.Rect(0, i, w, i+1)
			if err := d.Draw(r, img, r.Min); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	fb := readFB(t, dev)
	for y := range h {
		for x := range w {
			off := y*w*2 + x*2
			if want := pixelBytes(16, img.RGBAAt(x, y)); !bytes.Equal(fb[off:off+2], want) {
				t.Fatalf("pixel (%d,%d) = % X, want % X", x, y, fb[off:off+2], want)
			}
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
