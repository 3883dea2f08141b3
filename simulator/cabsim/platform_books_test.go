package cabsim

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

func httpDo(t *testing.T, method, url, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	must(t, err)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, resp.Header, data
}

func getRecon(t *testing.T, base string) []platform.Reconciliation {
	t.Helper()
	code, _, data := httpDo(t, "GET", base+"/api/platform/reconciliation", "")
	var v struct {
		Cabinets []platform.Reconciliation `json:"cabinets"`
	}
	if code != http.StatusOK || json.Unmarshal(data, &v) != nil {
		t.Fatalf("reconciliation: %d %s", code, data)
	}
	return v.Cabinets
}

func getCSV(t *testing.T, url string) ([]byte, [][]string) {
	t.Helper()
	code, h, data := httpDo(t, "GET", url, "")
	if code != http.StatusOK || h.Get("Content-Type") != "text/csv; charset=utf-8" || !bytes.HasPrefix(data, []byte("\uFEFF")) {
		t.Fatalf("report: %d %s %.200q", code, h.Get("Content-Type"), data)
	}
	rows, err := csv.NewReader(bytes.NewReader(data[3:])).ReadAll()
	must(t, err)
	if !reflect.DeepEqual(rows[0], platform.ReportHeader) {
		t.Fatalf("header %q", rows[0])
	}
	return data, rows[1:]
}

// TestPlatformBooksAPI plays the ambiguous-basket scenario on a state
// directory, then reconciles, reports (CSV and xlsx) and reviews the
// flagged sale over the HTTP API; a simulation started again on the same
// directory has the same books.
func TestPlatformBooksAPI(t *testing.T) {
	dir := t.TempDir()
	sc, err := LoadScenario(filepath.Join("..", "scenarios", "ambiguous-basket.json"))
	must(t, err)
	o := sc.Apply(Options{DataDir: dir})
	s := startSim(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if fails := s.RunScenario(ctx, sc, &out); len(fails) > 0 {
		t.Fatalf("scenario failed:\n%s", out.String())
	}
	id := s.Cabinets()[0].ID
	must(t, s.Platform.WaitBooks(ctx, id, 1))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	recs := s.Platform.SalesRecords()
	if len(recs) != 1 || recs[0].Sale.Status != msg.SaleAmbiguous {
		t.Fatalf("sales %+v", recs)
	}
	sale := recs[0].Sale
	rc := getRecon(t, srv.URL)
	if len(rc) != 1 || rc[0].CabinetID != id || rc[0].Claimed == nil || rc[0].Claimed.Sales != 1 || rc[0].Claimed.AmountFen != sale.TotalFen ||
		!rc[0].OK || rc[0].Received.Sales != 1 || len(rc[0].Unacknowledged) != 0 || !reflect.DeepEqual(rc[0].AwaitingReview, []string{sale.SaleID}) {
		t.Fatalf("reconciliation %+v", rc)
	}

	_, rows := getCSV(t, srv.URL+"/api/platform/report?format=csv&cabinet="+id)
	if len(rows) != 1 || rows[0][1] != "酉阳青花椒 500克" || rows[0][2] != "酉阳县桃花源花椒种植专业合作社" || rows[0][3] != "县医院食堂" ||
		rows[0][4] != "1" || rows[0][5] != "68.00" || rows[0][6] != platform.CSTTime(sale.ClosedAt.Time) ||
		rows[0][8] != "重庆市酉阳土家族苗族自治县" || rows[0][10] != sale.SaleID || rows[0][11] != msg.SaleAmbiguous {
		t.Fatalf("report rows %q", rows)
	}
	// Outside the window, or another cabinet: no rows.
	day := sale.ClosedAt.Add(24 * time.Hour).Format(time.RFC3339)
	if _, rows := getCSV(t, srv.URL+"/api/platform/report?from="+day); len(rows) != 0 {
		t.Fatalf("rows after %s: %q", day, rows)
	}
	if _, rows := getCSV(t, srv.URL+"/api/platform/report?cabinet=NM-000000-0000"); len(rows) != 0 {
		t.Fatalf("rows of another cabinet: %q", rows)
	}

	review := srv.URL + "/api/platform/sales/" + sale.SaleID + "/review"
	for _, tc := range []struct {
		url, body string
		want      int
	}{
		{srv.URL + "/api/platform/sales/nope/review", `{"decision":"accept","reviewer":"r"}`, http.StatusNotFound},
		{review, `{"decision":"refund","reviewer":"r"}`, http.StatusBadRequest},
		{review, `{"decision":"accept"}`, http.StatusBadRequest},
		{review, `{"decision":"accept","reviewer":"r","extra":1}`, http.StatusBadRequest},
		{review, `{"decision":"recharge","lines":[{"shelf":3,"sku":"CQ-0303","qty":40}],"reviewer":"r"}`, http.StatusConflict},
		{srv.URL + "/api/platform/report?format=pdf", "", http.StatusBadRequest},
		{srv.URL + "/api/platform/report?from=yesterday", "", http.StatusBadRequest},
	} {
		method := "POST"
		if tc.body == "" {
			method = "GET"
		}
		code, _, data := httpDo(t, method, tc.url, tc.body)
		var e struct {
			Error string `json:"error"`
		}
		if code != tc.want || json.Unmarshal(data, &e) != nil || e.Error == "" {
			t.Errorf("%s %s %s: %d %s, want %d", method, tc.url, tc.body, code, data, tc.want)
		}
	}
	// The truth, two small packs, should be among the alternatives; else
	// the reviewer accepts.
	body, wantStatus, wantTotal := `{"decision":"accept","reviewer":"li.wei"}`, platform.StatusReviewedAccept, sale.TotalFen
	for _, alt := range sale.Alternatives {
		if reflect.DeepEqual(alt.Lines, []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 2}}) {
			body, wantStatus, wantTotal = `{"decision":"recharge","lines":[{"shelf":3,"sku":"CQ-0303","qty":2}],"reviewer":"li.wei"}`,
				platform.StatusReviewedRecharge, alt.TotalFen
		}
	}
	t.Logf("review: %s", body)
	before := time.Now().UTC()
	code, _, data := httpDo(t, "POST", review, body)
	var got struct {
		Review platform.Review `json:"review"`
	}
	if code != http.StatusOK || json.Unmarshal(data, &got) != nil || got.Review.Reviewer != "li.wei" ||
		got.Review.TotalFen != wantTotal || got.Review.At.Before(before.Truncate(time.Millisecond)) || got.Review.At.Location() != time.UTC {
		t.Fatalf("review: %d %s", code, data)
	}
	if code, _, data := httpDo(t, "POST", review, `{"decision":"accept","reviewer":"wang"}`); code != http.StatusConflict {
		t.Fatalf("second review: %d %s", code, data)
	}
	// The sales API keeps the cabinet's document and says beside it how
	// the sale was settled.
	code, _, data = httpDo(t, "GET", srv.URL+"/api/platform/sales", "")
	var listed struct {
		Sales   []msg.Sale                 `json:"sales"`
		Reviews map[string]platform.Review `json:"reviews"`
	}
	if err := json.Unmarshal(data, &listed); code != http.StatusOK || err != nil || len(listed.Sales) != 1 ||
		listed.Sales[0].TotalFen != sale.TotalFen || len(listed.Reviews) != 1 ||
		listed.Reviews[sale.SaleID].TotalFen != wantTotal || listed.Reviews[sale.SaleID].Reviewer != "li.wei" {
		t.Fatalf("sales after review: %d %s", code, data)
	}
	rc = getRecon(t, srv.URL)
	if len(rc[0].AwaitingReview) != 0 || rc[0].Received.SettledAmountFen != wantTotal {
		t.Fatalf("reconciliation after review %+v", rc[0])
	}
	csvBefore, rows := getCSV(t, srv.URL+"/api/platform/report")
	var total int64
	for _, r := range rows {
		if r[11] != wantStatus {
			t.Fatalf("row %q, want status %s", r, wantStatus)
		}
		fen, err := strconv.ParseInt(strings.Replace(r[5], ".", "", 1), 10, 64)
		if err != nil || !strings.Contains(r[5], ".") || len(r[5])-strings.Index(r[5], ".") != 3 {
			t.Fatalf("amount %q", r[5])
		}
		total += fen
	}
	if total != wantTotal {
		t.Fatalf("report total %d fen, want %d", total, wantTotal)
	}
	code, h, data := httpDo(t, "GET", srv.URL+"/api/platform/report?format=xlsx", "")
	if code != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "spreadsheetml") {
		t.Fatalf("xlsx: %d %s", code, h.Get("Content-Type"))
	}
	x, err := excelize.OpenReader(bytes.NewReader(data))
	must(t, err)
	sheet, err := x.GetRows(platform.ReportSheet)
	x.Close()
	must(t, err)
	if !reflect.DeepEqual(sheet[1:], rows) {
		t.Fatalf("xlsx rows %q, csv rows %q", sheet[1:], rows)
	}
	alarms := s.Platform.Alarms()
	platformKey := s.Platform.PublicKey()

	// Start again on the same state directory: the same books.
	srv.Close()
	s.Close()
	s2 := startSim(t, o)
	if !s2.Platform.PublicKey().Equal(platformKey) {
		t.Fatal("the restarted platform signs with another key: its cabinets would refuse it")
	}
	srv2 := httptest.NewServer(s2.Handler())
	defer srv2.Close()
	if csvAfter, _ := getCSV(t, srv2.URL+"/api/platform/report"); !bytes.Equal(csvAfter, csvBefore) {
		t.Fatalf("report after restart:\n%s\nwant\n%s", csvAfter, csvBefore)
	}
	if got := s2.Platform.SalesRecords(); len(got) != 1 || got[0].Review == nil || got[0].Review.Reviewer != "li.wei" {
		t.Fatalf("books after restart %+v", got)
	}
	if got := s2.Platform.Alarms(); len(got) < len(alarms) || !reflect.DeepEqual(got[:len(alarms)], alarms) {
		t.Fatalf("alarms after restart %+v, want %+v first", got, alarms)
	}
	if code, _, _ := httpDo(t, "POST", srv2.URL+"/api/platform/sales/"+sale.SaleID+"/review", `{"decision":"accept","reviewer":"wang"}`); code != http.StatusConflict {
		t.Fatalf("review after restart: %d", code)
	}
	rc = getRecon(t, srv2.URL)
	if len(rc) != 1 || rc[0].Claimed == nil || rc[0].Received.Sales != 1 {
		t.Fatalf("reconciliation after restart %+v", rc)
	}
}

// TestPlatformBooksCorrupt: books that cannot be read stop the start with
// an error naming them; the file is left as it was.
func TestPlatformBooksCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "platform", platform.BooksFile)
	must(t, os.MkdirAll(filepath.Dir(path), 0o700))
	junk := bytes.Repeat([]byte("bangfu "), 2000)
	must(t, os.WriteFile(path, junk, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{MQTTAddr: "127.0.0.1:0", DataDir: dir, Logger: testLogger(t)})
	if err == nil {
		s.Close()
		t.Fatal("started on corrupt books")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "cannot open") {
		t.Fatalf("error %q does not name the books", err)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, junk) {
		t.Fatal("the corrupt books were changed")
	}
}
