package platform

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/bangfu/cabinet/telemetry/msg"
)

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 1: "0.01", 99: "0.99", 100: "1.00", 2990: "29.90",
		123456789: "1234567.89", -5: "-0.05", -1050: "-10.50", -9223372036854775808: "-92233720368547758.08"} {
		if got := Yuan(fen); got != want {
			t.Errorf("Yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

// parseFen reads Yuan's text back into fen, in integers.
func parseFen(t testing.TB, s string) int64 {
	t.Helper()
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 {
		t.Fatalf("amount %q: not two decimals", s)
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("amount %q", s)
	}
	return w*100 + f
}

// reportRecords: an exact sale of two lines, an empty one, a reviewed
// (recharged) ambiguous one, a flagged one, one outside the window and one
// of another cabinet.
func reportRecords(t *testing.T) []SaleRecord {
	cat := testCatalog()
	p := newTestPlatform(t, t.TempDir(), nil)
	p.SetCatalog(cat)
	a := ambiguousSale(cat, "C-1", 3, closedAt.Add(2*time.Minute))
	for _, s := range []msg.Sale{
		exactSale("C-1", 1, closedAt, line(cat, 1, "NM-0001", 2), line(cat, 3, "CQ-0303", 1)),
		exactSale("C-1", 2, closedAt.Add(time.Minute)),
		a,
		ambiguousSale(cat, "C-1", 4, closedAt.Add(-time.Minute)),
		exactSale("C-1", 5, closedAt.Add(-48*time.Hour), line(cat, 1, "NM-0001", 1)),
		exactSale("C-2", 1, closedAt.Add(30*time.Second), line(cat, 3, "CQ-0304", 1)),
	} {
		p.ingest(s, closedAt)
	}
	if _, err := p.ReviewSale(a.SaleID, ReviewRequest{Decision: DecisionRecharge, Reviewer: "r",
		Lines: []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 2}}}); err != nil {
		t.Fatal(err)
	}
	return p.SalesRecords()
}

// wantRows is the form of reportRecords for C-1 from an hour before
// closedAt, as text.
var wantRows = [][]string{
	{"1", "酉阳青花椒 500克", "酉阳县桃花源花椒种植专业合作社", "县医院食堂", "1", "68.00", "2026-12-04 22:14:03", "FP-CQ-0304", "重庆市酉阳土家族苗族自治县", "C-1", "C-1-S4A", "ambiguous"},
	{"2", "武川莜面, \"全粉\"", "武川县禾川莜麦种植专业合作社", BuyerPerson, "2", "53.60", "2026-12-04 22:15:03", "FP-NM-0001", "内蒙古自治区呼和浩特市武川县", "C-1", "C-1-S1A", "exact"},
	{"3", "酉阳青花椒 250克", "酉阳县桃花源花椒种植专业合作社", BuyerPerson, "1", "36.00", "2026-12-04 22:15:03", "FP-CQ-0303", "重庆市酉阳土家族苗族自治县", "C-1", "C-1-S1A", "exact"},
	{"4", "酉阳青花椒 250克", "酉阳县桃花源花椒种植专业合作社", "县医院食堂", "2", "72.00", "2026-12-04 22:17:03", "FP-CQ-0303", "重庆市酉阳土家族苗族自治县", "C-1", "C-1-S3A", StatusReviewedRecharge},
}

// TestReportCSV writes the form as CSV and reads it back.
func TestReportCSV(t *testing.T) {
	recs := reportRecords(t)
	f := ReportFilter{From: closedAt.Add(-time.Hour), To: closedAt.Add(time.Hour), Cabinet: "C-1"}
	var buf bytes.Buffer
	if err := WriteReportCSV(&buf, ReportRows(recs, f, Origins(testCatalog()))); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if !bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}) {
		t.Fatalf("no UTF-8 byte-order mark: % x", data[:3])
	}
	got, err := csv.NewReader(bytes.NewReader(data[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0], ReportHeader) || strings.Join(got[0][:7], ",") != "序号,产品名称,卖方,买方,数量,金额（元）,交易时间" {
		t.Fatalf("header %q", got[0])
	}
	if !reflect.DeepEqual(got[1:], wantRows) {
		t.Fatalf("rows:\n%q\nwant\n%q", got[1:], wantRows)
	}
	var total int64
	for _, r := range got[1:] {
		total += parseFen(t, r[5])
	}
	if total != 6800+5360+3600+7200 {
		t.Fatalf("total %d fen", total)
	}
	for _, r := range got[1:] {
		at, err := time.ParseInLocation(ReportTimeLayout, r[6], CST)
		if err != nil || at.Before(f.From) || !at.Before(f.To) {
			t.Fatalf("time %q (%v) outside the window", r[6], err)
		}
	}
	// Without a catalog the origin is its county code; without a filter
	// every line of every cabinet is there.
	rows := ReportRows(recs, ReportFilter{}, nil)
	if len(rows) != 6 || rows[0].Origin != "150125" || rows[0].Cabinet != "C-1" {
		t.Fatalf("unfiltered rows %+v", rows)
	}
}

// TestReportXLSX writes the form as xlsx and reads it back with excelize.
func TestReportXLSX(t *testing.T) {
	recs := reportRecords(t)
	var buf bytes.Buffer
	f := ReportFilter{From: closedAt.Add(-time.Hour), Cabinet: "C-1"}
	if err := WriteReportXLSX(&buf, ReportRows(recs, f, Origins(testCatalog()))); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if sheets := x.GetSheetList(); len(sheets) != 1 || sheets[0] != ReportSheet {
		t.Fatalf("sheets %q", sheets)
	}
	got, err := x.GetRows(ReportSheet)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0], ReportHeader) || !reflect.DeepEqual(got[1:], wantRows) {
		t.Fatalf("sheet:\n%q\nwant\n%q", got, append([][]string{ReportHeader}, wantRows...))
	}
	// The amounts are numbers (Excel can add them), shown with two decimals.
	if typ, err := x.GetCellType(ReportSheet, "F2"); err != nil || typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
		t.Fatalf("F2 type %v %v", typ, err)
	}
	raw, err := x.GetCellValue(ReportSheet, "F5", excelize.Options{RawCellValue: true})
	if err != nil || raw != "72" {
		t.Fatalf("F5 raw %q %v", raw, err)
	}
	var total int64
	for _, r := range got[1:] {
		total += parseFen(t, r[5])
	}
	if total != 6800+5360+3600+7200 {
		t.Fatalf("total %d fen", total)
	}
}

// manyRecords makes n exact sales of two lines each.
func manyRecords(n int) []SaleRecord {
	cat := testCatalog()
	recs := make([]SaleRecord, n)
	for i := range recs {
		s := exactSale(fmt.Sprintf("C-%d", i%20), uint64(i/20+1), closedAt.Add(time.Duration(i)*time.Second),
			line(cat, 1, "NM-0001", 1+i%3), line(cat, 3, "CQ-0303", 1))
		s.SaleID = fmt.Sprintf("S-%08d", i)
		recs[i] = SaleRecord{Sale: s, Copies: 1}
	}
	return recs
}

// BenchmarkReport100k exports 100,000 sales (200,000 lines) to CSV and
// to xlsx.
func BenchmarkReport100k(b *testing.B) {
	recs := manyRecords(100_000)
	origins := Origins(testCatalog())
	b.Run("csv", func(b *testing.B) {
		for b.Loop() {
			if err := WriteReportCSV(io.Discard, ReportRows(recs, ReportFilter{}, origins)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("xlsx", func(b *testing.B) {
		for b.Loop() {
			if err := WriteReportXLSX(io.Discard, ReportRows(recs, ReportFilter{}, origins)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
