package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPlanogram(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"clean passes", []string{"--sessions", "300", "testdata/clean-stock.json"}, 0,
			[]string{"shelf 3: JERKY-150 150±3 g ×10, RICE-1000 1000±15 g ×6", "predicted exact:", "pass"}},
		{"confusable fails, confusion named", []string{"--sessions", "300", "testdata/confusable-stock.json"}, 1,
			[]string{"warning: shelf 1:", "PEPPER-250", "FAIL"}},
		{"no file", []string{}, 2, nil},
		{"missing file", []string{"testdata/none.json"}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := runCheckPlanogram(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// Two cells under the confusable shelf, the packs in their own lanes: the
// centre of mass tells them apart far more often.
func TestCheckPlanogramTwoCells(t *testing.T) {
	exact := func(args ...string) float64 {
		var out, errb bytes.Buffer
		runCheckPlanogram(append([]string{"--sessions", "400"}, args...), &out, &errb)
		var pct float64
		for _, line := range strings.Split(out.String(), "\n") {
			if _, err := fmt.Sscanf(line, "predicted exact: %f", &pct); err == nil {
				return pct
			}
		}
		t.Fatalf("no prediction in:\n%s%s", out.String(), errb.String())
		return 0
	}
	one := exact("testdata/confusable-stock.json")
	two := exact("--two-cell", "testdata/confusable-stock.json")
	t.Logf("predicted exact: one cell %.1f %%, two cells %.1f %%", one, two)
	if two < one+15 {
		t.Errorf("two cells %.1f %% exact, one cell %.1f %%: the lanes should help", two, one)
	}
}

func TestCheckPlanogramRefusesBadFiles(t *testing.T) {
	for name, body := range map[string]string{
		"unknown field":   `{"products":[],"shelves":[],"extra":1}`,
		"unknown sku":     `{"products":[{"sku":"A","unit_weight_g":100,"weight_tol_g":2,"price_fen":1}],"shelves":[{"shelf":1,"door":1,"items":{"B":1}}]}`,
		"tolerance":       `{"products":[{"sku":"A","unit_weight_g":100,"weight_tol_g":100,"price_fen":1}],"shelves":[{"shelf":1,"door":1,"items":{"A":1}}]}`,
		"shelf twice":     `{"products":[{"sku":"A","unit_weight_g":100,"weight_tol_g":2,"price_fen":1}],"shelves":[{"shelf":1,"door":1,"items":{"A":1}},{"shelf":1,"door":1,"items":{"A":1}}]}`,
		"lane out of 0…1": `{"products":[{"sku":"A","unit_weight_g":100,"weight_tol_g":2,"price_fen":1}],"shelves":[{"shelf":1,"door":1,"items":{"A":1},"lanes":{"A":1.5}}]}`,
		"no shelves":      `{"products":[{"sku":"A","unit_weight_g":100,"weight_tol_g":2,"price_fen":1}],"shelves":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "stock.json")
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := runCheckPlanogram([]string{p}, &out, &errb); code != 1 || errb.Len() == 0 {
				t.Fatalf("exit %d, stderr %q: want 1 and a reason", code, errb.String())
			}
		})
	}
}
