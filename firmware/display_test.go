package firmware

import (
	"fmt"
	"github.com/bangfu/cabinet/firmware/fsm"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/screen"
	"github.com/bangfu/cabinet/telemetry/msg"
)

const testQR = "https://pay.bangfu.example/q?c=NM-150102-0007&n=8f3a2c91d0b64e7a&t=1741766400&s=9c1f0e7b2a4d6c8e0f1a3b5c7d9e1f20"

func sess(kind string, state fsm.State, alarmed bool) *ledger.Session {
	return &ledger.Session{ID: "S-1", Kind: kind, State: state, Door: 1, Alarmed: alarmed}
}

func saleOf(status string, lines ...msg.SaleLine) *msg.Sale {
	s := &msg.Sale{Status: status, Lines: lines}
	for _, l := range lines {
		s.TotalFen += l.AmountFen
	}
	return s
}

func line(sku, name string, qty int, unitFen int64) msg.SaleLine {
	return msg.SaleLine{SKU: sku, Name: name, Qty: qty, UnitPriceFen: unitFen, AmountFen: int64(qty) * unitFen}
}

// displayCases are the screens the firmware shows; golden names the image
// of hal/screen/testdata/golden the screen must render to ("" for none).
var displayCases = []struct {
	name   string
	v      view
	want   hal.Screen
	signal hal.Signal
	lamp   lamp
	golden string
}{
	{name: "ready", v: view{QR: testQR},
		want:   hal.Screen{Title: "扫码购物", QR: testQR, Status: "SCAN TO SHOP"},
		signal: hal.SignalReady, golden: "ready"},
	{name: "door unlocked", v: view{Session: sess(ledger.KindShopping, fsm.Unlocked, false)},
		want:   hal.Screen{Title: "1号门已开锁\n请开门取货", Status: "DOOR 1 UNLOCKED - PLEASE OPEN"},
		signal: hal.SignalOpen, golden: "unlocked"},
	{name: "authorised", v: view{Session: sess(ledger.KindShopping, fsm.Authorised, false)},
		want:   hal.Screen{Title: "1号门已开锁\n请开门取货", Status: "DOOR 1 UNLOCKED - PLEASE OPEN"},
		signal: hal.SignalOpen},
	{name: "door open", v: view{Session: sess(ledger.KindShopping, fsm.DoorOpen, false)},
		want:   hal.Screen{Title: "取货后请关门", Status: "TAKE YOUR ITEMS AND CLOSE THE DOOR"},
		signal: hal.SignalOpen, golden: "door-open"},
	{name: "door open too long", v: view{Session: sess(ledger.KindShopping, fsm.DoorOpen, true)},
		want:   hal.Screen{Title: "请关好柜门", Status: "PLEASE CLOSE THE DOOR"},
		signal: hal.SignalAlarm, golden: "door-open-long"},
	{name: "checking", v: view{Session: sess(ledger.KindShopping, fsm.Settling, false)},
		want:   hal.Screen{Title: "正在核对商品", Status: "CHECKING YOUR ITEMS..."},
		signal: hal.SignalOff, golden: "checking"},
	{name: "door closed", v: view{Session: sess(ledger.KindShopping, fsm.DoorClosed, false)},
		want:   hal.Screen{Title: "正在核对商品", Status: "CHECKING YOUR ITEMS..."},
		signal: hal.SignalOff},
	{name: "restock unlocked", v: view{Session: sess(ledger.KindRestock, fsm.Unlocked, false)},
		want:   hal.Screen{Title: "补货\n1号门已开锁", Status: "RESTOCK - DOOR 1 UNLOCKED"},
		signal: hal.SignalOpen, golden: "restock-unlocked"},
	{name: "restocking", v: view{Session: sess(ledger.KindRestock, fsm.DoorOpen, false)},
		want:   hal.Screen{Title: "补货中\n完成后请关门", Status: "RESTOCKING - CLOSE THE DOOR WHEN DONE"},
		signal: hal.SignalOpen, golden: "restocking"},
	{name: "restock door open too long", v: view{Session: sess(ledger.KindRestock, fsm.DoorOpen, true)},
		want:   hal.Screen{Title: "补货中\n完成后请关门", Status: "RESTOCKING - CLOSE THE DOOR WHEN DONE"},
		signal: hal.SignalAlarm},
	{name: "counting", v: view{Session: sess(ledger.KindRestock, fsm.Settling, false)},
		want:   hal.Screen{Title: "正在盘点库存", Status: "COUNTING STOCK..."},
		signal: hal.SignalOff, golden: "counting"},
	{name: "receipt", v: view{Receipt: saleOf(msg.SaleExact,
		line("NM-0003", "四子王旗手撕风干羊肉", 1, 11800), line("QH-0201", "互助青稞米", 2, 2290), line("QH-0204", "化隆清真牛肉干", 1, 5980))},
		want: hal.Screen{Title: "谢谢惠顾", Status: "THANK YOU - TOTAL ¥223.60",
			Body: "---\n四子王旗手撕风干羊肉\t×1\t¥118.00\n互助青稞米\t×2\t¥45.80\n化隆清真牛肉干\t×1\t¥59.80\n---\n本次消费 ¥223.60"},
		signal: hal.SignalOff, golden: "receipt"},
	{name: "long receipt", v: view{Receipt: saleOf(msg.SaleExact,
		line("NM-0001", "武川莜面（莜麦全粉）", 12, 2680), line("NM-0002", "武川莜麦挂面", 1, 1880),
		line("NM-0003", "四子王旗手撕风干羊肉", 3, 11800), line("NM-0004", "察右后旗马铃薯宽粉条", 1, 1690),
		line("NM-0003", "四子王旗手撕风干羊肉", 2, 11800), // off a second shelf
		line("NM-0005", "敖汉小米", 2, 2590), line("QH-0203", "循化线辣椒面", 1, 1590))},
		want: hal.Screen{Title: "谢谢惠顾", Status: "THANK YOU - TOTAL ¥1015.00",
			Body: "---\n武川莜面（莜麦全粉）\t×12\t¥321.60\n武川莜麦挂面\t×1\t¥18.80\n四子王旗手撕风干羊肉\t×5\t¥590.00\n其余 3 种\t×4\t¥84.60\n---\n本次消费 ¥1015.00"},
		signal: hal.SignalOff, golden: "receipt-long"},
	{name: "empty session", v: view{Receipt: saleOf(msg.SaleEmpty)},
		want:   hal.Screen{Title: "谢谢光临", Status: "NOTHING TAKEN - NO CHARGE", Body: "未取商品，未扣款"},
		signal: hal.SignalOff, golden: "empty"},
	{name: "flagged sale", v: view{Receipt: saleOf(msg.SaleAmbiguous,
		line("NM-0005", "敖汉小米", 2, 2590), line("QH-0203", "循化线辣椒面", 1, 1590))},
		want: hal.Screen{Title: "谢谢惠顾", Status: "TOTAL ¥67.70 - TO BE REVIEWED",
			Body: "---\n敖汉小米\t×2\t¥51.80\n循化线辣椒面\t×1\t¥15.90\n---\n本次消费 ¥67.70（待核对）\n本单将由工作人员核对"},
		signal: hal.SignalOff, golden: "flagged"},
	{name: "flagged, nothing charged", v: view{Receipt: saleOf(msg.SaleAmbiguous)},
		want: hal.Screen{Title: "谢谢惠顾", Status: "TOTAL ¥0.00 - TO BE REVIEWED",
			Body: "本次消费 ¥0.00（待核对）\n本单将由工作人员核对"},
		signal: hal.SignalOff},
	{name: "cancelled", v: view{Receipt: saleOf(msg.SaleCancelled)},
		want:   hal.Screen{Title: "订单已取消", Status: "DOOR NOT OPENED - NO CHARGE", Body: "未开门，未扣款"},
		signal: hal.SignalOff, golden: "cancelled"},
	{name: "please wait", v: view{Busy: true},
		want:   hal.Screen{Title: "请稍候", Status: "PLEASE WAIT"},
		signal: hal.SignalOff, golden: "wait"},
	{name: "out of service", v: view{OutOfService: "no planogram"},
		want:   hal.Screen{Title: "暂停服务", Status: "OUT OF SERVICE - NO PLANOGRAM", Body: "给您带来不便，敬请谅解"},
		signal: hal.SignalOff, golden: "out-of-service"},
	{name: "fault", v: view{OutOfService: "shelf 2 scale fault: hal: device fault"}, lamp: lamp{Fault: true},
		want:   hal.Screen{Title: "暂停服务", Status: "OUT OF SERVICE - SHELF 2 SCALE FAULT", Body: "给您带来不便，敬请谅解"},
		signal: hal.SignalFault},
	{name: "door forced while idle", v: view{QR: testQR}, lamp: lamp{Forced: true},
		want:   hal.Screen{Title: "扫码购物", QR: testQR, Status: "SCAN TO SHOP"},
		signal: hal.SignalAlarm},
	{name: "door forced while out of service", v: view{OutOfService: "no planogram"}, lamp: lamp{Forced: true, Fault: false},
		want:   hal.Screen{Title: "暂停服务", Status: "OUT OF SERVICE - NO PLANOGRAM", Body: "给您带来不便，敬请谅解"},
		signal: hal.SignalAlarm},
}

func TestScreenFor(t *testing.T) {
	for _, tt := range displayCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := screenFor(tt.v); got != tt.want {
				t.Errorf("screen\n%#v\nwant\n%#v", got, tt.want)
			}
			if got := signalFor(tt.v, tt.lamp); got != tt.signal {
				t.Errorf("signal %v, want %v", got, tt.signal)
			}
		})
	}
}

// TestScreensRender draws every screen the firmware makes with the
// display's default font, on both panels: each must fit whole, and those
// with a golden image must match it (the goldens are hal/screen's, whose
// tests also run on arm).
func TestScreensRender(t *testing.T) {
	f, err := screen.LoadFont(screen.DefaultFontPath)
	if err != nil {
		t.Fatalf("%v (install fonts-unifont)", err)
	}
	for _, tt := range displayCases {
		for _, sz := range []image.Point{{240, 240}, {240, 320}} {
			t.Run(fmt.Sprintf("%s/%dx%d", tt.name, sz.X, sz.Y), func(t *testing.T) {
				s := screenFor(tt.v)
				if err := screen.Fit(s, sz.X, sz.Y, f); err != nil {
					t.Error(err)
				}
				if tt.golden == "" {
					return
				}
				img := screen.RenderFont(s, sz.X, sz.Y, f)
				path := filepath.Join("..", "hal", "screen", "testdata", "golden", fmt.Sprintf("%s-%dx%d.png", tt.golden, sz.X, sz.Y))
				b, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				want, err := png.Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				for y := range sz.Y {
					for x := range sz.X {
						r1, g1, b1, _ := want.At(x, y).RGBA()
						r2, g2, b2, _ := img.At(x, y).RGBA()
						if r1 != r2 || g1 != g2 || b1 != b2 {
							t.Fatalf("pixel (%d,%d) differs from %s: hal/screen's golden screens and firmware/display.go disagree", x, y, path)
						}
					}
				}
			})
		}
	}
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "¥0.00", 5: "¥0.05", 100: "¥1.00", 7200: "¥72.00", 123456: "¥1234.56", -250: "-¥2.50",
		-9223372036854775808: "-¥92233720368547758.08"} {
		if got := yuan(fen); got != want {
			t.Errorf("yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

func TestReceiptLines(t *testing.T) {
	rows := receiptLines([]msg.SaleLine{
		{SKU: "A", Name: " 名\t字 ", Qty: 1, AmountFen: 100},
		{SKU: "B", Qty: 2, AmountFen: 300},
		{SKU: "A", Name: "名字", Qty: 2, AmountFen: 200},
	})
	want := []receiptRow{{"名 字", 3, 300}, {"B", 2, 300}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
	var many []msg.SaleLine
	for i := range 6 {
		many = append(many, msg.SaleLine{SKU: fmt.Sprint(i), Name: fmt.Sprint("P", i), Qty: 1, AmountFen: 100})
	}
	rows = receiptLines(many)
	if len(rows) != receiptRows || rows[receiptRows-1] != (receiptRow{"其余 3 种", 3, 300}) {
		t.Errorf("rows %v", rows)
	}
}

// TestDisplayAndIndicatorInService runs a purchase on the virtual cabinet
// and watches what the display and the indicator show.
func TestDisplayAndIndicatorInService(t *testing.T) {
	r := newRig(t)
	r.d.cfg.ReceiptS = 20
	receiptFor := 20 * time.Second
	indicator := func() string { return r.hw.Snapshot().Indicator }
	r.d.step(t.Context())
	if s := r.d.shown; s.Title != "扫码购物" || s.QR == "" || indicator() != "ready" {
		t.Fatalf("idle: screen %+v, indicator %s", s, indicator())
	}

	cmd := r.unlock()
	r.d.step(t.Context())
	if s := r.d.shown; !strings.HasPrefix(s.Title, "1号门已开锁") || s.QR != "" || indicator() != "open" {
		t.Fatalf("unlocked: screen %+v, indicator %s", s, indicator())
	}
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	basket := r.basket(1, 2)
	r.take(basket)
	// Open too long: the alarm, and the screen asks to close the door.
	r.d.transition(r.d.sess, fsm.DoorOpen, func() { r.d.sess.Alarmed = true })
	r.d.step(t.Context())
	if s := r.d.shown; s.Title != "请关好柜门" || indicator() != "alarm" {
		t.Fatalf("door open too long: screen %+v, indicator %s", s, indicator())
	}
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleExact, basket)
	if got, want := r.d.shown, receiptScreen(sale); got != want || indicator() != "off" {
		t.Fatalf("after the sale: screen %+v, indicator %s; want the receipt %+v", got, indicator(), want)
	}
	if !strings.Contains(r.d.shown.Body, "本次消费 "+yuan(r.price(basket))) {
		t.Fatalf("receipt %q does not show the total %s", r.d.shown.Body, yuan(r.price(basket)))
	}
	if !strings.Contains(r.d.shown.Body, r.product(basket[0].sku).Name) {
		t.Fatalf("receipt %q does not name %s", r.d.shown.Body, r.product(basket[0].sku).Name)
	}
	// The receipt's time ends: the code is back.
	if until := r.d.disp.until; until.Sub(r.d.now()) > receiptFor || until.Before(r.d.now().Add(receiptFor/2)) {
		t.Fatalf("receipt shown until %v, want about %v from now", until, receiptFor)
	}
	r.d.disp.until = r.d.now()
	stepUntil(t, r.d, func() bool { return r.d.shown.QR != "" }, 10*time.Second)
	if s := r.d.shown; s.Title != "扫码购物" || indicator() != "ready" {
		t.Fatalf("after the receipt: screen %+v, indicator %s", s, indicator())
	}

	// A scale fault takes the cabinet out of service: the fault signal.
	if err := r.hw.FaultScale(2, "dead"); err != nil {
		t.Fatal(err)
	}
	stepUntil(t, r.d, func() bool { return indicator() == "fault" }, 10*time.Second)
	if s := r.d.shown; s.Title != "暂停服务" || !strings.HasPrefix(s.Status, "OUT OF SERVICE - SHELF 2") {
		t.Fatalf("scale fault: screen %+v", s)
	}
}

// Without a receipt time, the code comes back as soon as the sale is in.
func TestNoReceiptByDefault(t *testing.T) {
	r := newRig(t)
	r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	stepUntil(t, r.d, func() bool { return r.d.shown.QR != "" }, 10*time.Second)
	if r.d.disp.receipt != nil {
		t.Fatal("a receipt was kept with no receipt time")
	}
}
