package cabsim

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// TestTwoCell starts the simulator with TwoCell (-two-cell), in both
// firmware modes: every shelf of the cabinet stands on two load cells
// (its hardware has Right scales), the virtual platform's planogram
// carries each SKU's lane — the stock file's, else spread evenly — the
// units stand in those lanes, GET /api/cabinets/{id} shows each shelf's
// right cell, and a purchase is one exact sale.
func TestTwoCell(t *testing.T) {
	file := strings.Replace(stockExample, `"items":{"TEA-100":12,"HONEY-500":4}}`,
		`"items":{"TEA-100":12,"HONEY-500":4},"lanes":{"HONEY-500":0.9}}`, 1)
	wantLanes := map[int]map[string]float64{1: {"HONEY-500": 0.5}, 2: {"HONEY-500": 0.9, "TEA-100": 0.75}}
	for _, mode := range []string{InProcess, Process} {
		t.Run(mode, func(t *testing.T) {
			o := Options{Seed: 12, StockFile: writeFile(t, "stock.json", file), TwoCell: true}
			var s *Sim
			if mode == Process {
				s = startProcessSim(t, o)
			} else {
				s = startSim(t, o)
			}
			id := s.Cabinets()[0].ID
			c, _ := s.Cabinet(id)
			for _, sh := range c.HW.Hardware().Shelves {
				if sh.Right == nil {
					t.Fatalf("shelf %d has no right load cell", sh.Number)
				}
			}

			// The planogram on the wire, as the firmware gets it.
			tp := newTap(t, s.Broker.URL())
			tp.waitFor(t, "planogram", 1)
			var plan msg.Planogram
			tp.mu.Lock()
			for _, m := range tp.msgs {
				if cab, leaf, ok := msg.ParseCabinetTopic(msg.DefaultPrefix, m.Topic()); ok && cab == id && leaf == "planogram" {
					_, err := msg.KeyRing{s.Platform.KeyID(): s.Platform.PublicKey()}.OpenInto(m.Payload(), &plan)
					must(t, err)
				}
			}
			tp.mu.Unlock()
			if len(plan.Shelves) != 2 {
				t.Fatalf("planogram %+v", plan)
			}
			for _, sh := range plan.Shelves {
				if !reflect.DeepEqual(sh.Lanes, wantLanes[sh.Shelf]) {
					t.Errorf("planogram shelf %d lanes %v, want %v", sh.Shelf, sh.Lanes, wantLanes[sh.Shelf])
				}
			}

			// The units stand in their lanes: the right cell carries
			// Σ x·w of them, each x within 0.05 of its lane.
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			h := newHarness(t, s, id, 2*time.Minute)
			var shelves []map[string]any
			h.until(10*time.Second, "the right cells to read their loads", func() bool {
				resp, err := http.Get(srv.URL + "/api/cabinets/" + id)
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				var v struct {
					Shelves []map[string]any `json:"shelves"`
				}
				if json.NewDecoder(resp.Body).Decode(&v) != nil {
					return false
				}
				shelves = v.Shelves
				for _, sh := range shelves {
					read, ok := sh["read_right_g"].(float64)
					right, _ := sh["right_g"].(float64)
					if !ok || math.Abs(read-right) > 5 {
						return false
					}
				}
				return true
			})
			for _, sh := range shelves {
				n := int(sh["shelf"].(float64))
				var centre, slack float64 // slack: the units' jitter in their lanes and weights within tolerance
				for sku, q := range sh["items"].(map[string]any) {
					p, _ := s.goods.Product(sku)
					centre += q.(float64) * p.UnitWeightG * wantLanes[n][sku]
					slack += q.(float64) * (0.05*(p.UnitWeightG+p.WeightTolG) + p.WeightTolG)
				}
				right, _ := sh["right_g"].(float64)
				read, _ := sh["read_right_g"].(float64)
				if math.Abs(right-centre) > slack+0.1 || math.Abs(read-right) > 5 {
					t.Errorf("shelf %d: right cell true %.1f g, read %.1f g; its lanes put about %.1f g on it", n, right, read, centre)
				}
			}

			sale := buyHoneyAndTea(t, h, s, id)
			if got := lines(sale); sale.Status != msg.SaleExact || sale.TotalFen != 6800+3800 || got["1/HONEY-500"] != 1 || got["2/TEA-100"] != 1 {
				t.Fatalf("sale %s total %d fen, lines %v; want exact 10600", sale.Status, sale.TotalFen, got)
			}
			h.must(h.checkBooks())
		})
	}
}

// TestScenarioTwoCell: a scenario may stand the cabinet on two load cells
// and lean at a place along a shelf.
func TestScenarioTwoCell(t *testing.T) {
	path := writeFile(t, "sc.json", `{"name":"x","two_cell":true,"steps":[{"lean":{"shelf":1,"g":900,"x":0.2}},{"lean":{"shelf":1,"g":0}}]}`)
	sc, err := LoadScenario(path)
	must(t, err)
	if o := sc.Apply(Options{Seed: 3}); !o.TwoCell || o.Seed != 3 {
		t.Fatalf("scenario options %+v", o)
	}
	if l := sc.Steps[0].Lean; l == nil || l.X == nil || *l.X != 0.2 || sc.Steps[1].Lean.X != nil {
		t.Fatalf("lean steps %+v %+v", sc.Steps[0].Lean, sc.Steps[1].Lean)
	}
	if o := (Scenario{}).Apply(Options{TwoCell: true}); !o.TwoCell {
		t.Error("a scenario without two_cell took -two-cell away")
	}
}
