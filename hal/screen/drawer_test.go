package screen_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/screen"
	"github.com/bangfu/cabinet/hal/st7789"
)

const payURL = "https://pay.bangfu.example/q?c=NM-150102-0007&n=8f3a2c91d0b64e7a&t=1741766400"

// fakeDrawer is a display.Drawer that keeps a copy of every image drawn and
// fails on purpose when told to.
type fakeDrawer struct {
	bounds image.Rectangle

	mu      sync.Mutex
	frames  []*image.RGBA // what the glass showed after each Draw
	rects   []image.Rectangle
	halts   int
	drawErr error
	haltErr error
	inside  atomic.Int32  // Draw calls running now
	overlap atomic.Bool   // two Draws ran at once
	block   chan struct{} // when not nil, Draw waits for it
	entered chan struct{} // when not nil, Draw signals here on entry
}

func (f *fakeDrawer) String() string          { return "fake" }
func (f *fakeDrawer) ColorModel() color.Model { return color.RGBAModel }
func (f *fakeDrawer) Bounds() image.Rectangle { return f.bounds }

func (f *fakeDrawer) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	if f.inside.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.inside.Add(-1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drawErr != nil {
		return f.drawErr
	}
	glass := image.NewRGBA(f.bounds)
	draw.Draw(glass, r, src, sp, draw.Src)
	f.frames = append(f.frames, glass)
	f.rects = append(f.rects, r)
	return nil
}

func (f *fakeDrawer) Halt() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.halts++
	return f.haltErr
}

func (f *fakeDrawer) count() (frames, halts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.frames), f.halts
}

var _ display.Drawer = (*fakeDrawer)(nil)

// sameImage reports whether glass shows want, which starts at the origin,
// at glass's own origin.
func sameImage(glass, want *image.RGBA) error {
	if glass.Rect.Size() != want.Rect.Size() {
		return fmt.Errorf("size %v, want %v", glass.Rect.Size(), want.Rect.Size())
	}
	for y := range want.Rect.Dy() {
		for x := range want.Rect.Dx() {
			g := glass.RGBAAt(glass.Rect.Min.X+x, glass.Rect.Min.Y+y)
			if w := want.RGBAAt(x, y); g != w {
				return fmt.Errorf("pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
	return nil
}

func TestDisplayShowsRender(t *testing.T) {
	for _, b := range []image.Rectangle{
		image.Rect(0, 0, 240, 320),
		image.Rect(0, 0, 320, 240),
		image.Rect(100, 50, 340, 290), // a section of a larger display
	} {
		t.Run(fmt.Sprint(b), func(t *testing.T) {
			f := &fakeDrawer{bounds: b}
			d := screen.NewDisplay("front", f)
			s := hal.Screen{QR: payURL, Status: "Scan to open"}
			if err := d.Show(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if n, _ := f.count(); n != 1 {
				t.Fatalf("%d draws, want 1", n)
			}
			if f.rects[0] != b {
				t.Errorf("drew %v, want the whole display %v", f.rects[0], b)
			}
			if err := sameImage(f.frames[0], screen.Render(s, b.Dx(), b.Dy())); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDisplayRedraws(t *testing.T) {
	ctx := context.Background()
	a := hal.Screen{QR: payURL, Status: "Scan to open"}
	b := hal.Screen{Status: "Door open"}
	errPanel := errors.New("panel unplugged")
	type step struct {
		do         string // show a, show b, halt, fail draw, fail halt, heal
		wantErr    error
		wantFrames int // total so far
		wantHalts  int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unchanged screen is not redrawn", []step{
			{"show a", nil, 1, 0}, {"show a", nil, 1, 0}, {"show b", nil, 2, 0}, {"show a", nil, 3, 0}, {"show a", nil, 3, 0},
		}},
		{"halt forgets what is shown", []step{
			{"show a", nil, 1, 0}, {"halt", nil, 1, 1}, {"show a", nil, 2, 1}, {"show a", nil, 2, 1},
		}},
		{"failed draw is retried", []step{
			{"fail draw", nil, 0, 0}, {"show a", errPanel, 0, 0}, {"show a", errPanel, 0, 0},
			{"heal", nil, 0, 0}, {"show a", nil, 1, 0}, {"show a", nil, 1, 0},
		}},
		{"failed draw after a good one is retried", []step{
			{"show a", nil, 1, 0}, {"fail draw", nil, 1, 0}, {"show b", errPanel, 1, 0},
			{"heal", nil, 1, 0}, {"show a", nil, 2, 0},
		}},
		{"halt error", []step{
			{"fail halt", nil, 0, 0}, {"halt", errPanel, 0, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeDrawer{bounds: image.Rect(0, 0, 240, 320)}
			d := screen.NewDisplay("front", f)
			for i, st := range tt.steps {
				var err error
				switch st.do {
				case "show a":
					err = d.Show(ctx, a)
				case "show b":
					err = d.Show(ctx, b)
				case "halt":
					err = d.Halt()
				case "fail draw":
					f.mu.Lock()
					f.drawErr = errPanel
					f.mu.Unlock()
				case "fail halt":
					f.mu.Lock()
					f.haltErr = errPanel
					f.mu.Unlock()
				case "heal":
					f.mu.Lock()
					f.drawErr, f.haltErr = nil, nil
					f.mu.Unlock()
				}
				if !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) {
					t.Fatalf("step %d %s: err %v, want %v", i, st.do, err, st.wantErr)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "screen: front: ") {
					t.Errorf("step %d: error %q lacks the package and display name", i, err)
				}
				if n, h := f.count(); n != st.wantFrames || h != st.wantHalts {
					t.Fatalf("step %d %s: %d frames %d halts, want %d and %d", i, st.do, n, h, st.wantFrames, st.wantHalts)
				}
			}
		})
	}
}

func TestDisplayContext(t *testing.T) {
	f := &fakeDrawer{bounds: image.Rect(0, 0, 64, 64)}
	d := screen.NewDisplay("", f)
	if d.String() != "fake" {
		t.Errorf("String = %q, want the drawer's name", d.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Show(ctx, hal.Screen{Status: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Show with an ended context = %v", err)
	}
	if n, _ := f.count(); n != 0 {
		t.Fatal("drew with an ended context")
	}

	// A Show waiting behind a slow draw gives up when its context ends.
	f.block = make(chan struct{})
	f.entered = make(chan struct{}, 1)
	first := make(chan error, 1)
	go func() { first <- d.Show(context.Background(), hal.Screen{Status: "first"}) }()
	<-f.entered
	ctx, cancel = context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- d.Show(ctx, hal.Screen{Status: "second"}) }()
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("waiting Show = %v, want context.Canceled", err)
	}
	close(f.block)
	if err := <-first; err != nil {
		t.Errorf("first Show = %v", err)
	}
	if n, _ := f.count(); n != 1 {
		t.Errorf("%d draws, want only the first", n)
	}
}

func TestDisplayConcurrent(t *testing.T) {
	f := &fakeDrawer{bounds: image.Rect(0, 0, 60, 80)}
	d := screen.NewDisplay("front", f)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for j := range 5 {
				var err error
				if (i+j)%4 == 3 {
					err = d.Halt()
				} else {
					err = d.Show(context.Background(), hal.Screen{Status: fmt.Sprint(j % 2)})
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if f.overlap.Load() {
		t.Error("two Draws ran at once")
	}
}

func TestRGB565(t *testing.T) {
	tests := []struct {
		c    color.RGBA
		want screen.RGB565
	}{
		{color.RGBA{0, 0, 0, 0xff}, 0x0000},
		{color.RGBA{0xff, 0xff, 0xff, 0xff}, 0xFFFF},
		{color.RGBA{0xff, 0, 0, 0xff}, 0xF800},
		{color.RGBA{0, 0xff, 0, 0xff}, 0x07E0},
		{color.RGBA{0, 0, 0xff, 0xff}, 0x001F},
		{color.RGBA{0x12, 0x34, 0x56, 0xff}, 0x11AA},
		{color.RGBA{0x80, 0x80, 0x80, 0x80}, 0x8410}, // premultiplied: drawn over black
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.c), func(t *testing.T) {
			if got := screen.ToRGB565(tt.c.R, tt.c.G, tt.c.B); got != tt.want {
				t.Errorf("ToRGB565 = %#04x, want %#04x", uint16(got), uint16(tt.want))
			}
			if got := screen.RGB565Model.Convert(tt.c); got != tt.want {
				t.Errorf("RGB565Model.Convert = %v, want %#04x", got, uint16(tt.want))
			}
			// Widening and narrowing again is lossless.
			if got := screen.RGB565Model.Convert(color.RGBA64Model.Convert(tt.want)); got != tt.want {
				t.Errorf("round trip = %v, want %#04x", got, uint16(tt.want))
			}
		})
	}
	if r, g, b, a := screen.RGB565(0xFFFF).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff || a != 0xffff {
		t.Errorf("white widens to %x %x %x %x", r, g, b, a)
	}
	if r, g, b, _ := screen.RGB565(0x0000).RGBA(); r|g|b != 0 {
		t.Errorf("black widens to %x %x %x", r, g, b)
	}
}

func TestClip(t *testing.T) {
	bounds := image.Rect(0, 0, 100, 50)
	src := image.NewRGBA(image.Rect(-10, -10, 60, 60))
	tests := []struct {
		name   string
		r      image.Rectangle
		sp     image.Point
		wantR  image.Rectangle
		wantSP image.Point
	}{
		{"inside", image.Rect(5, 5, 20, 20), image.Pt(1, 2), image.Rect(5, 5, 20, 20), image.Pt(1, 2)},
		{"past the display", image.Rect(90, 40, 120, 80), image.Pt(0, 0), image.Rect(90, 40, 100, 50), image.Pt(0, 0)},
		{"before the display", image.Rect(-5, -3, 10, 10), image.Pt(0, 0), image.Rect(0, 0, 10, 10), image.Pt(5, 3)},
		{"past the source", image.Rect(0, 0, 100, 50), image.Pt(40, 0), image.Rect(0, 0, 20, 50), image.Pt(40, 0)},
		{"before the source", image.Rect(0, 0, 30, 30), image.Pt(-20, -15), image.Rect(10, 5, 30, 30), image.Pt(-10, -10)},
		{"nothing in common", image.Rect(200, 0, 300, 10), image.Pt(0, 0), image.Rectangle{}, image.Point{}},
		{"source missed", image.Rect(0, 0, 10, 10), image.Pt(70, 70), image.Rectangle{}, image.Point{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sp := screen.Clip(bounds, tt.r, src, tt.sp)
			if r != tt.wantR || sp != tt.wantSP {
				t.Errorf("Clip = %v %v, want %v %v", r, sp, tt.wantR, tt.wantSP)
			}
		})
	}
}

// dcPin is the smallest gpio.PinOut: the SPI recorder below does not look
// at it.
type dcPin struct{}

func (dcPin) String() string                        { return "dc" }
func (dcPin) Halt() error                           { return nil }
func (dcPin) Name() string                          { return "dc" }
func (dcPin) Number() int                           { return -1 }
func (dcPin) Function() string                      { return "Out" }
func (dcPin) Out(gpio.Level) error                  { return nil }
func (dcPin) PWM(gpio.Duty, physic.Frequency) error { return nil }

// TestQROnTheST7789Wire puts a payment screen through the real ST7789
// driver and reads the QR code back from the recorded SPI bytes.
func TestQROnTheST7789Wire(t *testing.T) {
	for _, rot := range []int{0, 90} {
		t.Run(fmt.Sprintf("rotation %d", rot), func(t *testing.T) {
			rec := &spitest.Record{}
			dev, err := st7789.New(rec, dcPin{}, nil, &st7789.Opts{
				Width: 240, Height: 320, Rotation: rot, Invert: true, Sleep: func(time.Duration) {},
			})
			if err != nil {
				t.Fatal(err)
			}
			rec.Lock()
			initOps := len(rec.Ops)
			rec.Unlock()
			d := screen.NewDisplay("front", dev)
			s := hal.Screen{QR: payURL, Status: "Scan to open"}
			for range 2 { // the second Show sends nothing
				if err := d.Show(context.Background(), s); err != nil {
					t.Fatal(err)
				}
			}
			rec.Lock()
			ops := rec.Ops[initOps:]
			rec.Unlock()
			// CASET, its window, RASET, its window, RAMWR, then pixels.
			if len(ops) < 6 || len(ops[0].W) != 1 || ops[0].W[0] != 0x2A || ops[4].W[0] != 0x2C {
				t.Fatalf("unexpected command stream: %d transfers", len(ops))
			}
			var wire []byte
			for _, op := range ops[5:] {
				wire = append(wire, op.W...)
			}
			b := dev.Bounds()
			if len(wire) != b.Dx()*b.Dy()*2 {
				t.Fatalf("%d pixel bytes on the wire, want %d×%d×2", len(wire), b.Dx(), b.Dy())
			}
			want := screen.Render(s, b.Dx(), b.Dy())
			dark := 0
			for i := 0; i < len(wire); i += 2 {
				x, y := (i/2)%b.Dx(), (i/2)/b.Dx()
				v := uint16(wire[i])<<8 | uint16(wire[i+1])
				wantV := uint16(0xFFFF)
				if want.RGBAAt(x, y).R == 0 {
					wantV = 0x0000
					dark++
				}
				if v != wantV {
					t.Fatalf("pixel (%d,%d) = %#04x on the wire, want %#04x", x, y, v, wantV)
				}
			}
			if dark < 1000 {
				t.Errorf("only %d dark pixels: no QR code on the wire", dark)
			}
		})
	}
}
