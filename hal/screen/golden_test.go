package screen

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/bangfu/cabinet/hal"
)

// update rewrites the golden images: go test ./hal/screen/ -run Golden -update
var update = flag.Bool("update", false, "rewrite testdata/golden/*.png")

// goldenScreens are the screens the firmware shows (firmware/display.go
// makes them; firmware's tests check it still does), with a long receipt
// and the font-less fallback. They are written out here because hal may
// not import firmware.
var goldenScreens = []struct {
	name   string
	s      hal.Screen
	noFont bool
}{
	{name: "ready", s: hal.Screen{Title: "扫码购物", QR: typicalURL, Status: "SCAN TO SHOP"}},
	{name: "unlocked", s: hal.Screen{Title: "1号门已开锁\n请开门取货", Status: "DOOR 1 UNLOCKED - PLEASE OPEN"}},
	{name: "door-open", s: hal.Screen{Title: "取货后请关门", Status: "TAKE YOUR ITEMS AND CLOSE THE DOOR"}},
	{name: "door-open-long", s: hal.Screen{Title: "请关好柜门", Status: "PLEASE CLOSE THE DOOR"}},
	{name: "checking", s: hal.Screen{Title: "正在核对商品", Status: "CHECKING YOUR ITEMS..."}},
	{name: "restock-unlocked", s: hal.Screen{Title: "补货\n1号门已开锁", Status: "RESTOCK - DOOR 1 UNLOCKED"}},
	{name: "restocking", s: hal.Screen{Title: "补货中\n完成后请关门", Status: "RESTOCKING - CLOSE THE DOOR WHEN DONE"}},
	{name: "counting", s: hal.Screen{Title: "正在盘点库存", Status: "COUNTING STOCK..."}},
	{name: "receipt", s: hal.Screen{Title: "谢谢惠顾", Status: "THANK YOU - TOTAL ¥223.60",
		Body: "---\n四子王旗手撕风干羊肉\t×1\t¥118.00\n互助青稞米\t×2\t¥45.80\n化隆清真牛肉干\t×1\t¥59.80\n---\n本次消费 ¥223.60"}},
	{name: "receipt-long", s: hal.Screen{Title: "谢谢惠顾", Status: "THANK YOU - TOTAL ¥1015.00",
		Body: "---\n武川莜面（莜麦全粉）\t×12\t¥321.60\n武川莜麦挂面\t×1\t¥18.80\n四子王旗手撕风干羊肉\t×5\t¥590.00\n其余 3 种\t×4\t¥84.60\n---\n本次消费 ¥1015.00"}},
	{name: "empty", s: hal.Screen{Title: "谢谢光临", Status: "NOTHING TAKEN - NO CHARGE", Body: "未取商品，未扣款"}},
	{name: "flagged", s: hal.Screen{Title: "谢谢惠顾", Status: "TOTAL ¥67.70 - TO BE REVIEWED",
		Body: "---\n敖汉小米\t×2\t¥51.80\n循化线辣椒面\t×1\t¥15.90\n---\n本次消费 ¥67.70（待核对）\n本单将由工作人员核对"}},
	{name: "cancelled", s: hal.Screen{Title: "订单已取消", Status: "DOOR NOT OPENED - NO CHARGE", Body: "未开门，未扣款"}},
	{name: "wait", s: hal.Screen{Title: "请稍候", Status: "PLEASE WAIT"}},
	{name: "out-of-service", s: hal.Screen{Title: "暂停服务", Status: "OUT OF SERVICE - NO PLANOGRAM", Body: "给您带来不便，敬请谅解"}},
	{name: "ready-nofont", s: hal.Screen{Title: "扫码购物", QR: typicalURL, Status: "SCAN TO SHOP"}, noFont: true},
	{name: "receipt-nofont", s: hal.Screen{Title: "谢谢惠顾", Status: "THANK YOU - TOTAL ¥223.60", Body: "---\n互助青稞米\t×2\t¥45.80"}, noFont: true},
}

var goldenSizes = []image.Point{{240, 240}, {240, 320}}

// testFont loads the product's default font; the tests need Debian's
// fonts-unifont installed.
func testFont(t *testing.T) *Font {
	t.Helper()
	f, err := LoadFont(DefaultFontPath)
	if err != nil {
		t.Fatalf("%v\n(the display tests need Debian's fonts-unifont: apt-get install fonts-unifont)", err)
	}
	return f
}

// TestGolden compares every screen at both panel sizes with its PNG in
// testdata/golden, pixel for pixel: rendering is exact (see the package
// documentation), so there is no tolerance, on amd64 or on arm.
func TestGolden(t *testing.T) {
	f := testFont(t)
	for _, g := range goldenScreens {
		for _, sz := range goldenSizes {
			name := fmt.Sprintf("%s-%dx%d.png", g.name, sz.X, sz.Y)
			t.Run(name, func(t *testing.T) {
				font := f
				if g.noFont {
					font = nil
				}
				img := RenderFont(g.s, sz.X, sz.Y, font)
				if err := Fit(g.s, sz.X, sz.Y, font); err != nil {
					t.Errorf("does not fit: %v", err)
				}
				for y := range sz.Y {
					for x := range sz.X {
						if c := img.RGBAAt(x, y); c != white && c != black {
							t.Fatalf("pixel (%d,%d) = %v, neither black nor white", x, y, c)
						}
					}
				}
				path := filepath.Join("testdata", "golden", name)
				if *update {
					var buf bytes.Buffer
					if err := png.Encode(&buf, img); err != nil {
						t.Fatal(err)
					}
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want := readPNG(t, path)
				if !want.Bounds().Eq(img.Bounds()) {
					t.Fatalf("golden is %v, rendered %v", want.Bounds(), img.Bounds())
				}
				diff := 0
				first := image.Point{-1, -1}
				for y := range sz.Y {
					for x := range sz.X {
						r1, g1, b1, _ := want.At(x, y).RGBA()
						r2, g2, b2, _ := img.At(x, y).RGBA()
						if r1 != r2 || g1 != g2 || b1 != b2 {
							if diff == 0 {
								first = image.Pt(x, y)
							}
							diff++
						}
					}
				}
				if diff > 0 {
					t.Errorf("%d pixels differ from %s, the first at %v (rewrite with -update after checking the image)", diff, path, first)
				}
			})
		}
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no golden %s: run go test ./hal/screen/ -run Golden -update and look at it", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}
