package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/bangfu/cabinet/firmware/infer"
)

func tolFor(w float64) float64 { return math.Min(8, math.Max(2, math.Round(w*0.006))) }

func amb(ks []infer.SKU, rng *rand.Rand) float64 {
	var total, bad int
	var rec func(i int, cnt []int)
	rec = func(i int, cnt []int) {
		if i == len(ks) {
			total++
			for rep := 0; rep < 2; rep++ {
				var d float64
				for j, n := range cnt {
					for range n {
						d -= ks[j].UnitG + (2*rng.Float64()-1)*0.9*ks[j].TolG
					}
				}
				r := infer.Infer([]infer.Shelf{{Shelf: 1, SKUs: ks, BeforeG: 5000, AfterG: 5000 + d + rng.NormFloat64()*0.9, NoiseG: 0.9}}, ks, nil)
				if r.Shelves[0].Candidates > 1 {
					bad++
					break
				}
			}
			return
		}
		for n := 0; n <= 3; n++ {
			cnt[i] = n
			rec(i+1, cnt)
		}
		cnt[i] = 0
	}
	rec(0, make([]int, len(ks)))
	return float64(bad) / float64(total)
}

func TestSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ws := []float64{150, 158, 168, 180, 188, 200, 218, 228, 238, 250, 258, 268, 280, 288, 300, 318, 328, 350, 368, 380, 388, 400, 420, 428, 450, 458, 468, 480, 500, 520, 550, 568, 580, 600, 628, 650, 680, 700, 750, 780, 800, 850, 880, 888, 900, 950, 1000}
	type res struct {
		w   []float64
		amb float64
	}
	var best []res
	for i := range ws {
		for j := i + 1; j < len(ws); j++ {
			ks := []infer.SKU{{SKU: "a", UnitG: ws[i], TolG: tolFor(ws[i])}, {SKU: "b", UnitG: ws[j], TolG: tolFor(ws[j])}}
			if len(infer.Lint(1, ks, 0)) == 0 {
				best = append(best, res{[]float64{ws[i], ws[j]}, amb(ks, rng)})
			}
			for k := j + 1; k < len(ws); k += 1 {
				ks := []infer.SKU{{SKU: "a", UnitG: ws[i], TolG: tolFor(ws[i])}, {SKU: "b", UnitG: ws[j], TolG: tolFor(ws[j])}, {SKU: "c", UnitG: ws[k], TolG: tolFor(ws[k])}}
				if len(infer.Lint(1, ks, 0)) == 0 {
					best = append(best, res{[]float64{ws[i], ws[j], ws[k]}, -1})
				}
			}
		}
	}
	sort.Slice(best, func(i, j int) bool { return len(best[i].w) < len(best[j].w) || len(best[i].w) == len(best[j].w) && best[i].amb < best[j].amb })
	for _, r := range best {
		if len(r.w) == 2 && r.amb == 0 {
			fmt.Print(r.w, " ")
		}
	}
	fmt.Println()
	return
	var three []res
	for _, r := range best {
		if len(r.w) == 3 {
			ks := []infer.SKU{{SKU: "a", UnitG: r.w[0], TolG: tolFor(r.w[0])}, {SKU: "b", UnitG: r.w[1], TolG: tolFor(r.w[1])}, {SKU: "c", UnitG: r.w[2], TolG: tolFor(r.w[2])}}
			three = append(three, res{r.w, amb(ks, rng)})
		}
	}
	sort.Slice(three, func(i, j int) bool { return three[i].amb < three[j].amb })
	fmt.Println(len(three), "clean triples")
	for _, r := range three[:min(30, len(three))] {
		fmt.Println(r.w, r.amb)
	}
}
