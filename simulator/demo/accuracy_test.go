package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/infer"
)

// The accuracy harness plays random shopping sessions on the demo planogram
// with simulated load cells and scores infer.Infer against the truth.
//
// Each session starts from the demo stock with every unit's true weight drawn
// uniformly within UnitG±0.9·TolG; the shopper takes 0–3 units of each SKU
// from one or two random shelves (bounded by stock) and, in 5 % of sessions,
// moves one unit from one shelf to another. Each settled reading is the mean
// of 10 samples with Gaussian noise σ, so the delta's σ passed to Infer is
// σ·√(2/10).

// trayG is the weight of an empty shelf tray on its load cell.
const trayG = 1250.0

type session struct {
	shelves []infer.Shelf
	want    []infer.Line // the units really taken, by shelf
	wantFen int64
	moved   bool
}

type accuracy struct {
	baskets      int
	exactCorrect int // exact or empty, and the charge is the truth
	wrongExact   int // exact or empty, but the charge is not the truth
	ambiguous    int
	ambCorrect   int // ambiguous, yet the cheapest basket is the truth
	unexplained  int
	overcharges  int
	moves        int
	trueFen      int64
	chargedFen   int64
}

func (a accuracy) pct(n int) float64 { return 100 * float64(n) / float64(a.baskets) }

// demoCabinet turns the demo planogram and catalog into infer's view.
func demoCabinet(t testing.TB) (plan map[int][]infer.SKU, cabinet []infer.SKU, prices map[string]int64) {
	t.Helper()
	bySKU := map[string]infer.SKU{}
	for _, p := range Catalog(time.Unix(1_760_000_000, 0)).Products {
		bySKU[p.SKU] = infer.SKU{SKU: p.SKU, UnitG: p.UnitWeightG, TolG: p.WeightTolG, PriceFen: p.PriceFen}
	}
	plan = map[int][]infer.SKU{}
	prices = map[string]int64{}
	for _, s := range Planogram("NM-150125-0001").Shelves {
		for _, id := range s.SKUs {
			k, ok := bySKU[id]
			if !ok {
				t.Fatalf("planogram SKU %s not in catalog", id)
			}
			plan[s.Shelf] = append(plan[s.Shelf], k)
			cabinet = append(cabinet, k)
			prices[id] = k.PriceFen
		}
	}
	return plan, cabinet, prices
}

type unit struct {
	sku string
	g   float64
}

// newSession draws one shopping session.
func newSession(rng *rand.Rand, plan map[int][]infer.SKU, sigma float64) session {
	shelfNos := make([]int, 0, len(plan))
	for n := range plan {
		shelfNos = append(shelfNos, n)
	}
	slices.Sort(shelfNos)

	units := map[int][]unit{}
	before := map[int]float64{}
	stock := Stock()
	for _, n := range shelfNos {
		for _, k := range plan[n] {
			for range stock[n][k.SKU] {
				units[n] = append(units[n], unit{k.SKU, k.UnitG + (2*rng.Float64()-1)*0.9*k.TolG})
			}
		}
		before[n] = load(units[n])
	}

	// Takes: 0–3 units of each SKU of one or two shelves.
	var s session
	taken := map[int]map[string]int{}
	touched := rng.Perm(len(shelfNos))[:1+rng.IntN(2)]
	for _, ti := range touched {
		n := shelfNos[ti]
		taken[n] = map[string]int{}
		for _, k := range plan[n] {
			for range rng.IntN(4) {
				i := pickUnit(rng, units[n], k.SKU)
				if i < 0 {
					break // out of stock
				}
				units[n] = slices.Delete(units[n], i, i+1)
				taken[n][k.SKU]++
				s.wantFen += k.PriceFen
			}
		}
	}
	// A unit moved from one shelf to another: not bought.
	if rng.Float64() < 0.05 {
		from := shelfNos[rng.IntN(len(shelfNos))]
		to := shelfNos[rng.IntN(len(shelfNos))]
		if from != to && len(units[from]) > 0 {
			i := rng.IntN(len(units[from]))
			units[to] = append(units[to], units[from][i])
			units[from] = slices.Delete(units[from], i, i+1)
			s.moved = true
		}
	}

	noise := sigma * math.Sqrt(2.0/10)
	for _, n := range shelfNos {
		s.shelves = append(s.shelves, infer.Shelf{
			Shelf: n, SKUs: plan[n], NoiseG: noise,
			BeforeG: reading(rng, trayG+before[n], sigma),
			AfterG:  reading(rng, trayG+load(units[n]), sigma),
		})
		for _, k := range plan[n] {
			if q := taken[n][k.SKU]; q > 0 {
				s.want = append(s.want, infer.Line{Shelf: n, SKU: k.SKU, Qty: q})
			}
		}
	}
	slices.SortFunc(s.want, func(a, b infer.Line) int {
		if a.Shelf != b.Shelf {
			return a.Shelf - b.Shelf
		}
		if a.SKU < b.SKU {
			return -1
		}
		return 1
	})
	return s
}

func load(us []unit) float64 {
	var g float64
	for _, u := range us {
		g += u.g
	}
	return g
}

// pickUnit returns the index of a random unit of sku, or -1.
func pickUnit(rng *rand.Rand, us []unit, sku string) int {
	var idx []int
	for i, u := range us {
		if u.sku == sku {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return -1
	}
	return idx[rng.IntN(len(idx))]
}

// reading is a settled average of 10 noisy samples, as the firmware takes.
func reading(rng *rand.Rand, trueG, sigma float64) float64 {
	var sum float64
	for range 10 {
		sum += trueG + rng.NormFloat64()*sigma
	}
	return sum / 10
}

func sessions(t testing.TB, n int, sigma float64, seed uint64) ([]session, []infer.SKU, map[string]int64) {
	plan, cabinet, prices := demoCabinet(t)
	rng := rand.New(rand.NewPCG(seed, uint64(sigma*1000)))
	out := make([]session, n)
	for i := range out {
		out[i] = newSession(rng, plan, sigma)
	}
	return out, cabinet, prices
}

func score(ss []session, cabinet []infer.SKU, prices map[string]int64) accuracy {
	var a accuracy
	for _, s := range ss {
		r := infer.Infer(s.shelves, cabinet, nil)
		var fen int64
		for _, l := range r.Lines {
			fen += int64(l.Qty) * prices[l.SKU]
		}
		correct := slices.Equal(r.Lines, s.want)
		a.baskets++
		a.trueFen += s.wantFen
		a.chargedFen += fen
		if s.moved {
			a.moves++
		}
		if fen > s.wantFen {
			a.overcharges++
		}
		if len(r.Unexplained) > 0 {
			a.unexplained++
		}
		switch {
		case r.Status == infer.StatusAmbiguous:
			a.ambiguous++
			if correct {
				a.ambCorrect++
			}
		case correct:
			a.exactCorrect++
		default:
			a.wrongExact++
		}
	}
	return a
}

// BenchmarkInferenceAccuracy scores 10,000 sessions per σ once, reports the
// shares as metrics, and times Infer per session in the loop.
func BenchmarkInferenceAccuracy(b *testing.B) {
	for _, sigma := range []float64{0.5, 2} {
		b.Run(fmt.Sprintf("sigma=%gg", sigma), func(b *testing.B) {
			ss, cabinet, prices := sessions(b, 10_000, sigma, 20260101)
			a := score(ss, cabinet, prices)
			for i := 0; b.Loop(); i++ {
				s := ss[i%len(ss)]
				infer.Infer(s.shelves, cabinet, nil)
			}
			// After the loop: b.Loop resets the timer, which drops metrics
			// reported before it.
			b.ReportMetric(a.pct(a.exactCorrect), "exact_%")
			b.ReportMetric(a.pct(a.ambiguous), "ambiguous_%")
			b.ReportMetric(a.pct(a.ambCorrect), "ambiguous_correct_%")
			b.ReportMetric(a.pct(a.wrongExact), "wrong_exact_%")
			b.ReportMetric(float64(a.overcharges), "overcharges")
			b.ReportMetric(100*float64(a.trueFen-a.chargedFen)/float64(a.trueFen), "undercharged_fen_%")
		})
	}
}

// TestInferenceAccuracy is the short gate: no overcharge at either σ.
func TestInferenceAccuracy(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	for _, sigma := range []float64{0.5, 2} {
		t.Run(fmt.Sprintf("sigma=%gg", sigma), func(t *testing.T) {
			ss, cabinet, prices := sessions(t, n, sigma, 7)
			a := score(ss, cabinet, prices)
			t.Logf("%d sessions (%d with a move): exact %.1f%%, ambiguous %.1f%% (correct %.1f%%), wrong exact %.2f%%, unexplained %d, overcharges %d, undercharged %.2f%% of fen",
				a.baskets, a.moves, a.pct(a.exactCorrect), a.pct(a.ambiguous), a.pct(a.ambCorrect),
				a.pct(a.wrongExact), a.unexplained, a.overcharges, 100*float64(a.trueFen-a.chargedFen)/float64(a.trueFen))
			if a.overcharges != 0 {
				t.Errorf("%d overcharges in %d sessions", a.overcharges, a.baskets)
			}
		})
	}
}
