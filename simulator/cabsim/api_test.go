package cabsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAPIErrors checks that every refusal of the HTTP API is a non-2xx
// status with {"error": …}, as SIMULATOR.md promises outside scripts.
func TestAPIErrors(t *testing.T) {
	s := startSim(t, Options{Seed: 41})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	id := s.Cabinets()[0].ID
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/nope", "", http.StatusNotFound},
		{"GET", "/api/cabinets/" + id + "/scan", "", http.StatusMethodNotAllowed},
		{"GET", "/api/cabinets/NO-SUCH", "", http.StatusNotFound},
		{"POST", "/api/cabinets/NO-SUCH/door", `{"door":1,"action":"open"}`, http.StatusNotFound},
		{"POST", "/api/cabinets/" + id + "/door", `{"door":1,"action":"open"}`, http.StatusConflict}, // locked
		{"POST", "/api/cabinets/" + id + "/door", `{"door":1,"action":"wiggle"}`, http.StatusConflict},
		{"POST", "/api/cabinets/" + id + "/door", `{"door":1,"action":"open","extra":1}`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/take", `{"shelf":1,"sku":"NM-0003"`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/take", `{"shelf":1,"sku":"NM-0003","qty":1}`, http.StatusConflict}, // door shut
		{"POST", "/api/cabinets/" + id + "/put", `{"shelf":1}`, http.StatusConflict},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == "" {
				t.Fatalf("status %d, body not {\"error\":…}: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body.Error, tc.want)
			}
		})
	}
}
