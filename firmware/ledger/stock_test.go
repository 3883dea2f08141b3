package ledger

import (
	"encoding/json"
	"errors"
	"github.com/bangfu/cabinet/firmware/fsm"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

func TestStockOps(t *testing.T) {
	set := func(shelf int, sku string, n int) StockOp {
		return StockOp{Op: StockSet, Shelf: shelf, SKU: sku, Qty: n}
	}
	add := func(shelf int, sku string, n int) StockOp {
		return StockOp{Op: StockAdd, Shelf: shelf, SKU: sku, Qty: n}
	}
	forget := func(shelf int, sku string) StockOp { return StockOp{Op: StockForget, Shelf: shelf, SKU: sku} }
	for _, tc := range []struct {
		name    string
		batches [][]StockOp // each batch is one commit
		want    Stock
		wantErr error // of the last batch
	}{
		{name: "nothing known at first", want: Stock{}},
		{name: "set", batches: [][]StockOp{{set(1, "A", 6), set(2, "B", 0)}},
			want: Stock{1: {"A": 6}, 2: {"B": 0}}},
		{name: "add moves a known level", batches: [][]StockOp{{set(1, "A", 6)}, {add(1, "A", 5), add(1, "A", -2)}},
			want: Stock{1: {"A": 9}}},
		{name: "add to an unknown level leaves it unknown", batches: [][]StockOp{{set(1, "A", 6)}, {add(1, "B", 3), add(2, "A", -1)}},
			want: Stock{1: {"A": 6}}},
		{name: "never below zero", batches: [][]StockOp{{set(1, "A", 2)}, {add(1, "A", -5)}},
			want: Stock{1: {"A": 0}}},
		{name: "a negative set is zero", batches: [][]StockOp{{set(1, "A", -3)}},
			want: Stock{1: {"A": 0}}},
		{name: "forget", batches: [][]StockOp{{set(1, "A", 2), set(1, "B", 1), set(2, "C", 4)}, {forget(1, "A"), forget(2, "C"), forget(3, "Z")}},
			want: Stock{1: {"B": 1}}},
		{name: "a bad op fails its whole commit", batches: [][]StockOp{{set(1, "A", 2)}, {add(1, "A", 1), {Op: "double", Shelf: 1, SKU: "A"}}},
			want: Stock{1: {"A": 2}}, wantErr: ErrBadStockOp},
		{name: "an empty sku fails its commit", batches: [][]StockOp{{set(1, "A", 2)}, {set(1, "", 1)}},
			want: Stock{1: {"A": 2}}, wantErr: ErrBadStockOp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			l := open(t, path)
			var err error
			for _, b := range tc.batches {
				err = l.Enqueue(nil, StockItem(b...))
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("last commit: %v, want %v", err, tc.wantErr)
			}
			got, err := l.Stock()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("stock %v, want %v", got, tc.want)
			}
			if d, _ := l.Outbox.Depth(); d != 0 {
				t.Fatalf("stock items queued %d outbox entries", d)
			}
			for shelf, m := range tc.want {
				for sku, n := range m {
					if q, known := got.Get(shelf, sku); !known || q != n {
						t.Fatalf("Get(%d, %s) = %d, %v; want %d, known", shelf, sku, q, known, n)
					}
				}
			}
			if _, known := got.Get(9, "A"); known {
				t.Fatal("a shelf never counted reads as known")
			}
		})
	}
}

// A sale and its stock decrement are one commit: a failed sale moves no
// stock, a committed one survives a reopen with it.
func TestCommitSaleWithStock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Enqueue(nil, StockItem(StockOp{Op: StockSet, Shelf: 1, SKU: "A", Qty: 6})); err != nil {
		t.Fatal(err)
	}
	dec := StockItem(StockOp{Op: StockAdd, Shelf: 1, SKU: "A", Qty: -2})
	if _, err := l.CommitSale("t", func(seq uint64) msg.Sale { return sale(seq+1, 10) }, dec); err == nil {
		t.Fatal("a sale with a skipped seq was committed")
	}
	if s, _ := l.Stock(); s[1]["A"] != 6 {
		t.Fatalf("a failed sale moved stock: %v", s)
	}
	// A bad stock op fails the sale too: nothing half-committed.
	bad := StockItem(StockOp{Op: "bogus", Shelf: 1, SKU: "A"})
	if _, err := l.CommitSale("t", func(seq uint64) msg.Sale { return sale(seq, 10) }, bad); !errors.Is(err, ErrBadStockOp) {
		t.Fatalf("sale with a bad stock op: %v", err)
	}
	if c, _ := l.Counters(); c.LastSeq != 0 {
		t.Fatalf("counters moved by a failed commit: %+v", c)
	}
	if _, err := l.CommitSale("t", func(seq uint64) msg.Sale { return sale(seq, 10) }, dec); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l = open(t, path)
	if s, _ := l.Stock(); !reflect.DeepEqual(s, Stock{1: {"A": 4}}) {
		t.Fatalf("stock after a sale of 2 and a reopen: %v", s)
	}
	if d, _ := l.Outbox.Depth(); d != 1 {
		t.Fatalf("outbox depth %d, want the sale only", d)
	}
}

// A restock session ends without a sale: session removed, restock queued and
// stock set in one commit; no seq consumed.
func TestEndSession(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EndSession(); err != nil {
		t.Fatalf("ending no session: %v", err) // idempotent: a retry after a crash finds none
	}
	s := &Session{ID: "R1", Kind: KindRestock, StaffID: "staff-7", State: fsm.Settling, Door: 1}
	if err := l.SaveSession(s, nil); err != nil {
		t.Fatal(err)
	}
	restock := msg.Restock{RestockID: "r1", SessionID: "R1", StaffID: "staff-7",
		Changes: []msg.RestockChange{{Shelf: 1, SKU: "A", DeltaQty: 5}}, Evidence: []msg.Evidence{}}
	item := Item{Kind: outbox.KindRestock, Topic: "P/c/C/restock", Body: restock}

	// A failing stock op keeps the session and queues nothing.
	if err := l.EndSession(item, StockItem(StockOp{Op: "bogus", Shelf: 1, SKU: "A"})); !errors.Is(err, ErrBadStockOp) {
		t.Fatalf("end with a bad op: %v", err)
	}
	if got, err := l.Session(); err != nil || got.ID != "R1" || got.StaffID != "staff-7" || got.Kind != KindRestock {
		t.Fatalf("session after a failed end: %+v, %v", got, err)
	}
	if d, _ := l.Outbox.Depth(); d != 0 {
		t.Fatalf("failed end queued %d entries", d)
	}

	if err := l.EndSession(item, StockItem(StockOp{Op: StockSet, Shelf: 1, SKU: "A", Qty: 5})); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l = open(t, path)
	if _, err := l.Session(); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session after its end: %v", err)
	}
	if c, _ := l.Counters(); c != (msg.Counters{}) {
		t.Fatalf("a restock moved the sale counters: %+v", c)
	}
	pend, err := l.Outbox.Pending(0)
	if err != nil || len(pend) != 1 || pend[0].Kind != outbox.KindRestock || pend[0].SaleSeq != 0 {
		t.Fatalf("outbox %+v, %v; want the restock only", pend, err)
	}
	var got msg.Restock
	if err := json.Unmarshal(pend[0].Payload, &got); err != nil || !reflect.DeepEqual(got, restock) {
		t.Fatalf("queued restock %+v (%v), want %+v", got, err, restock)
	}
	if st, _ := l.Stock(); !reflect.DeepEqual(st, Stock{1: {"A": 5}}) {
		t.Fatalf("stock %v", st)
	}
}

func TestRevokedAlarms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.RevokedAlarms(); err != nil || len(got) != 0 {
		t.Fatalf("new ledger: %v, %v", got, err)
	}
	alarm := Item{Kind: outbox.KindAlarm, Topic: "a", Body: msg.Alarm{Kind: msg.AlarmRevokedInStock}}
	if err := l.Enqueue(nil, alarm, RevokedAlarmsItem([]string{"B", "A", "B"})); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = open(t, path)
	if got, _ := l.RevokedAlarms(); !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Fatalf("raised %v after reopen, want [A B]", got)
	}
	if err := l.Enqueue(nil, RevokedAlarmsItem(nil)); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.RevokedAlarms(); len(got) != 0 {
		t.Fatalf("raised %v after clearing", got)
	}
	if d, _ := l.Outbox.Depth(); d != 1 {
		t.Fatalf("outbox depth %d, want the alarm only", d)
	}
}
