package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// stockFile is a planogram with its products and units: the simulator's
// stock file format (docs/simulator.md), which is what a planner has in
// hand before a planogram reaches a cabinet.
type stockFile struct {
	Products []msg.Product `json:"products"`
	Shelves  []struct {
		Shelf int                `json:"shelf"`
		Door  int                `json:"door"`
		Items map[string]int     `json:"items"`
		Lanes map[string]float64 `json:"lanes,omitempty"`
	} `json:"shelves"`
}

// runCheckPlanogram is `cabinet check-planogram FILE`: the planogram lint
// for a planner. It prints each shelf's within-shelf warnings, the predicted
// share of ordinary sessions charged exactly (a seeded simulation over the
// cabinet's own hypothesis space, at the file's stock) and the worst
// confusions; exit 0 when the planogram passes, 1 when it does not or the
// file is bad, 2 on a usage error.
func runCheckPlanogram(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-planogram", flag.ContinueOnError)
	fs.SetOutput(stderr)
	noise := fs.Float64("noise-g", 0.5, "load-cell noise σ per settled reading, grams")
	sessions := fs.Int("sessions", 2000, "simulated sessions")
	seed := fs.Uint64("seed", 1, "simulation seed")
	twoCell := fs.Bool("two-cell", false, "every shelf on two load cells, SKUs at their lanes (spread evenly where the file gives none)")
	revenue := fs.Bool("revenue-first", false, "judge with the revenue-first charge rule")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || *sessions <= 0 || !(*noise > 0) {
		fmt.Fprintln(stderr, "usage: cabinet check-planogram [--noise-g 0.5] [--sessions 2000] [--seed 1] [--two-cell] [--revenue-first] FILE")
		return 2
	}
	plan, err := loadPlan(fs.Arg(0), *twoCell)
	if err != nil {
		fmt.Fprintln(stderr, "cabinet:", err)
		return 1
	}
	for _, sh := range plan {
		var names []string
		for _, k := range sh.SKUs {
			names = append(names, fmt.Sprintf("%s %g±%g g ×%d", k.SKU, k.UnitG, k.TolG, sh.Stock[k.SKU]))
		}
		fmt.Fprintf(stdout, "shelf %d: %s\n", sh.Shelf, strings.Join(names, ", "))
		for _, w := range infer.Lint(sh.Shelf, sh.SKUs, 0) {
			fmt.Fprintf(stdout, "  warning: %s\n", w.Text)
		}
	}
	opt := &infer.Options{RevenueFirst: *revenue}
	p := infer.Predict(plan, *sessions, *noise, *seed, opt)
	rep := firmware.LintReport(p)
	fmt.Fprintf(stdout, "predicted exact: %.1f %% of %d ordinary sessions (σ %g g); wrong exact %.2f %%, overcharged %.2f %%\n",
		p.ExactPct, p.Sessions, *noise, p.WrongExactPct, p.OverchargePct)
	for _, c := range rep.Confusions {
		fmt.Fprintf(stdout, "  %5.1f %%  took %s, fits %s\n", c.Pct, c.Taken, c.ConfusedWith)
	}
	if !p.Pass {
		fmt.Fprintf(stdout, "FAIL: below %d %% exact, or a wrong exact sale\n", infer.PassExactPct)
		return 1
	}
	fmt.Fprintln(stdout, "pass")
	return 0
}

// loadPlan reads a stock file strictly and turns it into the lint's shelves.
func loadPlan(path string, twoCell bool) ([]infer.PlanShelf, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f stockFile
	if err := msg.DecodeStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	products := map[string]msg.Product{}
	for _, p := range f.Products {
		if _, dup := products[p.SKU]; dup || p.SKU == "" {
			return nil, fmt.Errorf("%s: product %q missing or listed twice", path, p.SKU)
		}
		if !(p.UnitWeightG > 0) || p.WeightTolG < 0 || p.WeightTolG >= p.UnitWeightG || p.PriceFen < 0 {
			return nil, fmt.Errorf("%s: product %s: weight %g ± %g g, price %d fen: want weight > tolerance ≥ 0 and price ≥ 0",
				path, p.SKU, p.UnitWeightG, p.WeightTolG, p.PriceFen)
		}
		products[p.SKU] = p
	}
	if len(f.Shelves) == 0 {
		return nil, fmt.Errorf("%s: no shelves", path)
	}
	var plan []infer.PlanShelf
	seen := map[int]bool{}
	for _, sh := range f.Shelves {
		if sh.Shelf < 1 || seen[sh.Shelf] {
			return nil, fmt.Errorf("%s: shelf %d: numbered from 1, once each", path, sh.Shelf)
		}
		seen[sh.Shelf] = true
		ps := infer.PlanShelf{Shelf: sh.Shelf, Stock: map[string]int{}, TwoCell: twoCell}
		skus := make([]string, 0, len(sh.Items))
		for sku := range sh.Items {
			skus = append(skus, sku)
		}
		slices.Sort(skus)
		for i, sku := range skus {
			p, ok := products[sku]
			if !ok {
				return nil, fmt.Errorf("%s: shelf %d: SKU %q is not among the products", path, sh.Shelf, sku)
			}
			if sh.Items[sku] < 0 {
				return nil, fmt.Errorf("%s: shelf %d: %d units of %s", path, sh.Shelf, sh.Items[sku], sku)
			}
			lane, ok := sh.Lanes[sku]
			if !ok {
				lane = (float64(i) + 0.5) / float64(len(skus))
			}
			if !(lane >= 0 && lane <= 1) {
				return nil, fmt.Errorf("%s: shelf %d: lane of %s is %g, want 0…1", path, sh.Shelf, sku, lane)
			}
			ps.SKUs = append(ps.SKUs, infer.SKU{SKU: sku, UnitG: p.UnitWeightG, TolG: p.WeightTolG, PriceFen: p.PriceFen, Lane: lane})
			ps.Stock[sku] = sh.Items[sku]
		}
		plan = append(plan, ps)
	}
	slices.SortFunc(plan, func(a, b infer.PlanShelf) int { return cmp.Compare(a.Shelf, b.Shelf) })
	return plan, nil
}
