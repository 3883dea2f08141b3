package sim

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// normCDF is Φ(x) of the standard normal.
func normCDF(x float64) float64 { return 0.5 * (1 + math.Erf(x/math.Sqrt2)) }

// TestUnitWeights draws many units of one SKU and checks the package doc's
// distribution: within the tolerance, around the SKU's fill bias with
// σ = TolG/2.5, and the share near the limit that the 3 % tail and the
// normal's own tail add up to.
func TestUnitWeights(t *testing.T) {
	const (
		n     = 200_000
		unitG = 500.0
		tolG  = 10.0
	)
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			c, _ := newCab(t, Config{Seed: seed})
			must(t, c.Load(1, "HONEY-500", unitG, tolG, n))
			b := c.bias["HONEY-500"]
			if math.Abs(b) > fillBiasFrac {
				t.Fatalf("fill bias %.3f·TolG outside ±%.1f·TolG", b, fillBiasFrac)
			}
			var outside, near, clipped, below, core int
			for _, w := range units(c, 1, "HONEY-500") {
				off := (w - unitG) / tolG
				switch {
				case math.Abs(off) > 1+1e-12:
					outside++
				case math.Abs(off) >= 1-1e-12:
					clipped++
				}
				if math.Abs(off) >= nearLimitMin {
					near++
				}
				if off < b {
					below++
				}
				if math.Abs(off-b) < 1/unitSigmaDiv {
					core++
				}
			}
			if outside > 0 {
				t.Fatalf("%d units outside %v ± %v g", outside, unitG, tolG)
			}
			// The normal part: N(b, 0.4) in units of TolG.
			sd := 1 / unitSigmaDiv
			pNear := normCDF((-nearLimitMin-b)/sd) + 1 - normCDF((nearLimitMin-b)/sd)
			pClip := normCDF((-1-b)/sd) + 1 - normCDF((1-b)/sd)
			for _, chk := range []struct {
				what      string
				got, want float64
			}{
				// 3 % drawn near the limit, and the normal's own tail.
				{"share near the limit (|offset| ≥ 0.75·TolG)", float64(near) / n, nearLimit + (1-nearLimit)*pNear},
				{"share clipped to ±TolG", float64(clipped) / n, (1 - nearLimit) * pClip},
				{"share below the fill bias", float64(below) / n, 0.5},
				{"share within σ of the fill bias", float64(core) / n, (1 - nearLimit) * (normCDF(1) - normCDF(-1))},
			} {
				se := math.Sqrt(chk.want * (1 - chk.want) / n)
				if math.Abs(chk.got-chk.want) > 5*se+1e-4 {
					t.Errorf("%s: %.4f, want %.4f ± %.4f (fill bias %.3f·TolG)", chk.what, chk.got, chk.want, 5*se, b)
				}
			}
			if share := float64(near) / n; share < nearLimit {
				t.Errorf("only %.2f %% of the units near the limit", 100*share)
			}
		})
	}
}

// TestFillBias: one bias per SKU and cabinet, drawn from the seed whatever
// order the SKUs are loaded in, uniform within ±0.3·TolG over many SKUs.
func TestFillBias(t *testing.T) {
	a, clk := newCab(t, Config{Seed: 9})
	b, _ := newCab(t, Config{Seed: 9})
	other, _ := newCab(t, Config{Seed: 10})
	must(t, a.Load(1, "X", 100, 2, 3))
	must(t, a.Load(2, "Y", 250, 5, 3))
	must(t, b.Load(2, "Y", 250, 5, 3))
	must(t, b.Load(1, "X", 100, 2, 3))
	must(t, other.Load(1, "X", 100, 2, 3))
	if a.bias["X"] != b.bias["X"] || a.bias["Y"] != b.bias["Y"] {
		t.Errorf("load order changed the fill biases: %v vs %v", a.bias, b.bias)
	}
	if a.bias["X"] == a.bias["Y"] || a.bias["X"] == other.bias["X"] {
		t.Errorf("fill biases shared between SKUs or cabinets: %v, other %v", a.bias, other.bias)
	}
	// A Put of new units keeps to the bias Load drew.
	was := a.bias["X"]
	openDoor(t, a, clk, 1)
	must(t, a.Put(1, "X", 0, 2))
	if a.bias["X"] != was {
		t.Error("Put drew a new fill bias")
	}

	const skus = 4000
	var inner int
	var sum float64
	for i := range skus {
		bi := a.fillBias(fmt.Sprintf("SKU-%d", i))
		if math.Abs(bi) > fillBiasFrac {
			t.Fatalf("fill bias %.3f outside ±%.1f", bi, fillBiasFrac)
		}
		if math.Abs(bi) < fillBiasFrac/2 {
			inner++
		}
		sum += bi
	}
	if share := float64(inner) / skus; math.Abs(share-0.5) > 0.04 {
		t.Errorf("%.3f of the biases within ±0.15·TolG, want about half (uniform)", share)
	}
	if mean := sum / skus; math.Abs(mean) > 0.02 {
		t.Errorf("mean fill bias %.3f·TolG, want about 0", mean)
	}
}

// quiet switches off every imperfection but the one under test.
var quiet = Config{NoiseG: -1, VibrationG: -1, SlamG: -1, CreepFrac: -1, DriftGPerC: -1, SpanPerC: -1}

// TestZeroDriftFollowsTemperature: each load cell's zero moves by its own
// seeded coefficient times its temperature change, and the cell follows
// the air with the time constant CellTau. Readings are whole HX711 counts,
// 0.01 g each.
func TestZeroDriftFollowsTemperature(t *testing.T) {
	const count = 0.011
	cfg := quiet
	cfg.Seed, cfg.DriftGPerC, cfg.TempC = 3, 0.2, 20
	c, clk := newCab(t, cfg)
	must(t, c.Load(1, "A", 1000, 5, 6))
	must(t, c.Load(3, "B", 400, 4, 6))
	tau := c.cfg.CellTau
	if tau != 5*time.Minute {
		t.Fatalf("default CellTau %v", tau)
	}
	g0 := map[int]float64{}
	for _, n := range []int{1, 2, 3} {
		g0[n] = sampleG(t, c, n)
		if k := math.Abs(c.byNum[n].cells[0].zeroPerC); k < 0.5*0.2 || k > 1.5*0.2 {
			t.Errorf("shelf %d: zero coefficient %.3f g/°C outside 0.5–1.5 × 0.2", n, c.byNum[n].cells[0].zeroPerC)
		}
	}
	if c.byNum[1].cells[0].zeroPerC == c.byNum[2].cells[0].zeroPerC {
		t.Error("two load cells share their zero coefficient")
	}
	drift := func(n int) float64 { return sampleG(t, c, n) - g0[n] }

	c.SetTemp(30)
	for _, n := range []int{1, 2, 3} {
		if d := drift(n); math.Abs(d) > count {
			t.Errorf("shelf %d moved %.4f g the moment the air warmed: the cell has not yet", n, d)
		}
	}
	clk.Advance(tau)
	for _, n := range []int{1, 2, 3} {
		want := c.byNum[n].cells[0].zeroPerC * 10 * (1 - math.Exp(-1))
		if d := drift(n); math.Abs(d-want) > count {
			t.Errorf("shelf %d after one time constant: %.4f g, want %.4f g", n, d, want)
		}
	}
	clk.Advance(20 * tau)
	step := map[int]float64{}
	for _, n := range []int{1, 2, 3} {
		step[n] = drift(n)
		if want := c.byNum[n].cells[0].zeroPerC * 10; math.Abs(step[n]-want) > count {
			t.Errorf("shelf %d at +10 °C: %.4f g, want %.4f g", n, step[n], want)
		}
	}
	// Twice the temperature change, twice the drift; back, and it is gone.
	c.SetTemp(40)
	clk.Advance(20 * tau)
	for _, n := range []int{1, 2, 3} {
		if d := drift(n); math.Abs(d-2*step[n]) > 2*count {
			t.Errorf("shelf %d at +20 °C: %.4f g, want twice %.4f g", n, d, step[n])
		}
	}
	c.SetTemp(20)
	clk.Advance(20 * tau)
	for _, n := range []int{1, 2, 3} {
		if d := drift(n); math.Abs(d) > count {
			t.Errorf("shelf %d back at 20 °C: %.4f g", n, d)
		}
	}

	// The same seed replays the coefficients; across seeds both signs come.
	again, _ := newCab(t, cfg)
	signs := map[bool]int{}
	for seed := range int64(20) {
		cs := cfg
		cs.Seed = seed
		o, _ := newCab(t, cs)
		signs[o.byNum[1].cells[0].zeroPerC > 0]++
	}
	if again.byNum[2].cells[0].zeroPerC != c.byNum[2].cells[0].zeroPerC || signs[true] == 0 || signs[false] == 0 {
		t.Errorf("coefficients: replay %v vs %v, signs %v", again.byNum[2].cells[0].zeroPerC, c.byNum[2].cells[0].zeroPerC, signs)
	}

	// A negative CellTau: the cells take the air's temperature at once.
	cfg.CellTau = -1
	inst, _ := newCab(t, cfg)
	before := sampleG(t, inst, 1)
	inst.SetTemp(25)
	if d, want := sampleG(t, inst, 1)-before, inst.byNum[1].cells[0].zeroPerC*5; math.Abs(d-want) > count {
		t.Errorf("instant cell: %.4f g, want %.4f g", d, want)
	}
}

// TestLean: a shopper leaning on a shelf adds a load the scale sees but no
// item; letting go — or closing the door — removes it and leaves a
// hysteresis offset of 0.5–3 g, drawn from the seed; bad input changes
// nothing.
func TestLean(t *testing.T) {
	run := func(seed int64) []float64 {
		cfg := quiet
		cfg.Seed = seed
		c, clk := newCab(t, cfg)
		must(t, c.Load(1, "A", 500, 5, 4))
		trueG := shelfState(c, 1).TrueG
		if err := c.Lean(1, 3000); !errors.Is(err, ErrDoorClosed) {
			t.Fatalf("lean behind a closed door: %v", err)
		}
		openDoor(t, c, clk, 1)
		g0 := sampleG(t, c, 1)
		must(t, c.Lean(1, 3000))
		if d := sampleG(t, c, 1) - g0; math.Abs(d-3000) > 0.011 {
			t.Fatalf("leaning 3000 g reads %+.3f g", d)
		}
		if st := shelfState(c, 1); st.LeanG != 3000 || st.TrueG != trueG {
			t.Fatalf("while leaning: lean %v g, true %v g (was %v)", st.LeanG, st.TrueG, trueG)
		}
		for _, tc := range []struct {
			shelf int
			g     float64
			err   error
		}{
			{1, -1, errAny}, {1, math.NaN(), errAny}, {1, math.Inf(1), errAny}, {1, MaxLeanG + 1, errAny},
			{9, 100, ErrNoShelf}, {9, 0, ErrNoShelf}, {3, 100, ErrDoorClosed},
		} {
			err := c.Lean(tc.shelf, tc.g)
			if err == nil || (tc.err != errAny && !errors.Is(err, tc.err)) {
				t.Errorf("Lean(%d, %v) = %v, want %v", tc.shelf, tc.g, err, tc.err)
			}
		}
		if d := sampleG(t, c, 1) - g0; math.Abs(d-3000) > 0.011 || shelfState(c, 3).LeanG != 0 {
			t.Fatalf("a refused lean changed the load: %+.3f g", d)
		}
		must(t, c.Lean(1, 0))
		h1 := sampleG(t, c, 1) - g0
		const count = 0.011 // a reading is whole HX711 counts
		if h1 < hystMinG-count || h1 > hystMaxG+count {
			t.Errorf("after letting go the scale is off by %.3f g, want %v–%v g of hysteresis", h1, hystMinG, hystMaxG)
		}
		must(t, c.Lean(1, 0)) // nobody leaning: nothing happens
		if d := sampleG(t, c, 1) - g0; d != h1 {
			t.Errorf("letting go twice moved the zero: %.3f g, was %.3f g", d, h1)
		}
		must(t, c.Lean(1, 1500))
		must(t, c.Lean(1, 2500)) // leaning harder
		if d := sampleG(t, c, 1) - g0 - h1; math.Abs(d-2500) > 0.011 {
			t.Errorf("leaning harder reads %+.3f g", d)
		}
		must(t, c.CloseDoor(1))
		h2 := sampleG(t, c, 1) - g0 - h1
		if st := shelfState(c, 1); st.LeanG != 0 || h2 < hystMinG-count || h2 > hystMaxG+count {
			t.Errorf("after the door closed: lean %v g, second hysteresis %.3f g", st.LeanG, h2)
		}
		if st := shelfState(c, 1); st.TrueG != trueG {
			t.Errorf("leaning changed the true load: %v g, was %v g", st.TrueG, trueG)
		}
		return []float64{h1, h2}
	}
	a, b, other := run(5), run(5), run(6)
	if a[0] != b[0] || a[1] != b[1] {
		t.Errorf("the same seed left hysteresis %v then %v", a, b)
	}
	if a[0] == other[0] {
		t.Errorf("another seed left the same hysteresis %v", a)
	}
	if a[0] == a[1] {
		t.Errorf("two let-goes left the same hysteresis %v", a)
	}
}

// TestLeanSettles: a lean shakes the shelf like any load change, so the
// scale is unsettled for a moment after it starts and after it ends.
func TestLeanSettles(t *testing.T) {
	c, clk := newCab(t, Config{Seed: 2})
	must(t, c.Load(1, "A", 500, 5, 4))
	openDoor(t, c, clk, 1)
	feed(t, c, clk, 1, 2*time.Second)
	for _, g := range []float64{3000, 0} {
		must(t, c.Lean(1, g))
		feed(t, c, clk, 1, 200*time.Millisecond)
		r, err := c.byNum[1].filter.Reading()
		must(t, err)
		if r.Settled {
			t.Errorf("settled 200 ms after leaning %v g: %+v", g, r)
		}
		feed(t, c, clk, 1, c.cfg.SettleTime+time.Second)
		r, err = c.byNum[1].filter.Reading()
		must(t, err)
		want := shelfState(c, 1).TrueG + g
		if !r.Settled || math.Abs(r.Grams-want) > 4 {
			t.Errorf("after leaning %v g: %+v, want settled near %.1f g", g, r, want)
		}
	}
}
