package infer

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// benchPlan is a six-shelf cabinet of standard packs whose weights are
// whole multiples of each other across shelves, with realistic stock.
func benchPlan() []PlanShelf {
	k := func(name string, w, tol float64, fen int64) SKU {
		return SKU{SKU: name, UnitG: w, TolG: tol, PriceFen: fen}
	}
	stock := func(skus ...SKU) map[string]int {
		m := map[string]int{}
		for i, s := range skus {
			m[s.SKU] = 6 + 2*i
		}
		return m
	}
	shelves := [][]SKU{
		{k("TEA-100", 100, 2, 3800), k("HONEY-1000", 1000, 15, 9800)},
		{k("JERKY-150", 150, 3, 5980), k("RICE-400", 400, 6, 1690)},
		{k("PEPPER-250", 250, 4, 3600), k("NOODLE-1000", 1000, 12, 1880)},
		{k("HONEY-500", 500, 8, 6800), k("CHILI-150", 150, 2, 1590)},
		{k("MILLET-400", 400, 5, 2590)},
		{k("OATS-200", 200, 3, 2680), k("FUNGUS-100", 100, 2, 4500), k("BEEF-500", 500, 6, 11800)},
	}
	var plan []PlanShelf
	for i, s := range shelves {
		plan = append(plan, PlanShelf{Shelf: i + 1, SKUs: s, Stock: stock(s...)})
	}
	return plan
}

// BenchmarkInfer6Shelves times Infer on ordinary sessions of a six-shelf
// cabinet and reports the per-session p50 and p99 (make bench; under
// qemu-arm-static for the armv7 figure).
func BenchmarkInfer6Shelves(b *testing.B) {
	plan := benchPlan()
	var cabinet []SKU
	for _, sh := range plan {
		cabinet = append(cabinet, sh.SKUs...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	o := (*Options)(nil).resolved()
	var sessions [][]Shelf
	for range 500 {
		in, _, _ := drawSession(rng, plan, 0.5, o)
		sessions = append(sessions, in)
	}
	var ds []time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		Infer(sessions[i%len(sessions)], cabinet, nil)
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
}
