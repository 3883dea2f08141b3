package ledger

import (
	"encoding/json"
	"github.com/bangfu/cabinet/firmware/fsm"
	"path/filepath"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// open opens a ledger in a temp dir and checks the file's consistency at
// cleanup, as bbolt's own test helpers do.
func open(t *testing.T, path string) *Ledger {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.db.View(func(tx *bboltTx) error { return checkTx(tx) }); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		l.Close()
	})
	return l
}

func sale(seq uint64, total int64) msg.Sale {
	return msg.Sale{SaleID: msg.NewID(time.Now()), Seq: seq, CabinetID: "NM-1", SessionID: "S", Status: msg.SaleExact,
		TotalFen: total, Lines: []msg.SaleLine{}, Evidence: []msg.Evidence{}, SettledAt: msg.At(time.Now())}
}

func TestCommitSaleIsAtomicAndSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{ID: "S1", State: fsm.Authorised, Door: 1}
	cmd := &msg.Command{ID: "cmd-1", ExpiresAt: msg.At(time.Now().Add(time.Minute))}
	if err := l.SaveSession(s, cmd); err != nil {
		t.Fatal(err)
	}
	if !l.Seen("cmd-1") || l.Seen("cmd-2") {
		t.Fatal("replay cache wrong")
	}
	for i, total := range []int64{5980, 0, 1250} {
		got, err := l.CommitSale("P/c/NM-1/sale", func(seq uint64) msg.Sale { return sale(seq, total) },
			Item{Kind: outbox.KindAlarm, Topic: "P/c/NM-1/alarm", Body: msg.Alarm{Kind: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != uint64(i+1) {
			t.Fatalf("seq %d, want %d", got.Seq, i+1)
		}
	}
	if _, err := l.Session(); err != ErrNoSession {
		t.Fatalf("session not ended with its sale: %v", err)
	}
	l.Close()

	l = open(t, path)
	c, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c != (msg.Counters{Sales: 3, LastSeq: 3, AmountFen: 7230}) {
		t.Fatalf("counters after reopen: %+v", c)
	}
	if !l.Seen("cmd-1") {
		t.Fatal("replay cache lost on reopen")
	}
	pend, err := l.Outbox.Pending(0)
	if err != nil || len(pend) != 6 {
		t.Fatalf("outbox: %d entries, err %v", len(pend), err)
	}
	var seqs []uint64
	for _, e := range pend {
		if e.Kind == outbox.KindSale {
			seqs = append(seqs, e.SaleSeq)
		}
	}
	if len(seqs) != 3 || seqs[0] != 1 || seqs[2] != 3 {
		t.Fatalf("sales in outbox out of order: %v", seqs)
	}
	// The stored sale is the one published.
	var first msg.Sale
	if err := json.Unmarshal(pend[0].Payload, &first); err != nil || first.Seq != 1 {
		t.Fatalf("outbox payload: %v %+v", err, first)
	}
	n, err := l.Outbox.AckSales(2)
	if err != nil || n != 2 {
		t.Fatalf("ack released %d, err %v", n, err)
	}
	// Acked sales stay in the ledger for resend and audit.
	all, err := l.Sales(1, 3)
	if err != nil || len(all) != 3 {
		t.Fatalf("ledger lost sales: %d %v", len(all), err)
	}
	q, err := l.ResendSales("P/c/NM-1/sale", 1, 2)
	if err != nil || q != 2 {
		t.Fatalf("resend queued %d, err %v", q, err)
	}
}

func TestCommitSaleRejectsWrongSeq(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	if _, err := l.CommitSale("t", func(seq uint64) msg.Sale { return sale(seq+1, 10) }); err == nil {
		t.Fatal("a sale with a skipped seq was committed")
	}
	c, _ := l.Counters()
	if c.LastSeq != 0 {
		t.Fatalf("failed commit changed counters: %+v", c)
	}
	if d, _ := l.Outbox.Depth(); d != 0 {
		t.Fatalf("failed commit left %d outbox entries", d)
	}
}

func TestPruneKeepsUndelivered(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	old := time.Now().AddDate(0, 0, -100)
	for range 3 {
		if _, err := l.CommitSale("t", func(seq uint64) msg.Sale {
			s := sale(seq, 1)
			s.SettledAt = msg.At(old)
			return s
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Outbox.AckSales(1); err != nil {
		t.Fatal(err)
	}
	n, err := l.Prune(time.Now(), time.Now().AddDate(0, 0, -90))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (want only the delivered one), err %v", n, err)
	}
	left, _ := l.Sales(0, 10)
	if len(left) != 2 || left[0].Seq != 2 {
		t.Fatalf("left %+v", left)
	}
}

func TestSecondOpenerTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	open(t, path)
	if _, err := Open(path); err == nil {
		t.Fatal("a second opener got the locked file")
	}
}
