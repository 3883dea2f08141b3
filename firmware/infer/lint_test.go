package infer

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	tests := []struct {
		name     string
		skus     []SKU
		maxItems int
		sets     []string // the confused SKU sets, joined with "+"
		text     string   // the first warning's text, when set
	}{
		{
			name: "clean shelf",
			skus: []SKU{skuA, skuB},
		},
		{
			name: "2×250 g vs 1×500 g",
			skus: []SKU{skuP250, skuP500},
			sets: []string{"T-P250+T-P500"},
			text: "shelf 3: 2×T-P250 (250 g) and 1×T-P500 (500 g) weigh the same within tolerance",
		},
		{
			name: "the spec's example, reported once for all its multiples",
			skus: []SKU{{SKU: "CQ-0104", UnitG: 1000, TolG: 8}, {SKU: "CQ-0103", UnitG: 500, TolG: 5}},
			sets: []string{"CQ-0103+CQ-0104"},
			text: "shelf 3: 2×CQ-0103 (500 g) and 1×CQ-0104 (1000 g) weigh the same within tolerance",
		},
		{
			name: "near miss within summed tolerance",
			// 3×300 = 900 vs 1×905: 5 g apart, tolerances 3·2 + 4 + 2 g.
			skus: []SKU{{SKU: "X", UnitG: 300, TolG: 2}, {SKU: "Y", UnitG: 905, TolG: 4}},
			sets: []string{"X+Y"},
		},
		{
			name: "a SKU's own multiples are fine with a sane tolerance",
			skus: []SKU{{SKU: "X", UnitG: 150, TolG: 8}},
		},
		{
			name: "a SKU's own multiples overlap when the tolerance is absurd",
			skus: []SKU{{SKU: "X", UnitG: 20, TolG: 4}},
			sets: []string{"X"},
		},
		{
			name: "three pack sizes",
			skus: []SKU{{SKU: "S", UnitG: 250, TolG: 3}, {SKU: "M", UnitG: 500, TolG: 4}, {SKU: "L", UnitG: 750, TolG: 5}},
			sets: []string{"L+M", "L+M+S", "L+S", "M+S"},
		},
		{
			name:     "maxItems bounds the baskets",
			skus:     []SKU{{SKU: "X", UnitG: 200, TolG: 2}, {SKU: "Y", UnitG: 1000, TolG: 6}},
			maxItems: 4, // 5×200 = 1000 needs five units
		},
		{
			name:     "larger baskets find more",
			skus:     []SKU{{SKU: "X", UnitG: 200, TolG: 2}, {SKU: "Y", UnitG: 1000, TolG: 6}},
			maxItems: 5,
			sets:     []string{"X+Y"},
		},
		{
			name: "duplicates and unweighable SKUs are ignored",
			skus: []SKU{skuA, skuA, {SKU: "Z", UnitG: 0, TolG: 1}, skuB},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := Lint(3, tc.skus, tc.maxItems)
			if ws == nil {
				t.Fatal("nil slice, want empty")
			}
			var sets []string
			for _, w := range ws {
				sets = append(sets, strings.Join(w.SKUs, "+"))
				if w.Shelf != 3 || reflect.DeepEqual(w.A, w.B) || !strings.HasPrefix(w.Text, "shelf 3: ") {
					t.Errorf("malformed warning %+v", w)
				}
			}
			if !reflect.DeepEqual(sets, tc.sets) {
				t.Errorf("sets = %q, want %q (%+v)", sets, tc.sets, ws)
			}
			if tc.text != "" && (len(ws) == 0 || ws[0].Text != tc.text) {
				t.Errorf("text = %+v, want %q", ws, tc.text)
			}
		})
	}
}

func TestPredict(t *testing.T) {
	clean := []PlanShelf{
		{Shelf: 1, SKUs: []SKU{skuA, skuB}},
		{Shelf: 2, SKUs: []SKU{skuC, skuD}},
	}
	confusable := append(slices.Clone(clean), PlanShelf{Shelf: 3, SKUs: []SKU{skuP250, skuP500}})

	p := Predict(clean, 300, 0.5, 1, nil)
	t.Logf("clean: %+v", p)
	if !p.Pass || p.ExactPct < 95 || p.WrongExactPct != 0 || p.OverchargePct != 0 {
		t.Errorf("clean planogram: %+v", p)
	}
	if again := Predict(clean, 300, 0.5, 1, nil); !reflect.DeepEqual(p, again) {
		t.Errorf("not deterministic: %+v vs %+v", p, again)
	}

	q := Predict(confusable, 300, 0.5, 1, nil)
	t.Logf("confusable: %+v", q)
	if q.Pass || q.ExactPct >= p.ExactPct || len(q.Confusions) == 0 {
		t.Fatalf("confusable planogram: %+v", q)
	}
	if c := q.Confusions[0]; !strings.Contains(c.Taken+c.ConfusedWith, "T-P250") || !strings.Contains(c.Taken+c.ConfusedWith, "T-P500") {
		t.Errorf("worst confusion %+v, want the 250 g and 500 g packs", c)
	}
	if q.OverchargePct != 0 {
		t.Errorf("overcharged %v%% of sessions", q.OverchargePct)
	}

	// Two cells under the confusable shelf, the packs in their own lanes:
	// the centre of mass tells them apart.
	two := slices.Clone(confusable)
	l250, l500 := skuP250, skuP500
	l250.Lane, l500.Lane = 0.2, 0.8
	two[2] = PlanShelf{Shelf: 3, SKUs: []SKU{l250, l500}, TwoCell: true}
	r := Predict(two, 300, 0.5, 1, nil)
	t.Logf("two cells: %+v", r)
	if r.ExactPct <= q.ExactPct+5 {
		t.Errorf("two cells %.1f%% exact, one cell %.1f%%: the lanes should help", r.ExactPct, q.ExactPct)
	}
}
