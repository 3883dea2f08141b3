package sim

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// count is one HX711 count at the default calibration: readings are whole
// counts, so anything finer is rounding.
const count = 0.011

// newTwoCell builds a cabinet on a fake clock whose shelf 1 stands on two
// load cells (tray 800 g) and shelf 2 on one, both behind door 1.
func newTwoCell(t *testing.T, cfg Config) (*Cabinet, *fakeClock) {
	t.Helper()
	cfg.Doors = 1
	cfg.Shelves = []ShelfConfig{{Shelf: 1, EmptyG: 800, TwoCell: true}, {Shelf: 2, EmptyG: 800}}
	return newCab(t, cfg)
}

// sampleBoth draws one paired sample of shelf n: the total and the right
// cell, in grams.
func sampleBoth(t *testing.T, c *Cabinet, n int) (total, right float64) {
	t.Helper()
	v, err := c.Sample(n)
	must(t, err)
	r, err := c.SampleRight(n)
	must(t, err)
	cal := c.byNum[n].cal
	return cal.Grams(float64(v)), cal.Grams(float64(r))
}

// lastUnit returns the newest unit of sku on shelf n.
func lastUnit(c *Cabinet, n int, sku string) unit {
	c.mu.Lock()
	defer c.mu.Unlock()
	us := c.byNum[n].units[sku]
	return us[len(us)-1]
}

// TestTwoCellTake: the tray stands centred; units stand in their SKU's lane
// within ±0.05; taking a unit of weight w at x changes the total by −w and
// the right cell by −x·w; the total is the sum of both cells throughout.
func TestTwoCellTake(t *testing.T) {
	c, clk := newTwoCell(t, quiet)
	if tot, r := sampleBoth(t, c, 1); math.Abs(tot-800) > count || math.Abs(r-400) > count {
		t.Fatalf("empty tray: total %.3f g, right %.3f g; want 800 and 400 (centred)", tot, r)
	}
	lanes := map[string]float64{"A": 0.2, "B": 0.8, "C": 0}
	for sku, x := range lanes {
		must(t, c.SetLane(1, sku, x))
	}
	must(t, c.Load(1, "A", 500, 5, 20))
	must(t, c.Load(1, "B", 300, 3, 20))
	must(t, c.Load(1, "C", 200, 2, 20))
	must(t, c.Load(1, "D", 100, 1, 20)) // no lane: the middle
	lanes["D"] = middle
	for sku, x := range lanes {
		c.mu.Lock()
		us := slices.Clone(c.byNum[1].units[sku])
		c.mu.Unlock()
		var spread []float64
		for _, u := range us {
			if u.x < max(x-laneJitter, 0) || u.x > min(x+laneJitter, 1) {
				t.Errorf("a unit of %s stands at %.3f, outside its lane %.2f ± %.2f", sku, u.x, x, laneJitter)
			}
			spread = append(spread, u.x)
		}
		if slices.Min(spread) == slices.Max(spread) {
			t.Errorf("the units of %s all stand at %.3f: no jitter", sku, spread[0])
		}
	}
	st := shelfState(c, 1)
	if st.RightG == nil || !st.TwoCell {
		t.Fatalf("snapshot of a two-cell shelf: %+v", st)
	}
	tot0, r0 := sampleBoth(t, c, 1)
	if math.Abs(tot0-st.TrueG) > count || math.Abs(r0-*st.RightG) > count {
		t.Fatalf("reads total %.3f g, right %.3f g; true %.3f g and %.3f g", tot0, r0, st.TrueG, *st.RightG)
	}
	openDoor(t, c, clk, 1)
	for _, sku := range []string{"A", "B", "C", "D", "A"} {
		u := lastUnit(c, 1, sku)
		before := shelfState(c, 1)
		must(t, c.Take(1, sku, 1))
		after := shelfState(c, 1)
		if d := after.TrueG - before.TrueG; math.Abs(d+u.g) > 1e-9 {
			t.Errorf("take %s: true total moved %.4f g, want %.4f g", sku, d, -u.g)
		}
		if d := *after.RightG - *before.RightG; math.Abs(d+u.x*u.g) > 1e-9 {
			t.Errorf("take %s at %.3f: true right moved %.4f g, want −x·w = %.4f g", sku, u.x, d, -u.x*u.g)
		}
		tot, r := sampleBoth(t, c, 1)
		if d := r - r0; math.Abs(d+u.x*u.g) > 2*count {
			t.Errorf("take %s at %.3f: right cell reads %+.3f g, want %+.3f g", sku, u.x, d, -u.x*u.g)
		}
		if d := r - r0; math.Abs(d+lanes[sku]*u.g) > laneJitter*u.g+2*count {
			t.Errorf("take %s from lane %.2f: right cell %+.3f g, want about %+.3f g", sku, lanes[sku], d, -lanes[sku]*u.g)
		}
		if d := tot - tot0; math.Abs(d+u.g) > 2*count {
			t.Errorf("take %s: total reads %+.3f g, want %+.3f g", sku, d, -u.g)
		}
		tot0, r0 = tot, r
	}
	// The one-cell shelf beside it has no right cell.
	if _, err := c.SampleRight(2); !errors.Is(err, ErrOneCell) {
		t.Errorf("SampleRight of a one-cell shelf: %v", err)
	}
	if st := shelfState(c, 2); st.TwoCell || st.RightG != nil || st.ReadRightG != nil {
		t.Errorf("one-cell shelf in the snapshot: %+v", st)
	}
}

// TestTwoCellPutLands: a unit put back where its SKU has a lane lands in
// it; a unit of a SKU with no lane on the shelf (moved from elsewhere) and
// a foreign object land anywhere, uniformly; the right cell follows.
func TestTwoCellPutLands(t *testing.T) {
	c, clk := newTwoCell(t, quiet)
	must(t, c.SetLane(1, "A", 0.9))
	must(t, c.Load(1, "A", 500, 5, 10))
	must(t, c.Load(2, "M", 250, 2, 400))
	openDoor(t, c, clk, 1)
	for range 10 {
		must(t, c.Take(1, "A", 1))
		must(t, c.Put(1, "A", 0, 1))
		if x := lastUnit(c, 1, "A").x; x < 0.85 || x > 0.95 {
			t.Errorf("a unit put back landed at %.3f, outside its lane 0.9 ± 0.05", x)
		}
	}
	const n = 400
	must(t, c.Take(2, "M", n))
	_, r0 := sampleBoth(t, c, 1)
	must(t, c.Put(1, "M", 0, n))
	c.mu.Lock()
	var xs, rightG float64
	var low int
	for _, u := range c.byNum[1].units["M"] {
		xs += u.x
		rightG += u.g * u.x
		if u.x < 0.25 {
			low++
		}
	}
	c.mu.Unlock()
	if mean := xs / n; math.Abs(mean-0.5) > 0.05 {
		t.Errorf("moved units land at %.3f on average, want 0.5 (uniform)", mean)
	}
	if share := float64(low) / n; math.Abs(share-0.25) > 0.07 {
		t.Errorf("%.2f of the moved units landed below 0.25, want about a quarter (uniform)", share)
	}
	clk.Advance(time.Hour) // past the creep
	if _, r := sampleBoth(t, c, 1); math.Abs(r-r0-rightG) > 2*count {
		t.Errorf("moved units: right cell %+.3f g, want %+.3f g", r-r0, rightG)
	}
	var objX []float64
	for i := range 50 {
		must(t, c.PutObject(1, float64(10+i)))
		c.mu.Lock()
		objX = append(objX, c.byNum[1].objects[i].x)
		c.mu.Unlock()
	}
	if slices.Min(objX) > 0.2 || slices.Max(objX) < 0.8 {
		t.Errorf("objects landed within %.3f–%.3f, want anywhere", slices.Min(objX), slices.Max(objX))
	}
}

// TestTwoCellNoise: each cell has noise σ of its own; the total, their
// sum, has √2·σ; a paired sample shares the right cell's draw, so the
// total and the right cell correlate by 1/√2.
func TestTwoCellNoise(t *testing.T) {
	const sigma = 1.0
	cfg := quiet
	cfg.Seed, cfg.NoiseG = 4, sigma
	c, clk := newTwoCell(t, cfg)
	must(t, c.Load(1, "A", 1000, 10, 4))
	const n = 6000
	var tot, r, left []float64
	for range n {
		clk.Advance(c.period)
		a, b := sampleBoth(t, c, 1)
		tot, r, left = append(tot, a), append(r, b), append(left, a-b)
	}
	sd := func(v []float64) float64 {
		var m, ss float64
		for _, x := range v {
			m += x
		}
		m /= float64(len(v))
		for _, x := range v {
			ss += (x - m) * (x - m)
		}
		return math.Sqrt(ss / float64(len(v)-1))
	}
	for _, chk := range []struct {
		what      string
		got, want float64
	}{
		{"right cell", sd(r), sigma},
		{"left cell (total − right)", sd(left), sigma},
		{"total", sd(tot), math.Sqrt2 * sigma},
	} {
		if math.Abs(chk.got-chk.want)/chk.want > 0.05 {
			t.Errorf("σ of the %s %.3f g, want %.3f g ± 5 %%", chk.what, chk.got, chk.want)
		}
	}
	// Corr(total, right) = σ²/(√2σ·σ) when the draw is shared; 0 if not.
	var cov float64
	mt, mr := mean(tot), mean(r)
	for i := range tot {
		cov += (tot[i] - mt) * (r[i] - mr)
	}
	cov /= float64(n - 1)
	if corr := cov / (sd(tot) * sd(r)); math.Abs(corr-1/math.Sqrt2) > 0.05 {
		t.Errorf("correlation of the total and the right cell %.3f, want %.3f", corr, 1/math.Sqrt2)
	}
	// The two cells' noises are independent.
	var cl float64
	ml := mean(left)
	for i := range left {
		cl += (left[i] - ml) * (r[i] - mr)
	}
	if corr := cl / float64(n-1) / (sd(left) * sd(r)); math.Abs(corr) > 0.05 {
		t.Errorf("the cells' noises correlate by %.3f", corr)
	}
}

func mean(v []float64) float64 {
	var m float64
	for _, x := range v {
		m += x
	}
	return m / float64(len(v))
}

// TestTwoCellPairing: a Sampler hands one draw to the total and the right
// cell when they come within a sample period; a reader coming again, or
// late, draws afresh; another Sampler draws its own.
func TestTwoCellPairing(t *testing.T) {
	cfg := Config{Seed: 8, NoiseG: 2}
	c, clk := newTwoCell(t, cfg)
	must(t, c.Load(1, "A", 500, 5, 4))
	s := c.byNum[1]
	draw := func(p *Sampler, right bool) float64 {
		t.Helper()
		sample := p.Sample
		if right {
			sample = p.SampleRight
		}
		v, err := sample(1)
		must(t, err)
		return s.cal.Grams(float64(v))
	}
	p := c.NewSampler()
	// A fresh draw by the total, then the right cell takes the same one:
	// the shared noise shows as total − right being the left cell alone,
	// the same however the right cell's noise fell.
	t1 := draw(p, false)
	r1 := draw(p, true)
	if pr := p.pairs[1]; math.Abs(t1-(pr.g[0]+pr.g[1])) > count || math.Abs(r1-pr.g[1]) > count {
		t.Fatalf("paired draw: total %.3f, right %.3f; drawn %v", t1, r1, pr.g)
	}
	// The right cell again: a fresh draw, which the total then takes.
	r2 := draw(p, true)
	t2 := draw(p, false)
	if pr := p.pairs[1]; r2 == r1 || math.Abs(t2-(pr.g[0]+pr.g[1])) > count || math.Abs(r2-pr.g[1]) > count {
		t.Fatalf("second pair: total %.3f, right %.3f (first right %.3f); drawn %v", t2, r2, r1, pr.g)
	}
	// The total twice: the second is fresh; the right cell a period later
	// does not take a stale draw.
	draw(p, false)
	g := p.pairs[1].g
	draw(p, false)
	if p.pairs[1].g == g {
		t.Error("the total took the same draw twice")
	}
	g = p.pairs[1].g
	clk.Advance(c.period)
	draw(p, true)
	if p.pairs[1].g == g {
		t.Error("the right cell took a draw a sample period old")
	}
	// Another sampler draws on its own.
	q := c.NewSampler()
	draw(q, false)
	if q.pairs[1].g == p.pairs[1].g || !p.pairs[1].fresh[0] {
		t.Errorf("samplers share draws: %+v, %+v", q.pairs[1], p.pairs[1])
	}
}

// TestTwoCellDriftAndCreep: each cell's zero drifts by its own seeded
// coefficient, and each creeps by its own load change.
func TestTwoCellDriftAndCreep(t *testing.T) {
	cfg := quiet
	cfg.Seed, cfg.DriftGPerC, cfg.CreepFrac, cfg.CellTau, cfg.TempC = 6, 0.2, 0.001, -1, 20
	c, clk := newTwoCell(t, cfg)
	must(t, c.SetLane(1, "A", 0.75))
	must(t, c.Load(1, "A", 1000, 5, 10))
	s := c.byNum[1]
	zl, zr := s.cells[0].zeroPerC, s.cells[1].zeroPerC
	if zl == zr {
		t.Errorf("the two cells share their zero coefficient %v", zl)
	}
	for _, k := range []float64{zl, zr} {
		if math.Abs(k) < 0.5*0.2 || math.Abs(k) > 1.5*0.2 {
			t.Errorf("zero coefficient %.3f g/°C outside 0.5–1.5 × 0.2", k)
		}
	}
	tot0, r0 := sampleBoth(t, c, 1)
	c.SetTemp(30) // CellTau < 0: the cells follow at once
	tot, r := sampleBoth(t, c, 1)
	if d := r - r0; math.Abs(d-10*zr) > 2*count {
		t.Errorf("+10 °C moved the right cell %.3f g, want %.3f g", d, 10*zr)
	}
	if d := tot - tot0; math.Abs(d-10*(zl+zr)) > 2*count {
		t.Errorf("+10 °C moved the total %.3f g, want %.3f g (both cells)", d, 10*(zl+zr))
	}
	c.SetTemp(20)
	openDoor(t, c, clk, 1)
	u := lastUnit(c, 1, "A")
	tot0, r0 = sampleBoth(t, c, 1)
	must(t, c.Take(1, "A", 1))
	clk.Advance(time.Hour)
	tot, r = sampleBoth(t, c, 1)
	wantR := -u.g * u.x * (1 + cfg.CreepFrac) // the cell creeps on by CreepFrac of its own change
	if d := r - r0; math.Abs(d-wantR) > 2*count {
		t.Errorf("right cell after creep %+.3f g, want %+.3f g", d, wantR)
	}
	if d, want := tot-tot0, -u.g*(1+cfg.CreepFrac); math.Abs(d-want) > 2*count {
		t.Errorf("total after creep %+.3f g, want %+.3f g", d, want)
	}
}

// TestTwoCellLean: a lean pushes where LeanAt says (Lean: the middle), the
// hysteresis it leaves is shared the same way, and a bad position is
// refused.
func TestTwoCellLean(t *testing.T) {
	c, clk := newTwoCell(t, quiet)
	must(t, c.Load(1, "A", 500, 5, 4))
	openDoor(t, c, clk, 1)
	tot0, r0 := sampleBoth(t, c, 1)
	must(t, c.LeanAt(1, 3000, 0.25))
	if tot, r := sampleBoth(t, c, 1); math.Abs(tot-tot0-3000) > 2*count || math.Abs(r-r0-750) > 2*count {
		t.Errorf("leaning 3000 g at 0.25: total %+.3f g, right %+.3f g; want +3000, +750", tot-tot0, r-r0)
	}
	if st := shelfState(c, 1); st.LeanG != 3000 || st.LeanX == nil || *st.LeanX != 0.25 {
		t.Errorf("snapshot while leaning: %+v", st)
	}
	must(t, c.LeanAt(1, 3000, 1)) // the same force, moved to the right
	if tot, r := sampleBoth(t, c, 1); math.Abs(tot-tot0-3000) > 2*count || math.Abs(r-r0-3000) > 2*count {
		t.Errorf("leaning 3000 g at 1: total %+.3f g, right %+.3f g", tot-tot0, r-r0)
	}
	must(t, c.LeanAt(1, 0, 0.5)) // let go: where it leant counts
	tot1, r1 := sampleBoth(t, c, 1)
	h := tot1 - tot0
	if h < hystMinG-count || h > hystMaxG+count || math.Abs(r1-r0-h) > 2*count {
		t.Errorf("after letting go at 1: total %+.3f g, right %+.3f g; want the hysteresis all on the right", h, r1-r0)
	}
	must(t, c.Lean(1, 2000))
	if tot, r := sampleBoth(t, c, 1); math.Abs(tot-tot1-2000) > 2*count || math.Abs(r-r1-1000) > 2*count {
		t.Errorf("Lean 2000 g: total %+.3f g, right %+.3f g; want the middle", tot-tot1, r-r1)
	}
	must(t, c.CloseDoor(1))
	tot2, r2 := sampleBoth(t, c, 1)
	if h := tot2 - tot1; h < hystMinG-count || h > hystMaxG+count || math.Abs(r2-r1-h/2) > 2*count {
		t.Errorf("door closed on a lean in the middle: total %+.3f g, right %+.3f g", h, r2-r1)
	}
	for _, x := range []float64{-0.1, 1.1, math.NaN()} {
		if err := c.LeanAt(1, 100, x); err == nil {
			t.Errorf("LeanAt at %v accepted", x)
		}
		if err := c.SetLane(1, "A", x); err == nil {
			t.Errorf("SetLane at %v accepted", x)
		}
	}
	if err := c.SetLane(9, "A", 0.5); !errors.Is(err, ErrNoShelf) {
		t.Errorf("SetLane on no shelf: %v", err)
	}
}

// TestTwoCellFilters: the hal shelf carries the right cell's Scale on a
// two-cell shelf only; fed the paired samples, both settle on the true
// loads, and the snapshot and its JSON show them; a fault hits both.
func TestTwoCellFilters(t *testing.T) {
	c, clk := newTwoCell(t, Config{Seed: 2})
	must(t, c.SetLane(1, "A", 0.3))
	must(t, c.Load(1, "A", 500, 5, 6))
	hw := c.Hardware()
	if hw.Shelves[0].Right == nil || hw.Shelves[1].Right != nil {
		t.Fatalf("hal shelves: %+v", hw.Shelves)
	}
	if got := hw.Shelves[0].Right.String(); got != "sim hx711 shelf 1 right" {
		t.Errorf("right scale named %q", got)
	}
	s := c.byNum[1]
	for range 30 {
		now := clk.Advance(c.period)
		v, err := c.run.Sample(1)
		must(t, err)
		s.filter.Feed(v, now)
		v, err = c.run.SampleRight(1)
		must(t, err)
		s.right.Feed(v, now)
	}
	st := shelfState(c, 1)
	if st.ReadRightG == nil || math.Abs(*st.ReadRightG-*st.RightG) > 1.5 || math.Abs(st.ReadG-st.TrueG) > 2 {
		t.Fatalf("snapshot %+v, right read %v, true %v", st, st.ReadRightG, *st.RightG)
	}
	r, err := hw.Shelves[0].Right.Reading()
	must(t, err)
	if !r.Settled || r.Samples != 8 {
		t.Errorf("right reading %+v", r)
	}
	b, err := json.Marshal(c.Snapshot())
	must(t, err)
	var js struct {
		Shelves []map[string]any `json:"shelves"`
	}
	must(t, json.Unmarshal(b, &js))
	for _, k := range []string{"right_g", "read_right_g", "two_cell"} {
		if _, ok := js.Shelves[0][k]; !ok {
			t.Errorf("snapshot JSON of a two-cell shelf lacks %q: %s", k, b)
		}
		if _, ok := js.Shelves[1][k]; ok {
			t.Errorf("snapshot JSON of a one-cell shelf has %q", k)
		}
	}
	for _, f := range []string{"dead", "saturated"} {
		must(t, c.FaultScale(1, f))
		_, errT := c.Sample(1)
		_, errR := c.SampleRight(1)
		if (f == "dead") != (errT != nil && errR != nil) {
			t.Errorf("fault %s: total %v, right %v", f, errT, errR)
		}
	}
}

// TestTwoCellReplay: a seed replays a two-cell shelf's samples exactly,
// and a two-cell shelf leaves the one-cell shelves' samples as they were.
func TestTwoCellReplay(t *testing.T) {
	run := func(seed int64, twoCell bool) (one, two []int32) {
		cfg := Config{Seed: seed, Doors: 1, Shelves: []ShelfConfig{{Shelf: 1, EmptyG: 800, TwoCell: twoCell}, {Shelf: 2, EmptyG: 600}}}
		c, clk := newCab(t, cfg)
		must(t, c.SetLane(1, "A", 0.3))
		must(t, c.Load(1, "A", 500, 5, 6))
		must(t, c.Load(2, "B", 250, 3, 6))
		openDoor(t, c, clk, 1)
		must(t, c.Take(1, "A", 2))
		must(t, c.Put(1, "A", 0, 1))
		must(t, c.Put(1, "X", 90, 1))
		must(t, c.PutObject(1, 40))
		for range 20 {
			clk.Advance(c.period)
			v, err := c.Sample(2)
			must(t, err)
			one = append(one, v)
			if twoCell {
				v, err = c.Sample(1)
				must(t, err)
				w, err := c.SampleRight(1)
				must(t, err)
				two = append(two, v, w)
			}
		}
		return one, two
	}
	oneA, twoA := run(3, true)
	oneB, twoB := run(3, true)
	oneC, _ := run(3, false)
	_, twoD := run(4, true)
	if !slices.Equal(twoA, twoB) || !slices.Equal(oneA, oneB) {
		t.Error("the same seed did not replay a two-cell shelf")
	}
	if slices.Equal(twoA, twoD) {
		t.Error("another seed gave the same two-cell samples")
	}
	if !slices.Equal(oneA, oneC) {
		t.Error("making shelf 1 two-cell changed shelf 2's samples")
	}
}
