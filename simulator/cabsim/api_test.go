package cabsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// TestAPIErrors checks that every refusal of the HTTP API is a non-2xx
// status with {"error": …}, as docs/simulator.md promises outside scripts.
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
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1,"g":3000}`, http.StatusConflict}, // door shut
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1}`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1,"g":-5}`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1,"g":1e9}`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1,"g":"heavy"}`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":9,"g":0}`, http.StatusConflict},
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1,"g":3000,"x":1.5}`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1,"g":3000,"x":-0.1}`, http.StatusBadRequest},
		{"POST", "/api/cabinets/" + id + "/lean", `{"shelf":1,"g":3000,"x":0.2}`, http.StatusConflict}, // door shut
		{"POST", "/api/cabinets/NO-SUCH/lean", `{"shelf":1,"g":0}`, http.StatusNotFound},
		{"POST", "/api/cabinets/NO-SUCH/power", `{"action":"cut"}`, http.StatusNotFound},
		{"POST", "/api/cabinets/" + id + "/power", `{"action":"flicker"}`, http.StatusConflict},
		{"POST", "/api/cabinets/" + id + "/power", `{"action":"cut","extra":1}`, http.StatusBadRequest},
		{"GET", "/api/cabinets/" + id + "/power", "", http.StatusMethodNotAllowed},
		{"POST", "/api/cabinets/NO-SUCH/network", `{"action":"down"}`, http.StatusNotFound},
		{"POST", "/api/cabinets/" + id + "/network", `{"action":"sideways"}`, http.StatusConflict},
		{"POST", "/api/cabinets/" + id + "/network", `{"action":`, http.StatusBadRequest},
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
	// A cabinet on one load cell a shelf shows no right cells.
	resp, err := http.Get(srv.URL + "/api/cabinets/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Shelves []map[string]any `json:"shelves"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || len(v.Shelves) == 0 {
		t.Fatalf("view: %v", err)
	}
	for _, sh := range v.Shelves {
		for _, k := range []string{"right_g", "read_right_g", "lean_x"} {
			if _, ok := sh[k]; ok {
				t.Errorf("a one-cell shelf shows %q: %v", k, sh)
			}
		}
	}
}

// TestPowerAndNetworkAPI drives POST …/power and …/network over HTTP in
// both firmware modes, in the middle of a purchase: a cut darkens the
// hardware and stops the firmware (the view says so), the shopper closes
// the door in the dark, and after the restore the firmware finishes the
// session into one correct sale; the network endpoint shows in the view.
func TestPowerAndNetworkAPI(t *testing.T) {
	for _, mode := range []string{InProcess, Process} {
		t.Run(mode, func(t *testing.T) {
			o := Options{Seed: 43, Configure: cutConfig}
			var s *Sim
			if mode == Process {
				s = startProcessSim(t, o)
			} else {
				s = startSim(t, o)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			id := s.Cabinets()[0].ID
			post := func(path, body string) CabinetView {
				t.Helper()
				resp, err := http.Post(srv.URL+"/api/cabinets/"+id+path, "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var v CabinetView
				if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("POST %s %s: status %d, %v", path, body, resp.StatusCode, err)
				}
				return v
			}
			h := newHarness(t, s, id, 2*time.Minute)
			h.waitReady()
			if v, _ := s.View(id); v.Mode != "idle" || v.Power != "on" || v.Network != "up" || v.Runs != mode {
				t.Fatalf("view before: mode %q power %q network %q firmware %q", v.Mode, v.Power, v.Network, v.Runs)
			}
			cmd, reply := h.unlock()
			h.must(<-reply)
			if !h.openDoor(5 * time.Second) {
				t.Fatal("door did not open")
			}
			time.Sleep(300 * time.Millisecond)
			h.must(s.Take(id, 4, "CQ-0305", 1))
			v := post("/power", `{"action":"cut"}`)
			if v.Power != "off" || v.Mode != "offline" || v.Session != nil || v.Display["qr"] != "" || v.Display["status"] != "" {
				t.Fatalf("after the cut: power %q mode %q session %v display %v", v.Power, v.Mode, v.Session, v.Display)
			}
			if _, ok := h.c.Status(); ok {
				t.Fatal("a firmware still reports with the power cut")
			}
			h.door("close")
			if err := h.lockedShut(); err != nil {
				t.Fatalf("door in the dark: %v", err)
			}
			post("/power", `{"action":"cut"}`) // again: nothing happens
			if v := post("/power", `{"action":"restore"}`); v.Power != "on" {
				t.Fatalf("after the restore: power %q", v.Power)
			}
			h.settle(30 * time.Second)
			sale, ok := h.saleOf(cmd.SessionID)
			if !ok || sale.Status != msg.SaleExact || len(sale.Lines) != 1 || sale.Lines[0].SKU != "CQ-0305" {
				t.Fatalf("sale after the power cut: %+v (found %v)", sale, ok)
			}
			h.must(h.checkBooks())
			if v := post("/network", `{"action":"down"}`); v.Network != "down" {
				t.Fatalf("network %q after down", v.Network)
			}
			h.until(10*time.Second, "the cabinet to notice", func() bool {
				st, ok := h.c.Status()
				return ok && !st.Connected
			})
			if v := post("/network", `{"action":"up"}`); v.Network != "up" {
				t.Fatalf("network %q after up", v.Network)
			}
			h.settle(30 * time.Second)
		})
	}
}
