package cabsim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLoad runs the sale-load driver on three cabinets with a shopper a
// second at each, until six purchases have completed; then it stops the
// arrivals and checks that every completed purchase's sale reached the
// platform, each with its close→platform latency, and GET /api/load.
func TestLoad(t *testing.T) {
	s := startSim(t, Options{Cabinets: 3, Seed: 11, SaleEvery: time.Second})
	h := newHarness(t, s, s.Cabinets()[0].ID, 90*time.Second)
	report := func() LoadReport {
		r, ok := s.LoadReport()
		if !ok {
			t.Fatal("no sale load runs")
		}
		return r
	}
	h.until(60*time.Second, "six purchases completed", func() bool { return report().Purchases.Completed >= 6 })
	s.load.stop()
	h.until(30*time.Second, "the purchases in progress to finish and their sales to arrive", func() bool {
		r := report()
		return r.Purchases.InProgress == 0 && r.Pending == 0
	})
	r := report()
	t.Logf("%s", r.summary())
	p := r.Purchases
	if r.Lost != 0 || r.Pending != 0 {
		t.Errorf("lost %d, pending %d: want every sale arrived", r.Lost, r.Pending)
	}
	if r.SalesReceived < p.Completed {
		t.Errorf("%d sales received for %d purchases completed", r.SalesReceived, p.Completed)
	}
	if r.LatencyMS.N != p.Completed {
		t.Errorf("latency n %d, want one a completed purchase (%d)", r.LatencyMS.N, p.Completed)
	}
	if r.LatencyMS.P99 <= 0 || r.LatencyMS.P50 > r.LatencyMS.P99 || r.LatencyMS.P99 > r.LatencyMS.Max {
		t.Errorf("latency %+v: want 0 < p50 ≤ p99 ≤ max", r.LatencyMS)
	}
	if len(p.Failed) != 0 {
		t.Errorf("failed purchases %v, want none", p.Failed)
	}
	if p.Arrivals != p.Started+p.Skipped+p.Overflow || p.Started != p.Completed+p.Empty {
		t.Errorf("purchases %+v do not add up", p)
	}
	if r.HeartbeatsReceived == 0 || r.HeartbeatsPerS <= 0 || r.SalesPerS <= 0 || r.Cabinets != 3 || r.SaleEveryS != 1 {
		t.Errorf("report %+v", r)
	}

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var got map[string]any
	if code := getJSON(t, srv.URL+"/api/load", &got); code != http.StatusOK {
		t.Fatalf("GET /api/load: %d %v", code, got)
	}
	for _, k := range []string{"started_at", "elapsed_s", "cabinets", "sale_every_s", "purchases", "sales_received",
		"sales_per_s", "heartbeats_received", "heartbeats_per_s", "latency_ms", "pending", "lost"} {
		if _, ok := got[k]; !ok {
			t.Errorf("GET /api/load: no %q in %v", k, got)
		}
	}
	lat, _ := got["latency_ms"].(map[string]any)
	purch, _ := got["purchases"].(map[string]any)
	if lat["n"] != float64(p.Completed) || purch["completed"] != float64(p.Completed) || got["lost"] != 0.0 {
		t.Errorf("GET /api/load: latency %v, purchases %v, lost %v", lat, purch, got["lost"])
	}
	if _, err := time.Parse(time.RFC3339Nano, got["started_at"].(string)); err != nil || !strings.HasSuffix(got["started_at"].(string), "Z") {
		t.Errorf("started_at %v: want an RFC 3339 UTC time (%v)", got["started_at"], err)
	}
}

// TestLoadRefused checks that GET /api/load is a 404 in the API's error
// shape without a sale load, and that Start refuses a sale load against an
// external platform before anything runs.
func TestLoadRefused(t *testing.T) {
	srv := httptest.NewServer((&Sim{}).Handler())
	defer srv.Close()
	var got map[string]any
	if code := getJSON(t, srv.URL+"/api/load", &got); code != http.StatusNotFound || got["error"] == nil || len(got) != 1 {
		t.Errorf("GET /api/load without a load: %d %v, want 404 {\"error\":…}", code, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, o := range []Options{
		{SaleEvery: time.Second, PlatformKeys: map[string]string{"plat-1": "AAAA"}, BrokerURL: "tcp://127.0.0.1:1"},
		{SaleEvery: -time.Second},
	} {
		if s, err := Start(ctx, o); err == nil || !strings.Contains(err.Error(), "sale") {
			if s != nil {
				s.Close()
			}
			t.Errorf("Start(SaleEvery %v, %d platform keys): err %v, want a refusal of the sale load", o.SaleEvery, len(o.PlatformKeys), err)
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}
