package outbox_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/bangfu/cabinet/telemetry/outbox"
)

const (
	saleTopic  = "bangfu/v1/c/NM-150102-0007/sale"
	alarmTopic = "bangfu/v1/c/NM-150102-0007/alarm"
	replyTopic = "bangfu/v1/c/NM-150102-0007/reply"
)

// openDB opens (or reopens) a real bbolt file with a lock timeout, so a
// second opener fails instead of waiting forever, and checks the file's
// consistency before closing it at cleanup.
func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Base(path), err)
	}
	t.Cleanup(func() { checkAndClose(t, db) })
	return db
}

func checkAndClose(t testing.TB, db *bolt.DB) {
	t.Helper()
	if db.Path() == "" { // already closed by the test
		return
	}
	err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("check view: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func newOutbox(t testing.TB) (*bolt.DB, *outbox.Outbox, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := openDB(t, path)
	if err := db.Update(outbox.Init); err != nil {
		t.Fatal(err)
	}
	return db, outbox.New(db), path
}

// add appends entries in one transaction, like the ledger's commit.
func add(t testing.TB, db *bolt.DB, es ...outbox.Entry) []uint64 {
	t.Helper()
	var ids []uint64
	err := db.Update(func(tx *bolt.Tx) error {
		ids = ids[:0]
		for _, e := range es {
			id, err := outbox.Append(tx, e)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return ids
}

func sale(seq uint64) outbox.Entry {
	return outbox.Entry{Kind: outbox.KindSale, Topic: saleTopic, SaleSeq: seq,
		Payload:   fmt.Appendf(nil, `{"seq":%d}`, seq),
		CreatedAt: time.Date(2026, 11, 26, 3, 4, 5, int(seq)*1000, time.UTC)}
}

func other(kind, topic, body string) outbox.Entry {
	return outbox.Entry{Kind: kind, Topic: topic, Payload: []byte(body), CreatedAt: time.Now().UTC()}
}

func pending(t testing.TB, o *outbox.Outbox) []outbox.Entry {
	t.Helper()
	es, err := o.Pending(0)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	return es
}

func depth(t testing.TB, o *outbox.Outbox) int {
	t.Helper()
	n, err := o.Depth()
	if err != nil {
		t.Fatalf("depth: %v", err)
	}
	return n
}

func TestSurvivesReopen(t *testing.T) {
	db, o, path := newOutbox(t)
	ids := add(t, db, sale(1), other(outbox.KindAlarm, alarmTopic, `{"kind":"door_forced"}`))
	published := time.Date(2026, 11, 26, 3, 5, 0, 123456789, time.UTC)
	if err := o.MarkPublished(ids[0], published); err != nil {
		t.Fatal(err)
	}
	before := pending(t, o)

	// A second opener must give up after Options.Timeout, not hang.
	if _, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, bolterrors.ErrTimeout) {
		t.Fatalf("second open of a locked file: err %v, want ErrTimeout", err)
	}

	checkAndClose(t, db)
	db = openDB(t, path)
	if err := db.Update(outbox.Init); err != nil { // idempotent on an existing file
		t.Fatal(err)
	}
	o = outbox.New(db)
	after := pending(t, o)
	if len(after) != 2 {
		t.Fatalf("after reopen: %d entries, want 2", len(after))
	}
	for i := range after {
		b, a := before[i], after[i]
		if a.ID != b.ID || a.Kind != b.Kind || a.Topic != b.Topic || a.SaleSeq != b.SaleSeq ||
			!bytes.Equal(a.Payload, b.Payload) || !a.CreatedAt.Equal(b.CreatedAt) ||
			!a.PublishedAt.Equal(b.PublishedAt) || a.Attempts != b.Attempts {
			t.Errorf("entry %d changed across reopen:\n before %+v\n after  %+v", i, b, a)
		}
	}
	if !after[0].PublishedAt.Equal(published) || after[0].Attempts != 1 {
		t.Errorf("publish mark lost: %+v", after[0])
	}
	if !after[1].PublishedAt.IsZero() || after[1].Attempts != 0 {
		t.Errorf("unpublished entry carries a mark: %+v", after[1])
	}
	// Sequence numbers continue after a reopen: never reused.
	next := add(t, db, sale(2))
	if next[0] <= ids[1] {
		t.Fatalf("id after reopen %d, want > %d", next[0], ids[1])
	}
}

func TestFIFOAcrossManyAppends(t *testing.T) {
	db, o, _ := newOutbox(t)
	var want []string
	// Many small transactions (one per sale, as the ledger commits them)…
	for i := range 150 {
		e := other(outbox.KindReply, replyTopic, fmt.Sprintf(`{"n":%d}`, i))
		add(t, db, e)
		want = append(want, string(e.Payload))
	}
	// …and one large one: its entries keep their order inside the commit.
	var batch []outbox.Entry
	for i := 150; i < 400; i++ {
		e := other(outbox.KindAlarm, alarmTopic, fmt.Sprintf(`{"n":%d}`, i))
		batch = append(batch, e)
		want = append(want, string(e.Payload))
	}
	add(t, db, batch...)

	check := func(got []outbox.Entry, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d", len(got), len(want))
		}
		for i, e := range got {
			if string(e.Payload) != want[i] {
				t.Fatalf("entry %d: %s, want %s", i, e.Payload, want[i])
			}
			if i > 0 && e.ID <= got[i-1].ID {
				t.Fatalf("ids not increasing: %d after %d", e.ID, got[i-1].ID)
			}
		}
	}
	all := pending(t, o)
	check(all, want)

	first, err := o.Pending(10)
	if err != nil {
		t.Fatal(err)
	}
	check(first, want[:10])

	// Removing from the middle and appending more keeps commit order: keys
	// are never reused, so a new entry sorts after every older one.
	for _, e := range all[100:300] {
		if err := o.Remove(e.ID); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want[:100:100], want[300:]...)
	e := other(outbox.KindReply, replyTopic, `{"n":"last"}`)
	add(t, db, e)
	want = append(want, string(e.Payload))
	check(pending(t, o), want)
	if n := depth(t, o); n != len(want) {
		t.Fatalf("depth %d, want %d", n, len(want))
	}
}

func TestAckSalesRemovesOnlyCoveredSales(t *testing.T) {
	db, o, _ := newOutbox(t)
	add(t, db,
		sale(1),
		other(outbox.KindAlarm, alarmTopic, `{"a":1}`),
		sale(2),
		other(outbox.KindReply, replyTopic, `{"r":1}`),
		sale(3),
		other(outbox.KindRestock, "bangfu/v1/c/NM-150102-0007/restock", `{"s":1}`),
		sale(4),
		sale(5),
	)
	// A resend queues a sale again: both copies are covered by the same ack.
	add(t, db, sale(2))

	tests := []struct {
		upto     uint64
		removed  int
		wantSeqs []uint64 // sales left, in order
	}{
		{0, 0, []uint64{1, 2, 3, 4, 5, 2}},
		{2, 3, []uint64{3, 4, 5}},
		{2, 0, []uint64{3, 4, 5}}, // acks are cumulative and may repeat
		{4, 2, []uint64{5}},
		{1 << 40, 1, nil},
	}
	for _, tc := range tests {
		n, err := o.AckSales(tc.upto)
		if err != nil {
			t.Fatal(err)
		}
		if n != tc.removed {
			t.Errorf("AckSales(%d) removed %d, want %d", tc.upto, n, tc.removed)
		}
		var seqs []uint64
		others := 0
		for _, e := range pending(t, o) {
			if e.Kind == outbox.KindSale {
				seqs = append(seqs, e.SaleSeq)
			} else {
				others++
			}
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tc.wantSeqs) {
			t.Errorf("after AckSales(%d): sales %v, want %v", tc.upto, seqs, tc.wantSeqs)
		}
		if others != 3 {
			t.Errorf("after AckSales(%d): %d alarms/replies/restocks, want 3 untouched", tc.upto, others)
		}
	}
}

func TestMarkPublishedAndRemove(t *testing.T) {
	db, o, _ := newOutbox(t)
	ids := add(t, db, sale(1), other(outbox.KindAlarm, alarmTopic, `{}`), sale(2))

	t1 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	t2 := t1.Add(time.Minute)
	for _, at := range []time.Time{t1, t2} {
		if err := o.MarkPublished(ids[0], at); err != nil {
			t.Fatal(err)
		}
	}
	es := pending(t, o)
	if es[0].Attempts != 2 || !es[0].PublishedAt.Equal(t2) || es[0].PublishedAt.Location() != time.UTC {
		t.Fatalf("after two marks: attempts %d published %v", es[0].Attempts, es[0].PublishedAt)
	}
	if !bytes.Equal(es[0].Payload, sale(1).Payload) || es[0].SaleSeq != 1 {
		t.Fatalf("mark changed the entry: %+v", es[0])
	}
	if es[2].Attempts != 0 || !es[2].PublishedAt.IsZero() {
		t.Fatalf("mark touched another entry: %+v", es[2])
	}

	// Marking an entry that was acked meanwhile is not an error and does
	// not bring it back.
	if err := o.Remove(ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := o.MarkPublished(ids[0], t2); err != nil {
		t.Fatalf("mark of a removed entry: %v", err)
	}
	if err := o.Remove(ids[0]); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	es = pending(t, o)
	if len(es) != 2 || es[0].ID != ids[1] || es[1].ID != ids[2] {
		t.Fatalf("after remove: %+v", es)
	}
	if n := depth(t, o); n != 2 {
		t.Fatalf("depth %d, want 2", n)
	}
}

func TestDepth(t *testing.T) {
	db, o, _ := newOutbox(t)
	if n := depth(t, o); n != 0 {
		t.Fatalf("empty depth %d", n)
	}
	for i := range 5 {
		add(t, db, sale(uint64(i+1)))
		if n := depth(t, o); n != i+1 {
			t.Fatalf("depth %d, want %d", n, i+1)
		}
	}
	if _, err := o.AckSales(5); err != nil {
		t.Fatal(err)
	}
	if n := depth(t, o); n != 0 {
		t.Fatalf("depth after ack %d", n)
	}
}

func TestAppendRefusesIncompleteEntryAndRollsBack(t *testing.T) {
	db, o, _ := newOutbox(t)
	for _, tc := range []struct {
		name string
		e    outbox.Entry
	}{
		{"no kind", outbox.Entry{Topic: saleTopic, Payload: []byte(`{}`)}},
		{"no topic", outbox.Entry{Kind: outbox.KindSale, SaleSeq: 9, Payload: []byte(`{}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errBad := errors.New("refused")
			var appendErr error
			err := db.Update(func(tx *bolt.Tx) error {
				// Something else the same commit wrote (the sale itself, in
				// the ledger): it must go too.
				sales, err := tx.CreateBucketIfNotExists([]byte("sales"))
				if err != nil {
					return err
				}
				if err := sales.Put([]byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte(`{"seq":1}`)); err != nil {
					return err
				}
				if _, err := outbox.Append(tx, sale(1)); err != nil {
					return err
				}
				if _, appendErr = outbox.Append(tx, tc.e); appendErr != nil {
					return errBad
				}
				return nil
			})
			if !errors.Is(err, errBad) || appendErr == nil {
				t.Fatalf("update err %v, append err %v: want the entry refused", err, appendErr)
			}
			if n := depth(t, o); n != 0 {
				t.Fatalf("depth %d after a rolled-back commit", n)
			}
			if err := db.View(func(tx *bolt.Tx) error {
				if tx.Bucket([]byte("sales")) != nil {
					return errors.New("the sale of a rolled-back commit is stored")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The rolled-back transactions' sequence numbers went with them.
	if ids := add(t, db, sale(1)); ids[0] != 1 {
		t.Fatalf("first committed id %d, want 1", ids[0])
	}
}

func TestNeedsBucket(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "bare.db"))
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := outbox.Append(tx, sale(1))
		return err
	})
	if err == nil {
		t.Fatal("append without Init succeeded")
	}
	// Every method reports the missing bucket as an error; none panics.
	o := outbox.New(db)
	if _, err := o.Pending(0); err == nil {
		t.Error("Pending: no error")
	}
	if _, err := o.Depth(); err == nil {
		t.Error("Depth: no error")
	}
	if err := o.MarkPublished(1, time.Now()); err == nil {
		t.Error("MarkPublished: no error")
	}
	if err := o.Remove(1); err == nil {
		t.Error("Remove: no error")
	}
	if _, err := o.AckSales(1); err == nil {
		t.Error("AckSales: no error")
	}
}

func TestNotifyCoalesces(t *testing.T) {
	_, o, _ := newOutbox(t)
	select {
	case <-o.Wake():
		t.Fatal("wake without notify")
	default:
	}
	for range 3 {
		o.Notify() // never blocks, however many commits pile up
	}
	select {
	case <-o.Wake():
	default:
		t.Fatal("no wake after notify")
	}
	select {
	case <-o.Wake():
		t.Fatal("notifies were not coalesced into one wake")
	default:
	}
}

// BenchmarkAppend measures durable appends: one fsynced transaction per
// append, as a sale commits.
func BenchmarkAppend(b *testing.B) {
	db, o, _ := newOutbox(b)
	payload := bytes.Repeat([]byte("x"), 900) // about one sale with two lines and evidence
	e := outbox.Entry{Kind: outbox.KindSale, Topic: saleTopic, Payload: payload, CreatedAt: time.Now().UTC()}
	var seq uint64
	start := time.Now()
	for b.Loop() {
		seq++
		e.SaleSeq = seq
		if err := db.Update(func(tx *bolt.Tx) error {
			_, err := outbox.Append(tx, e)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		o.Notify()
	}
	b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "appends/s")
}

// The live lane lists what is not a sale, in commit order, and forgets an
// entry once it is removed.
func TestPendingLive(t *testing.T) {
	db, o, path := newOutbox(t)
	ids := add(t, db, sale(1), other(outbox.KindReply, replyTopic, `{"r":1}`), sale(2),
		other(outbox.KindAlarm, replyTopic, `{"a":1}`))
	live := func(o *outbox.Outbox) []uint64 {
		t.Helper()
		es, err := o.PendingLive(0)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	if got := live(o); fmt.Sprint(got) != fmt.Sprint([]uint64{ids[1], ids[3]}) {
		t.Fatalf("live %v, want the reply and the alarm %v", got, []uint64{ids[1], ids[3]})
	}
	if err := o.Remove(ids[1]); err != nil {
		t.Fatal(err)
	}
	if got := live(o); fmt.Sprint(got) != fmt.Sprint([]uint64{ids[3]}) {
		t.Fatalf("live %v after removing the reply", got)
	}
	if n, err := o.AckSales(2); err != nil || n != 2 {
		t.Fatalf("ack %d, %v", n, err)
	}
	checkAndClose(t, db)
	db = openDB(t, path)
	if got := live(outbox.New(db)); fmt.Sprint(got) != fmt.Sprint([]uint64{ids[3]}) {
		t.Fatalf("live %v after reopen", got)
	}
}
