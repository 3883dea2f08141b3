package msg

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestValidateLanes(t *testing.T) {
	skus := []string{"NM-0001", "NM-0007", "NM-0012"}
	many := map[string]float64{}
	for i := range MaxLanes + 1 {
		many[fmt.Sprintf("NM-%04d", i)] = 0.5
	}
	manySKUs := make([]string, 0, len(many))
	for k := range many {
		manySKUs = append(manySKUs, k)
	}
	atCap := map[string]float64{}
	for _, k := range manySKUs[:MaxLanes] {
		atCap[k] = 1
	}
	for _, tc := range []struct {
		name  string
		skus  []string
		lanes map[string]float64
		want  string // in the error; "" means valid
	}{
		{"no lanes", skus, nil, ""},
		{"empty lanes", skus, map[string]float64{}, ""},
		{"no lanes, no skus", nil, nil, ""},
		{"every sku", skus, map[string]float64{"NM-0001": 0, "NM-0007": 0.5, "NM-0012": 1}, ""},
		{"some skus", skus, map[string]float64{"NM-0007": 0.25}, ""},
		{"negative zero", skus, map[string]float64{"NM-0001": math.Copysign(0, -1)}, ""},
		{"at the cap", manySKUs, atCap, ""},

		{"below 0", skus, map[string]float64{"NM-0001": -0.1}, `shelf 3: lane of "NM-0001" at -0.1, want 0 to 1`},
		{"above 1", skus, map[string]float64{"NM-0012": 1.0000001}, `lane of "NM-0012" at 1.0000001`},
		{"NaN", skus, map[string]float64{"NM-0001": math.NaN()}, "at NaN"},
		{"+Inf", skus, map[string]float64{"NM-0001": math.Inf(1)}, "at +Inf"},
		{"-Inf", skus, map[string]float64{"NM-0001": math.Inf(-1)}, "at -Inf"},
		{"sku not on the shelf", skus, map[string]float64{"NM-0099": 0.5}, `lane for "NM-0099", which the shelf's skus do not list`},
		{"empty sku", skus, map[string]float64{"": 0.5}, `lane for ""`},
		{"lanes on a shelf without skus", nil, map[string]float64{"NM-0001": 0.5}, `lane for "NM-0001"`},
		{"sku differing in case", skus, map[string]float64{"nm-0001": 0.5}, `lane for "nm-0001"`},
		{"control characters quoted", skus, map[string]float64{"NM\x00\u202e1": 0.5}, `lane for "NM\x00\u202e1"`},
		{"over-long key cut short", skus, map[string]float64{strings.Repeat("K", 10_000): 0.5}, `lane for "` + strings.Repeat("K", 64) + `"`},
		{"first bad in sku order, others counted", skus,
			map[string]float64{"NM-0012": 2, "NM-0001": -1, "NM-0099": 0, "NM-0007": 0.5},
			`lane of "NM-0001" at -1, want 0 to 1 (and 2 more bad lanes)`},
		{"over the cap", manySKUs, many, fmt.Sprintf("%d lanes, at most %d", MaxLanes+1, MaxLanes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := PlanogramShelf{Shelf: 3, Door: 1, SKUs: tc.skus, Lanes: tc.lanes}
			err := sh.ValidateLanes()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "msg: shelf 3: ") {
				t.Errorf("err %q does not name the shelf", err)
			}
			if len(err.Error()) > 256 {
				t.Errorf("reason of %d bytes", len(err.Error()))
			}
		})
	}
}

// Lanes arrive in a strictly decoded planogram: the decoder refuses
// duplicate SKUs and non-numbers before ValidateLanes sees them, and what it
// accepts is what ValidateLanes judges.
func TestPlanogramLanesDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // in the DecodeStrict or ValidateLanes error; "" means valid
	}{
		{"lanes", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A","B"],"lanes":{"A":0.2,"B":0.8}}]}`, ""},
		{"no lanes", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"]}]}`, ""},
		{"lanes null", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"lanes":null}]}`, ""},
		{"integer lanes", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A","B"],"lanes":{"A":0,"B":1}}]}`, ""},
		{"duplicate sku", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"lanes":{"A":0.2,"A":0.9}}]}`, `duplicate key "A"`},
		{"lane as string", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"lanes":{"A":"0.5"}}]}`, "cannot unmarshal"},
		{"lanes as list", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"lanes":[0.5]}]}`, "cannot unmarshal"},
		{"lane overflows float64", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"lanes":{"A":1e400}}]}`, "cannot unmarshal"},
		{"lane upper case field", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"LANES":{"A":0.5}}]}`, `unknown field "LANES"`},
		{"lane out of range", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"lanes":{"A":-0.1}}]}`, "want 0 to 1"},
		{"lane of another shelf's sku", `{"version":7,"cabinet_id":"C","shelves":[{"shelf":1,"door":1,"skus":["A"],"lanes":{"B":0.5}},{"shelf":2,"door":1,"skus":["B"]}]}`, `lane for "B"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Planogram
			err := DecodeStrict([]byte(tc.in), &p)
			if err == nil {
				for _, sh := range p.Shelves {
					if err = sh.ValidateLanes(); err != nil {
						break
					}
				}
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
		})
	}
}
