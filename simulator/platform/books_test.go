package platform

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/internal/clocktest"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// testCatalog holds the two confusable packs of one pepper and a flour.
func testCatalog() msg.Catalog {
	p := func(sku, name, sup, code, origin string, price int64) msg.Product {
		return msg.Product{SKU: sku, CertNo: "FP-" + sku, Name: name, SupplierID: "S-" + code, Supplier: sup,
			OriginCode: code, Origin: origin, UnitWeightG: 250, WeightTolG: 3, PriceFen: price, Status: msg.StatusActive}
	}
	return msg.Catalog{Version: 3, Region: "150000", Products: []msg.Product{
		p("CQ-0303", "酉阳青花椒 250克", "酉阳县桃花源花椒种植专业合作社", "500242", "重庆市酉阳土家族苗族自治县", 3600),
		p("CQ-0304", "酉阳青花椒 500克", "酉阳县桃花源花椒种植专业合作社", "500242", "重庆市酉阳土家族苗族自治县", 6800),
		p("NM-0001", "武川莜面, \"全粉\"", "武川县禾川莜麦种植专业合作社", "150125", "内蒙古自治区呼和浩特市武川县", 2680),
	}}
}

// line prices qty units of a catalog product.
func line(c msg.Catalog, shelf int, sku string, qty int) msg.SaleLine {
	for _, p := range c.Products {
		if p.SKU == sku {
			return msg.SaleLine{SKU: sku, CertNo: p.CertNo, Name: p.Name, SupplierID: p.SupplierID, Supplier: p.Supplier,
				OriginCode: p.OriginCode, Shelf: shelf, Qty: qty, UnitPriceFen: p.PriceFen, AmountFen: int64(qty) * p.PriceFen}
		}
	}
	panic(sku)
}

// closedAt is the test sales' time: 2026-12-04 22:15:03 in China.
var closedAt = time.Date(2026, 12, 4, 14, 15, 3, 0, time.UTC)

// exactSale is an exact sale of the given lines.
func exactSale(cab string, seq uint64, at time.Time, lines ...msg.SaleLine) msg.Sale {
	var total int64
	for _, l := range lines {
		total += l.AmountFen
	}
	status := msg.SaleExact
	if len(lines) == 0 {
		status, lines = msg.SaleEmpty, []msg.SaleLine{}
	}
	post := 0.999
	return msg.Sale{SaleID: cab + "-S" + string(rune('0'+seq%10)) + string(rune('A'+seq/10)), Seq: seq, CabinetID: cab,
		SessionID: "s", Buyer: msg.Buyer{Ref: "u-1", Kind: msg.BuyerPerson}, OpenedAt: msg.At(at.Add(-time.Minute)),
		ClosedAt: msg.At(at), SettledAt: msg.At(at.Add(3 * time.Second)), Status: status, Lines: lines, TotalFen: total,
		Evidence: []msg.Evidence{}, CatalogVersion: 3, FW: "1.2.0", Posterior: &post}
}

// ambiguousSale charges one 500 g pack; two 250 g packs are the first
// alternative.
func ambiguousSale(c msg.Catalog, cab string, seq uint64, at time.Time) msg.Sale {
	s := exactSale(cab, seq, at, line(c, 3, "CQ-0304", 1))
	s.Status = msg.SaleAmbiguous
	s.Buyer = msg.Buyer{Ref: "canteen-3", Kind: msg.BuyerUnit, Org: "县医院食堂"}
	post := 0.62
	s.Posterior = &post
	s.Alternatives = []msg.SaleAlternative{
		{Lines: []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 2}}, TotalFen: 7200, Posterior: 0.37},
		{Lines: []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 1}, {Shelf: 3, SKU: "NM-0001", Qty: 1}}, TotalFen: 6280, Posterior: 0.01},
	}
	return s
}

func newTestPlatform(t *testing.T, dir string, clk *clocktest.Clock) *Platform {
	t.Helper()
	o := Opts{Broker: "tcp://127.0.0.1:1", StateDir: dir, Logger: slog.New(slog.DiscardHandler)}
	if clk != nil {
		o.Now = clk.Now
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestBooksSurviveRestart ingests sales (with a redelivery and a gap),
// alarms, heartbeat counters, acks and a review, closes the platform and
// opens it again on the same state directory: the books are the same.
func TestBooksSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	clk := clocktest.New()
	cat := testCatalog()
	p := newTestPlatform(t, dir, clk)
	p.SetCatalog(cat)
	amb := ambiguousSale(cat, "C-1", 2, closedAt.Add(time.Minute))
	for _, s := range []msg.Sale{
		exactSale("C-1", 1, closedAt, line(cat, 1, "NM-0001", 2)),
		amb,
		exactSale("C-1", 1, closedAt, line(cat, 1, "NM-0001", 2)), // a redelivery
		exactSale("C-1", 4, closedAt.Add(2*time.Minute)),          // seq 3 missing
		exactSale("C-2", 1, closedAt, line(cat, 2, "CQ-0303", 1)),
	} {
		p.ingest(s, clk.Now())
	}
	p.addAlarm(AlarmRecord{CabinetID: "C-1", Alarm: msg.Alarm{AlarmID: "a-1", Kind: msg.AlarmDoorForced, Severity: msg.SevCritical,
		At: msg.At(closedAt), Detail: map[string]any{"door": 1.0}}})
	p.heartbeat("C-1", msg.Heartbeat{At: msg.At(closedAt.Add(3 * time.Minute)), Counters: msg.Counters{Sales: 4, LastSeq: 4, AmountFen: 5360 + 6800}})
	p.acked("C-1", 2)
	p.acked("C-2", 1)
	clk.Advance(time.Hour)
	if _, err := p.ReviewSale(amb.SaleID, ReviewRequest{Decision: DecisionRecharge, Reviewer: "li.wei",
		Lines: []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 2}}}); err != nil {
		t.Fatal(err)
	}
	salesBefore, gapsBefore := p.Sales()
	recsBefore, alarmsBefore, reconBefore := p.SalesRecords(), p.Alarms(), p.Reconciliation()
	p.Close()

	q := newTestPlatform(t, dir, clk)
	if !q.PublicKey().Equal(p.PublicKey()) {
		t.Fatal("the platform's key changed across the restart")
	}
	salesAfter, gapsAfter := q.Sales()
	if !reflect.DeepEqual(salesBefore, salesAfter) || !reflect.DeepEqual(gapsBefore, gapsAfter) {
		t.Fatalf("sales after restart:\n%+v %+v\nwant\n%+v %+v", salesAfter, gapsAfter, salesBefore, gapsBefore)
	}
	if got := q.SalesRecords(); !reflect.DeepEqual(got, recsBefore) {
		t.Fatalf("records after restart:\n%+v\nwant\n%+v", got, recsBefore)
	}
	if got := q.Alarms(); !reflect.DeepEqual(got, alarmsBefore) {
		t.Fatalf("alarms after restart: %+v, want %+v", got, alarmsBefore)
	}
	if got := q.Reconciliation(); !reflect.DeepEqual(got, reconBefore) {
		t.Fatalf("reconciliation after restart:\n%+v\nwant\n%+v", got, reconBefore)
	}
	if len(salesAfter) != 4 || salesAfter[0].Copies != 2 || len(gapsAfter) != 1 || gapsAfter[0] != (Gap{"C-1", 3, 3}) {
		t.Fatalf("books %+v gaps %+v", salesAfter, gapsAfter)
	}
	rv := salesAfter[1].Review
	if rv == nil || rv.Reviewer != "li.wei" || !rv.At.Equal(clk.Now()) || rv.At.Location() != time.UTC || rv.TotalFen != 7200 {
		t.Fatalf("review after restart: %+v", rv)
	}
	if *salesAfter[1].Sale.Posterior != 0.62 || len(salesAfter[1].Sale.Alternatives) != 2 {
		t.Fatalf("posterior and alternatives lost: %+v", salesAfter[1].Sale)
	}
	// A redelivery after the restart is still a duplicate, and the ack
	// the platform would send is the same.
	if upto := q.ingest(exactSale("C-1", 1, closedAt, line(cat, 1, "NM-0001", 2)), clk.Now()); upto != 2 {
		t.Fatalf("ack upto %d after restart, want 2", upto)
	}
	if recs := q.SalesRecords(); len(recs) != 4 || recs[0].Copies != 3 {
		t.Fatalf("redelivery after restart: %d sales, copies %d", len(recs), recs[0].Copies)
	}
}

// TestBooksRefuseBadFile: a state directory whose books are not a bbolt
// file, are another bbolt file, or hold an unreadable record is an error
// at start, and the file is left as it was.
func TestBooksRefuseBadFile(t *testing.T) {
	write := func(t *testing.T, data []byte) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, BooksFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	boltFile := func(t *testing.T, fill func(tx *bolt.Tx) error) string {
		dir := t.TempDir()
		db, err := bolt.Open(filepath.Join(dir, BooksFile), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fill); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return dir
	}
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
		want string
	}{
		{"garbage", func(t *testing.T) string { return write(t, []byte(strings.Repeat("not a database ", 1000))) }, "cannot open"},
		{"empty-page", func(t *testing.T) string { return write(t, make([]byte, 4096)) }, "cannot open"},
		{"another-bolt-file", func(t *testing.T) string {
			return boltFile(t, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("ledger")); return err })
		}, "not the platform's books"},
		{"other-version", func(t *testing.T) string {
			return boltFile(t, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				return b.Put([]byte("version"), []byte("99"))
			})
		}, "version"},
		{"bad-record", func(t *testing.T) string {
			dir := t.TempDir()
			p := newTestPlatform(t, dir, nil)
			p.ingest(exactSale("C-1", 1, closedAt), closedAt)
			p.Close()
			db, err := bolt.Open(filepath.Join(dir, BooksFile), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSales).Put(key8(1), []byte("{trunc")) }); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			path := filepath.Join(dir, BooksFile)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			p, err := New(Opts{Broker: "tcp://127.0.0.1:1", StateDir: dir})
			if err == nil {
				p.Close()
				t.Fatal("bad books accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q: want it to say %q and name %s", err, tc.want, path)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(before) {
				t.Fatal("the bad file was changed")
			}
		})
	}
}

// TestReviewSale settles flagged sales and refuses everything else
// without changing the books.
func TestReviewSale(t *testing.T) {
	clk := clocktest.New()
	cat := testCatalog()
	p := newTestPlatform(t, t.TempDir(), clk)
	p.SetCatalog(cat)
	exact := exactSale("C-1", 1, closedAt, line(cat, 1, "NM-0001", 1))
	a1, a2 := ambiguousSale(cat, "C-1", 2, closedAt), ambiguousSale(cat, "C-1", 3, closedAt)
	a3 := ambiguousSale(cat, "C-1", 4, closedAt)
	a3.CatalogVersion = 2 // NM-0001 cannot be priced: not on the sale, old catalog
	for _, s := range []msg.Sale{exact, a1, a2, a3} {
		p.ingest(s, clk.Now())
	}
	before := p.SalesRecords()
	refuse := []struct {
		id   string
		req  ReviewRequest
		want error
	}{
		{"nope", ReviewRequest{Decision: DecisionAccept, Reviewer: "r"}, ErrUnknownSale},
		{exact.SaleID, ReviewRequest{Decision: DecisionAccept, Reviewer: "r"}, ErrNotReviewable},
		{a1.SaleID, ReviewRequest{Decision: "refund", Reviewer: "r"}, ErrBadReview},
		{a1.SaleID, ReviewRequest{Decision: DecisionAccept}, ErrBadReview},
		{a1.SaleID, ReviewRequest{Decision: DecisionAccept, Reviewer: "r", Lines: []msg.AltLine{}}, ErrBadReview},
		{a1.SaleID, ReviewRequest{Decision: DecisionRecharge, Reviewer: "r"}, ErrBadReview},
		{a1.SaleID, ReviewRequest{Decision: DecisionRecharge, Reviewer: "r", Lines: []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 0}}}, ErrBadReview},
		{a1.SaleID, ReviewRequest{Decision: DecisionRecharge, Reviewer: "r", Lines: []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 3}}}, ErrNotReviewable},
		{a3.SaleID, ReviewRequest{Decision: DecisionRecharge, Reviewer: "r",
			Lines: []msg.AltLine{{Shelf: 3, SKU: "NM-0001", Qty: 1}, {Shelf: 3, SKU: "CQ-0303", Qty: 1}}}, ErrNotReviewable},
	}
	for i, tc := range refuse {
		if _, err := p.ReviewSale(tc.id, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("case %d: %v, want %v", i, err, tc.want)
		}
	}
	if got := p.SalesRecords(); !reflect.DeepEqual(got, before) {
		t.Fatal("a refused review changed the books")
	}
	rec, err := p.ReviewSale(a1.SaleID, ReviewRequest{Decision: DecisionAccept, Reviewer: "zhang"})
	if err != nil || rec.Review.TotalFen != 6800 || !reflect.DeepEqual(rec.Review.Lines, a1.Lines) || !rec.Review.At.Equal(clk.Now()) {
		t.Fatalf("accept: %+v %v", rec.Review, err)
	}
	// The same basket in another order, split over two lines.
	rec, err = p.ReviewSale(a2.SaleID, ReviewRequest{Decision: DecisionRecharge, Reviewer: "zhang",
		Lines: []msg.AltLine{{Shelf: 3, SKU: "NM-0001", Qty: 1}, {Shelf: 3, SKU: "CQ-0303", Qty: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []msg.SaleLine{line(cat, 3, "CQ-0303", 1), line(cat, 3, "NM-0001", 1)}
	if rec.Review.TotalFen != 6280 || !reflect.DeepEqual(rec.Review.Lines, want) {
		t.Fatalf("recharge settled at %d: %+v", rec.Review.TotalFen, rec.Review.Lines)
	}
	mid := p.SalesRecords()
	if _, err := p.ReviewSale(a2.SaleID, ReviewRequest{Decision: DecisionAccept, Reviewer: "wang"}); !errors.Is(err, ErrNotReviewable) {
		t.Fatalf("second review: %v", err)
	}
	if got := p.SalesRecords(); !reflect.DeepEqual(got, mid) {
		t.Fatal("a second review changed the books")
	}
	r := Reconcile("C-1", mid, nil, 0)
	if !reflect.DeepEqual(r.AwaitingReview, []string{a3.SaleID}) || r.Received.SettledAmountFen != 2680+6800+6280+6800 {
		t.Fatalf("reconciliation after reviews: %+v", r)
	}
}

// TestReconcile compares held sales with claimed counters.
func TestReconcile(t *testing.T) {
	cat := testCatalog()
	recs := []SaleRecord{
		{Sale: exactSale("C-1", 1, closedAt, line(cat, 1, "NM-0001", 1))},
		{Sale: exactSale("C-1", 2, closedAt, line(cat, 1, "NM-0001", 2))},
		{Sale: exactSale("C-1", 5, closedAt, line(cat, 1, "NM-0001", 1))},
		{Sale: ambiguousSale(cat, "C-1", 6, closedAt)},
	}
	// The counters claim 7 sales worth 2680×7: seqs 3, 4 and 7 are missing.
	claimed := &Claimed{Sales: 7, LastSeq: 7, AmountFen: 2680 * 7, At: closedAt}
	r := Reconcile("C-1", recs, claimed, 2)
	want := []Gap{{"C-1", 3, 4}, {"C-1", 7, 7}}
	if !reflect.DeepEqual(r.Gaps, want) || r.OK || r.MissingSales != 3 || r.MissingAmountFen != 2680*7-2680*4-6800 ||
		!reflect.DeepEqual(r.Unacknowledged, []uint64{5, 6}) || len(r.AwaitingReview) != 1 || r.Received.ContiguousSeq != 2 {
		t.Fatalf("reconciliation %+v", r)
	}
	// Sales newer than the heartbeat are held, not missing.
	r = Reconcile("C-1", recs[:2], &Claimed{Sales: 1, LastSeq: 1, AmountFen: 2680}, 2)
	if !r.OK || r.MissingSales != 0 || len(r.Gaps) != 0 || len(r.Unacknowledged) != 0 {
		t.Fatalf("reconciliation %+v", r)
	}
}

// TestHeartbeatCounters keeps the newest heartbeat's counters: an older
// one that arrives late is ignored unless it counts more (a cabinet whose
// clock was set back).
func TestHeartbeatCounters(t *testing.T) {
	p := newTestPlatform(t, "", nil)
	hb := func(at time.Time, seq uint64) msg.Heartbeat {
		return msg.Heartbeat{At: msg.At(at), Counters: msg.Counters{Sales: seq, LastSeq: seq, AmountFen: int64(seq) * 100}}
	}
	claimed := func() uint64 {
		r := p.Reconciliation()
		if len(r) != 1 || r[0].Claimed == nil {
			t.Fatalf("reconciliation %+v", r)
		}
		return r[0].Claimed.LastSeq
	}
	p.heartbeat("C-1", hb(closedAt, 5))
	p.heartbeat("C-1", hb(closedAt.Add(-time.Minute), 4))
	if got := claimed(); got != 5 {
		t.Fatalf("claimed last_seq %d after a late heartbeat, want 5", got)
	}
	p.heartbeat("C-1", hb(closedAt.Add(-time.Hour), 6))
	if got := claimed(); got != 6 {
		t.Fatalf("claimed last_seq %d after a clock set back, want 6", got)
	}
}
