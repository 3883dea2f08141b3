package firmware

// What the display says, and the LED with it (indicator.go), in one place:
// view gathers what they depend on, screenFor turns it into a hal.Screen.
// Shoppers read Chinese first: every screen has a Chinese title, the
// English status under it (the only text a display without its CJK font
// shows), and after a sale a receipt.

import (
	"fmt"
	"github.com/bangfu/cabinet/firmware/fsm"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// receiptRows is the most product rows a receipt shows; beyond it the
// last row sums up the rest, so that the receipt fits a 240×240 panel.
const receiptRows = 4

// displayState is the Run goroutine's memory for the display and the
// indicator.
type displayState struct {
	receipt  *msg.Sale // the sale whose receipt shows, until until
	until    time.Time
	signal   hal.Signal // what the indicator shows, when signalOK
	signalOK bool
}

// noteSale remembers a committed sale for its receipt, shown for the
// config's receipt_s (a live setting; 0 shows none, so that a scripted
// shopper can scan the next QR at once).
func (d *Device) noteSale(sale msg.Sale) {
	if d.cfg.ReceiptS <= 0 {
		return
	}
	d.disp.receipt = &sale
	d.disp.until = d.now().Add(time.Duration(d.cfg.ReceiptS) * time.Second)
}

// view is everything the display and the indicator depend on. At most one
// of Session, Receipt, OutOfService, Busy and QR is set, in that order of
// precedence.
type view struct {
	Session      *ledger.Session // the session under way
	Receipt      *msg.Sale       // the sale just settled, while its receipt shows
	OutOfService string          // why the cabinet takes no shoppers
	Busy         bool            // the scales are not steady: a scan would be refused
	QR           string          // ready: the code to scan
}

// view gathers what the display shows now. It reads only what it needs:
// no out-of-service checks while a session runs.
func (d *Device) view(now time.Time) view {
	if d.sess != nil {
		d.disp.receipt = nil // a new session ends the last one's receipt
		return view{Session: d.sess}
	}
	if r := d.disp.receipt; r != nil {
		if now.Before(d.disp.until) {
			return view{Receipt: r}
		}
		d.disp.receipt = nil
	}
	if why := d.outOfService(); why != "" {
		return view{OutOfService: why}
	}
	if !d.scalesSteady(now) {
		return view{Busy: true} // no QR while a scan would be refused as busy
	}
	return view{QR: d.qr.Current(now)}
}

// screenFor is what the display says in v. The English Status lines are
// the ones the cabinet always showed; tests and tools match them.
func screenFor(v view) hal.Screen {
	if s := v.Session; s != nil {
		if s.Kind == ledger.KindRestock {
			switch s.State {
			case fsm.Authorised, fsm.Unlocked:
				return hal.Screen{Title: fmt.Sprintf("补货\n%d号门已开锁", s.Door),
					Status: fmt.Sprintf("RESTOCK - DOOR %d UNLOCKED", s.Door)}
			case fsm.DoorOpen:
				return hal.Screen{Title: "补货中\n完成后请关门", Status: "RESTOCKING - CLOSE THE DOOR WHEN DONE"}
			}
			return hal.Screen{Title: "正在盘点库存", Status: "COUNTING STOCK..."}
		}
		switch s.State {
		case fsm.Authorised, fsm.Unlocked:
			return hal.Screen{Title: fmt.Sprintf("%d号门已开锁\n请开门取货", s.Door),
				Status: fmt.Sprintf("DOOR %d UNLOCKED - PLEASE OPEN", s.Door)}
		case fsm.DoorOpen:
			if s.Alarmed { // open longer than DoorOpenAlarm
				return hal.Screen{Title: "请关好柜门", Status: "PLEASE CLOSE THE DOOR"}
			}
			return hal.Screen{Title: "取货后请关门", Status: "TAKE YOUR ITEMS AND CLOSE THE DOOR"}
		}
		return hal.Screen{Title: "正在核对商品", Status: "CHECKING YOUR ITEMS..."}
	}
	switch {
	case v.Receipt != nil:
		return receiptScreen(*v.Receipt)
	case v.OutOfService != "":
		return hal.Screen{Title: "暂停服务", Status: "OUT OF SERVICE - " + shortReason(v.OutOfService),
			Body: "给您带来不便，敬请谅解"}
	case v.Busy:
		return hal.Screen{Title: "请稍候", Status: "PLEASE WAIT"}
	}
	return hal.Screen{Title: "扫码购物", QR: v.QR, Status: "SCAN TO SHOP"}
}

// receiptScreen is a settled sale as the shopper reads it: what was
// charged, line by line, and the total; a flagged sale says it will be
// reviewed.
func receiptScreen(s msg.Sale) hal.Screen {
	total := yuan(s.TotalFen)
	switch {
	case s.Status == msg.SaleCancelled:
		return hal.Screen{Title: "订单已取消", Status: "DOOR NOT OPENED - NO CHARGE", Body: "未开门，未扣款"}
	case s.Status == msg.SaleEmpty || (s.Status == msg.SaleExact && len(s.Lines) == 0):
		return hal.Screen{Title: "谢谢光临", Status: "NOTHING TAKEN - NO CHARGE", Body: "未取商品，未扣款"}
	}
	var b strings.Builder
	if rows := receiptLines(s.Lines); len(rows) > 0 {
		b.WriteString("---\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "%s\t×%d\t%s\n", r.name, r.qty, yuan(r.fen))
		}
		b.WriteString("---\n")
	}
	if s.Status == msg.SaleAmbiguous {
		fmt.Fprintf(&b, "本次消费 %s（待核对）\n本单将由工作人员核对", total)
		return hal.Screen{Title: "谢谢惠顾", Status: "TOTAL " + total + " - TO BE REVIEWED", Body: b.String()}
	}
	fmt.Fprintf(&b, "本次消费 %s", total)
	return hal.Screen{Title: "谢谢惠顾", Status: "THANK YOU - TOTAL " + total, Body: b.String()}
}

type receiptRow struct {
	name string
	qty  int
	fen  int64
}

// receiptLines merges a sale's lines by product (one SKU may come off two
// shelves), in the order they first appear, and sums up what is beyond
// receiptRows in a last row.
func receiptLines(lines []msg.SaleLine) []receiptRow {
	var rows []receiptRow
	at := map[string]int{}
	for _, l := range lines {
		i, ok := at[l.SKU]
		if !ok {
			name := strings.TrimSpace(l.Name)
			if name == "" {
				name = l.SKU
			}
			// A tab or newline in a name would break the layout.
			name = strings.Map(func(r rune) rune {
				if r == '\t' || r == '\n' || r == '\r' {
					return ' '
				}
				return r
			}, name)
			i = len(rows)
			at[l.SKU] = i
			rows = append(rows, receiptRow{name: name})
		}
		rows[i].qty += l.Qty
		rows[i].fen += l.AmountFen
	}
	if len(rows) <= receiptRows {
		return rows
	}
	rest := receiptRow{name: fmt.Sprintf("其余 %d 种", len(rows)-(receiptRows-1))}
	for _, r := range rows[receiptRows-1:] {
		rest.qty += r.qty
		rest.fen += r.fen
	}
	return append(rows[:receiptRows-1:receiptRows-1], rest)
}

// yuan formats fen as yuan with two decimals: ¥72.00.
func yuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign, u = "-", uint64(-(fen+1))+1
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, u/100, u%100)
}
