package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clocktest"
)

type fakeClock = clocktest.Clock

func newClock() *fakeClock { return clocktest.New() }

// newCab builds a cabinet on a fake clock: two doors, shelves 1 and 2 behind
// door 1, shelf 3 behind door 2.
func newCab(t *testing.T, cfg Config) (*Cabinet, *fakeClock) {
	t.Helper()
	clk := newClock()
	cfg.Clock = clk.Now
	if cfg.Doors == 0 {
		cfg.Doors = 2
	}
	if cfg.Shelves == nil {
		cfg.Shelves = []ShelfConfig{
			{Shelf: 1, Door: 1, EmptyG: 800},
			{Shelf: 2, Door: 1, EmptyG: 800},
			{Shelf: 3, Door: 2, EmptyG: 650},
		}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

// errAny in a table means "some error".
var errAny = errors.New("any error")

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func shelfState(c *Cabinet, n int) ShelfState {
	for _, s := range c.Snapshot().Shelves {
		if s.Shelf == n {
			return s
		}
	}
	panic("no shelf")
}

// openDoor energises the door's lock, waits out the release and opens it.
func openDoor(t *testing.T, c *Cabinet, clk *fakeClock, n int) {
	t.Helper()
	must(t, c.Hardware().Doors[n-1].Lock.Energise(context.Background()))
	clk.Advance(c.cfg.LockReleaseTime)
	must(t, c.OpenDoor(n, false))
}

// units returns a copy of the true weights of sku on shelf n.
func units(c *Cabinet, n int, sku string) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []float64
	for _, u := range c.byNum[n].units[sku] {
		out = append(out, u.g)
	}
	return out
}

func TestTakePutTrueGrams(t *testing.T) {
	c, clk := newCab(t, Config{Seed: 1})
	must(t, c.Load(1, "NM-0001", 500, 10, 10))
	must(t, c.Load(2, "NM-0002", 250, 5, 4))
	if got := shelfState(c, 1).Items["NM-0001"]; got != 10 {
		t.Fatalf("items = %d", got)
	}
	loaded := units(c, 1, "NM-0001")
	for _, w := range loaded {
		if w < 490 || w > 510 {
			t.Errorf("unit weight %.2f outside 500 ± 10", w)
		}
	}
	if slices.Equal(loaded[:5], loaded[5:]) {
		t.Error("units share their weights")
	}
	openDoor(t, c, clk, 1)

	tests := []struct {
		name  string
		do    func() error
		delta func(before []float64) float64 // expected change of shelf 1
		err   error                          // errors.Is target; errAny for any error
	}{
		{"take three removes the last three", func() error { return c.Take(1, "NM-0001", 3) },
			func(b []float64) float64 { return -(b[7] + b[8] + b[9]) }, nil},
		{"put one back returns its true weight", func() error { return c.Put(1, "NM-0001", 0, 1) },
			func([]float64) float64 { return loaded[7] }, nil},
		{"new units of a known sku stay in tolerance", func() error { return c.Put(1, "NM-0001", 500, 3) },
			nil, nil},
		{"unknown sku weighs its nominal", func() error { return c.Put(1, "NM-0099", 330, 2) },
			func([]float64) float64 { return 660 }, nil},
		{"foreign object", func() error { return c.PutObject(1, 350) },
			func([]float64) float64 { return 350 }, nil},
		{"taking more than there is", func() error { return c.Take(1, "NM-0099", 3) },
			func([]float64) float64 { return 0 }, ErrNotEnough},
		{"unknown sku without weight", func() error { return c.Put(1, "NM-0098", 0, 1) },
			func([]float64) float64 { return 0 }, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := shelfState(c, 1).TrueG
			b := units(c, 1, "NM-0001")
			err := tt.do()
			if tt.err == errAny {
				if err == nil {
					t.Fatal("succeeded, want an error")
				}
			} else if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			got := shelfState(c, 1).TrueG - before
			if tt.delta == nil {
				if got < 3*490 || got > 3*510 {
					t.Errorf("change %.3f g outside 3 × (500 ± 10)", got)
				}
				return
			}
			if want := tt.delta(b); math.Abs(got-want) > 1e-9 {
				t.Errorf("true grams changed by %.6f, want %.6f", got, want)
			}
		})
	}
	// Moving a unit between shelves carries its weight.
	w := units(c, 2, "NM-0002")[3]
	before1, before2 := shelfState(c, 1).TrueG, shelfState(c, 2).TrueG
	must(t, c.Take(2, "NM-0002", 1))
	must(t, c.Put(1, "NM-0002", 0, 1))
	if d1, d2 := shelfState(c, 1).TrueG-before1, shelfState(c, 2).TrueG-before2; math.Abs(d1-w) > 1e-9 || math.Abs(d2+w) > 1e-9 {
		t.Errorf("moved unit: shelf 1 %+.3f, shelf 2 %+.3f, want ±%.3f", d1, d2, w)
	}
}

func TestPersonNeedsOpenDoor(t *testing.T) {
	c, clk := newCab(t, Config{Seed: 1})
	must(t, c.Load(1, "A", 100, 2, 5))
	must(t, c.Load(3, "B", 100, 2, 5))
	openDoor(t, c, clk, 2) // shelf 3's door, not shelf 1's
	tests := []struct {
		name string
		do   func() error
		err  error
	}{
		{"take with the door closed", func() error { return c.Take(1, "A", 1) }, ErrDoorClosed},
		{"put with the door closed", func() error { return c.Put(1, "A", 100, 1) }, ErrDoorClosed},
		{"object with the door closed", func() error { return c.PutObject(2, 50) }, ErrDoorClosed},
		{"take behind the open door", func() error { return c.Take(3, "B", 1) }, nil},
		{"unknown shelf", func() error { return c.Take(9, "A", 1) }, ErrNoShelf},
		{"unknown door", func() error { return c.OpenDoor(3, true) }, ErrNoDoor},
		{"load needs no door", func() error { return c.Load(2, "A", 100, 2, 1) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
	if got := shelfState(c, 1).Items["A"]; got != 5 {
		t.Errorf("shelf 1 holds %d units, want 5", got)
	}
}

// feed samples shelf n every period for d of fake time, feeding its filter,
// and returns the grams of the samples.
func feed(t *testing.T, c *Cabinet, clk *fakeClock, n int, d time.Duration) []float64 {
	t.Helper()
	period := time.Duration(float64(time.Second) / c.cfg.SampleRate)
	s := c.byNum[n]
	var gs []float64
	for el := time.Duration(0); el < d; el += period {
		now := clk.Advance(period)
		v, err := c.Sample(n)
		must(t, err)
		s.filter.Feed(v, now)
		gs = append(gs, s.cal.Grams(float64(v)))
	}
	return gs
}

func TestFilterSettlesAfterSettleTime(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			c, clk := newCab(t, Config{Seed: seed})
			must(t, c.Load(1, "A", 500, 10, 10))
			feed(t, c, clk, 1, 2*time.Second)
			openDoor(t, c, clk, 1)
			must(t, c.Take(1, "A", 2))
			must(t, c.CloseDoor(1))
			feed(t, c, clk, 1, 300*time.Millisecond)
			r, err := c.byNum[1].filter.Reading()
			must(t, err)
			if r.Settled {
				t.Errorf("settled %v after the take, reading %+v", 300*time.Millisecond, r)
			}
			// SettleTime, then a full window of fresh samples.
			feed(t, c, clk, 1, c.cfg.SettleTime+800*time.Millisecond)
			r, err = c.byNum[1].filter.Reading()
			must(t, err)
			truth := shelfState(c, 1).TrueG
			if !r.Settled {
				t.Errorf("not settled after the settle time: %+v", r)
			}
			if d := r.Grams - truth; math.Abs(d) > 3*c.cfg.NoiseG {
				t.Errorf("reads %.2f g, true %.2f g: off by %.2f g, more than 3σ", r.Grams, truth, d)
			}
			if r.NoiseG > 3*c.cfg.NoiseG {
				t.Errorf("window noise %.2f g", r.NoiseG)
			}
		})
	}
}

func TestNoiseSigma(t *testing.T) {
	for _, sigma := range []float64{0.5, 2} {
		t.Run(fmt.Sprintf("sigma %v", sigma), func(t *testing.T) {
			c, clk := newCab(t, Config{Seed: 42, NoiseG: sigma})
			must(t, c.Load(1, "A", 1000, 10, 3))
			gs := feed(t, c, clk, 1, 500*time.Second) // 5000 samples
			var mean, ss float64
			for _, g := range gs {
				mean += g
			}
			mean /= float64(len(gs))
			for _, g := range gs {
				ss += (g - mean) * (g - mean)
			}
			std := math.Sqrt(ss / float64(len(gs)-1))
			if math.Abs(std-sigma)/sigma > 0.05 {
				t.Errorf("σ = %.3f g over %d samples, want %.3f ± 5%%", std, len(gs), sigma)
			}
			if truth := shelfState(c, 1).TrueG; math.Abs(mean-truth) > 5*sigma/math.Sqrt(float64(len(gs))) {
				t.Errorf("mean %.3f g, true %.3f g", mean, truth)
			}
		})
	}
}

func TestNoImperfections(t *testing.T) {
	c, clk := newCab(t, Config{Seed: 3, NoiseG: -1, VibrationG: -1, SlamG: -1, CreepFrac: -1, DriftGPerC: -1, SpanPerC: -1})
	must(t, c.Load(1, "A", 100, 1, 7))
	openDoor(t, c, clk, 1)
	must(t, c.Take(1, "A", 2))
	c.SetTemp(35)
	for _, g := range feed(t, c, clk, 1, time.Second) {
		if math.Abs(g-shelfState(c, 1).TrueG) > 0.006 {
			t.Fatalf("sample %.3f g, true %.3f g", g, shelfState(c, 1).TrueG)
		}
	}
}

func TestCreepAndDrift(t *testing.T) {
	c, clk := newCab(t, Config{Seed: 3, NoiseG: -1, VibrationG: -1, SlamG: -1, SpanPerC: -1, TempC: 20})
	must(t, c.Load(1, "A", 1000, 1, 10))
	openDoor(t, c, clk, 1)
	before := shelfState(c, 1).TrueG
	must(t, c.Take(1, "A", 5))
	delta := shelfState(c, 1).TrueG - before
	clk.Advance(time.Hour)
	g := sampleG(t, c, 1)
	if want := shelfState(c, 1).TrueG + c.cfg.CreepFrac*delta; math.Abs(g-want) > 0.01 {
		t.Errorf("after creep reads %.3f g, want %.3f g", g, want)
	}
	c.SetTemp(4)
	clk.Advance(20 * c.cfg.CellTau) // the load cell has cooled too
	if d, k := sampleG(t, c, 1)-g, c.byNum[1].cells[0].zeroPerC; math.Abs(d-(-16*k)) > 0.01 {
		t.Errorf("16 °C colder moved the reading by %.3f g, want %.3f g", d, -16*k)
	}
}

func sampleG(t *testing.T, c *Cabinet, n int) float64 {
	t.Helper()
	v, err := c.Sample(n)
	must(t, err)
	return c.byNum[n].cal.Grams(float64(v))
}

// script drives a cabinet through a session and records what it observed.
func script(t *testing.T, seed int64) ([]int32, []float64) {
	c, clk := newCab(t, Config{Seed: seed})
	must(t, c.Load(1, "A", 500, 10, 10))
	must(t, c.Load(3, "B", 250, 5, 6))
	var raws []int32
	sample := func() {
		for _, n := range []int{1, 2, 3} {
			clk.Advance(33 * time.Millisecond)
			v, err := c.Sample(n)
			must(t, err)
			raws = append(raws, v)
		}
	}
	for range 10 {
		sample()
	}
	openDoor(t, c, clk, 1)
	must(t, c.Take(1, "A", 2))
	must(t, c.Put(2, "A", 0, 1))
	must(t, c.Put(2, "Z", 120, 1))
	sample()
	must(t, c.CloseDoor(1))
	for range 30 {
		sample()
	}
	temp, err := c.Hardware().Thermometer.Celsius(context.Background())
	must(t, err)
	var truth []float64
	for _, s := range c.Snapshot().Shelves {
		truth = append(truth, s.TrueG)
	}
	return raws, append(truth, temp)
}

func TestSeededReplay(t *testing.T) {
	raws1, truth1 := script(t, 7)
	raws2, truth2 := script(t, 7)
	if !slices.Equal(raws1, raws2) || !slices.Equal(truth1, truth2) {
		t.Error("the same seed did not replay")
	}
	raws3, truth3 := script(t, 8)
	if slices.Equal(raws1, raws3) || slices.Equal(truth1, truth3) {
		t.Error("another seed gave the same samples")
	}
}

func TestDoorBounce(t *testing.T) {
	const bounce = 30 * time.Millisecond
	type move struct {
		at   time.Duration
		open bool
	}
	tests := []struct {
		name  string
		moves []move
		poll  time.Duration // 0: read only at the end
		end   time.Duration
		// want is the debounced state over time: the times at which the
		// reported state changes, starting from closed.
		want []time.Duration
	}{
		{"open, polled through the bounce", []move{{0, true}}, time.Millisecond, 200 * time.Millisecond,
			[]time.Duration{bounce + 2*bounce}},
		{"open, read once long after", []move{{0, true}}, 0, time.Second, []time.Duration{0}},
		{"open then close", []move{{0, true}, {500 * time.Millisecond, false}}, time.Millisecond, time.Second,
			[]time.Duration{3 * bounce, 500*time.Millisecond + 3*bounce}},
		{"open and shut within the bounce", []move{{0, true}, {10 * time.Millisecond, false}}, time.Millisecond,
			300 * time.Millisecond, nil},
		{"shut again before it was stable", []move{{0, true}, {70 * time.Millisecond, false}}, time.Millisecond,
			300 * time.Millisecond, nil},
		{"read during a later bounce", []move{{0, true}, {500 * time.Millisecond, false}}, 0,
			510 * time.Millisecond, []time.Duration{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCab(t, Config{Seed: 1, BounceTime: bounce})
			sensor := c.Hardware().Doors[0].Sensor
			start := clk.Now()
			closed := true
			var changes []time.Duration
			rawLevels := map[bool]bool{}
			read := func() {
				got, err := sensor.Closed(context.Background())
				must(t, err)
				if got != closed {
					changes = append(changes, clk.Now().Sub(start))
					closed = got
				}
				c.mu.Lock()
				rawLevels[c.doors[0].levelAt(clk.Now())] = true
				c.mu.Unlock()
			}
			moves := tt.moves
			step := tt.poll
			if step == 0 {
				step = time.Millisecond
			}
			for el := time.Duration(0); el <= tt.end; el += step {
				for len(moves) > 0 && moves[0].at <= el {
					if moves[0].open {
						must(t, c.OpenDoor(1, true))
					} else {
						must(t, c.CloseDoor(1))
					}
					moves = moves[1:]
				}
				if tt.poll != 0 {
					read()
				}
				if el < tt.end {
					clk.Advance(step)
				}
			}
			if tt.poll == 0 {
				read()
				if len(changes) > 0 {
					changes[0] = 0 // only whether it changed matters
				}
			}
			if !slices.Equal(changes, tt.want) {
				t.Errorf("reported changes at %v, want %v", changes, tt.want)
			}
			if tt.poll != 0 && !rawLevels[true] {
				t.Error("the raw reed never read closed")
			}
		})
	}
}

func TestReedFlaps(t *testing.T) {
	c, clk := newCab(t, Config{Seed: 1, BounceTime: 30 * time.Millisecond})
	must(t, c.OpenDoor(1, true))
	start := clk.Now()
	flips, level := 0, true
	for range 40 {
		c.mu.Lock()
		l := c.doors[0].levelAt(clk.Now())
		c.mu.Unlock()
		if l != level {
			flips++
			level = l
		}
		clk.Advance(time.Millisecond)
	}
	if flips < 5 || level {
		t.Errorf("reed flipped %d times and ended closed=%v %v after the door opened", flips, level, clk.Now().Sub(start))
	}
}

func TestLock(t *testing.T) {
	const rel = 150 * time.Millisecond
	type step struct {
		do      string // energise, release, open, force, close, jam, unjam, wait
		wait    time.Duration
		err     error // of open/force
		locked  *bool // Locked() after the step, if set
		pending bool  // checked when locked is set
	}
	yes, no := new(bool), new(bool)
	*yes = true
	tests := []struct {
		name  string
		steps []step
	}{
		{"a locked door does not open", []step{
			{do: "open", err: ErrLocked, locked: yes},
		}},
		{"force breaks it open", []step{
			{do: "force", locked: yes},
			{do: "close", locked: yes},
		}},
		{"the bolt retracts after the release time", []step{
			{do: "energise", locked: yes},
			{do: "wait", wait: rel - time.Millisecond, locked: yes},
			{do: "open", err: ErrLocked},
			{do: "wait", wait: time.Millisecond, locked: no},
			{do: "open"},
		}},
		{"released while open it locks when closed", []step{
			{do: "energise"},
			{do: "wait", wait: rel},
			{do: "open"},
			{do: "release", locked: no, pending: true},
			{do: "wait", wait: time.Minute, locked: no, pending: true},
			{do: "close", locked: yes},
			{do: "open", err: ErrLocked},
		}},
		{"released before it retracted stays locked", []step{
			{do: "energise"},
			{do: "wait", wait: rel / 2},
			{do: "release"},
			{do: "wait", wait: rel, locked: yes},
			{do: "open", err: ErrLocked},
		}},
		{"energised again keeps its timing", []step{
			{do: "energise"},
			{do: "wait", wait: rel / 2},
			{do: "energise"},
			{do: "wait", wait: rel / 2, locked: no},
		}},
		{"a jammed lock stays locked", []step{
			{do: "jam"},
			{do: "energise"},
			{do: "wait", wait: time.Second, locked: yes},
			{do: "open", err: ErrLocked},
			{do: "unjam", locked: yes},
			{do: "wait", wait: rel - time.Millisecond, locked: yes},
			{do: "wait", wait: time.Millisecond, locked: no},
			{do: "open"},
		}},
		{"a lock jammed open does not relock", []step{
			{do: "energise"},
			{do: "wait", wait: rel},
			{do: "open"},
			{do: "jam"},
			{do: "release"},
			{do: "close", locked: no},
			{do: "open"},
			{do: "close"},
			{do: "unjam", locked: yes},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCab(t, Config{Seed: 1, LockReleaseTime: rel})
			ctx := context.Background()
			l := c.Hardware().Doors[0].Lock
			for i, st := range tt.steps {
				var err error
				switch st.do {
				case "energise":
					err = l.Energise(ctx)
				case "release":
					err = l.Release(ctx)
				case "open":
					err = c.OpenDoor(1, false)
				case "force":
					err = c.OpenDoor(1, true)
				case "close":
					err = c.CloseDoor(1)
				case "jam":
					err = c.JamLock(1, true)
				case "unjam":
					err = c.JamLock(1, false)
				case "wait":
					clk.Advance(st.wait)
				}
				if !errors.Is(err, st.err) {
					t.Fatalf("step %d %s: err = %v, want %v", i, st.do, err, st.err)
				}
				if st.locked == nil {
					continue
				}
				got, err := l.Locked(ctx)
				must(t, err)
				if got != *st.locked {
					t.Fatalf("step %d %s: Locked = %v, want %v", i, st.do, got, *st.locked)
				}
				if ds := c.Snapshot().Doors[0]; ds.PendingLock != st.pending || ds.Locked != got {
					t.Fatalf("step %d %s: snapshot %+v", i, st.do, ds)
				}
			}
		})
	}
}

func TestDevices(t *testing.T) {
	c, _ := newCab(t, Config{Seed: 1, TempC: 4})
	ctx := context.Background()
	hw := c.Hardware()
	scr := hal.Screen{QR: "https://pay.example/q?c=NM-1&n=1", Status: "Scan to open"}
	must(t, hw.Display.Show(ctx, scr))
	must(t, hw.Indicator.Set(ctx, hal.SignalReady))
	snap := c.Snapshot()
	if snap.Display.QR != scr.QR || snap.Display.Status != scr.Status || snap.Indicator != "ready" {
		t.Errorf("snapshot display %+v, indicator %q", snap.Display, snap.Indicator)
	}
	var buf bytes.Buffer
	must(t, c.DisplayPNG(&buf))
	img, err := png.Decode(&buf)
	must(t, err)
	if b := img.Bounds(); b.Dx() != DisplayWidth || b.Dy() != DisplayHeight {
		t.Errorf("PNG is %v", b)
	}
	for _, want := range []float64{4, -18} {
		c.SetTemp(want)
		got, err := hw.Thermometer.Celsius(ctx)
		must(t, err)
		if math.Abs(got-want) > 0.3 {
			t.Errorf("thermometer %.2f °C, set %.2f °C", got, want)
		}
	}
	must(t, hw.Display.Halt())
	must(t, hw.Indicator.Halt())
	if snap := c.Snapshot(); snap.Display.QR != "" || snap.Indicator != "off" {
		t.Errorf("after Halt: %+v, %q", snap.Display, snap.Indicator)
	}
	if len(hw.Doors) != 2 || len(hw.Shelves) != 3 || hw.Shelves[2].Door != 2 || hw.Shelves[2].Number != 3 {
		t.Errorf("hardware %+v", hw)
	}
	for _, f := range []error{c.FaultScale(1, "melted"), c.FaultScale(7, "dead")} {
		if f == nil {
			t.Error("bad FaultScale accepted")
		}
	}
}

func TestPowerCut(t *testing.T) {
	c, clk := newCab(t, Config{Seed: 1})
	ctx := context.Background()
	hw := c.Hardware()
	openDoor(t, c, clk, 1)
	must(t, hw.Display.Show(ctx, hal.Screen{Status: "open"}))
	c.SetPower(false)
	if err := hw.Doors[0].Lock.Energise(ctx); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("Energise without power: %v", err)
	}
	if _, err := hw.Doors[0].Sensor.Closed(ctx); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("Closed without power: %v", err)
	}
	if _, err := c.Sample(1); !errors.Is(err, hal.ErrClosed) {
		t.Errorf("Sample without power: %v", err)
	}
	snap := c.Snapshot()
	if d := snap.Doors[0]; !d.Open || d.Energised || !d.PendingLock || snap.Display.Status != "" {
		t.Errorf("after the cut: %+v, display %+v", d, snap.Display)
	}
	must(t, c.CloseDoor(1))
	c.SetPower(true)
	if locked, err := hw.Doors[0].Lock.Locked(ctx); err != nil || !locked {
		t.Errorf("after restore Locked = %v, %v", locked, err)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"duplicate shelf", Config{Shelves: []ShelfConfig{{Shelf: 1}, {Shelf: 1}}}},
		{"shelf zero", Config{Shelves: []ShelfConfig{{Shelf: 0}}}},
		{"door out of range", Config{Doors: 1, Shelves: []ShelfConfig{{Shelf: 1, Door: 2}}}},
		{"negative rate", Config{SampleRate: -1}},
		{"negative tray", Config{Shelves: []ShelfConfig{{Shelf: 1, EmptyG: -1}}}},
		{"negative creep tau", Config{CreepTau: -time.Second}},
		{"NaN noise", Config{NoiseG: math.NaN()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	c, err := New(Config{})
	must(t, err)
	if snap := c.Snapshot(); len(snap.Doors) != 1 || len(snap.Shelves) != 4 || !snap.Doors[0].Locked {
		t.Errorf("default cabinet %+v", snap)
	}
}

// The door switch latches an opening: a door opened and shut again between
// two reads of Closed is reported once by Opened; a bounce too short to
// count (shorter than the debounce) is not.
func TestDoorSensorLatchesAnOpening(t *testing.T) {
	clk := clocktest.New()
	c, err := New(Config{Doors: 1, BounceTime: 10 * time.Millisecond, LockReleaseTime: time.Millisecond, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sensor := c.Hardware().Doors[0].Sensor
	latch, ok := sensor.(hal.DoorLatch)
	if !ok {
		t.Fatalf("%T is not a hal.DoorLatch", sensor)
	}
	if closed, err := sensor.Closed(ctx); err != nil || !closed {
		t.Fatalf("closed %v, %v", closed, err)
	}
	if opened, _ := latch.Opened(ctx); opened {
		t.Fatal("latched an opening before any")
	}
	// Open for 100 ms, shut, settle: Closed reads shut again.
	if err := c.OpenDoor(1, true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * time.Millisecond)
	if err := c.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * time.Millisecond)
	if closed, _ := sensor.Closed(ctx); !closed {
		t.Fatal("door reads open after it shut")
	}
	if opened, err := latch.Opened(ctx); err != nil || !opened {
		t.Fatalf("the opening between two reads was not latched: %v, %v", opened, err)
	}
	if opened, _ := latch.Opened(ctx); opened {
		t.Fatal("the latch did not clear")
	}
	// A rattle shorter than the debounce is no opening.
	if err := c.OpenDoor(1, true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Millisecond)
	if err := c.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * time.Millisecond)
	if opened, _ := latch.Opened(ctx); opened {
		t.Fatal("a 5 ms rattle latched as an opening")
	}
}

// Power back after a cut longer than the scales' no-data time: the board
// starts again, so its scales read "no sample yet", not a fault.
func TestPowerRestoreGivesScalesFreshGrace(t *testing.T) {
	clk := clocktest.New()
	c, err := New(Config{Doors: 1, Shelves: []ShelfConfig{{Shelf: 1, Door: 1}}, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Hardware().Shelves[0].Scale
	c.SetPower(false)
	clk.Advance(time.Minute)
	if _, err := sc.Reading(); err == nil {
		t.Fatal("a minute without samples reads no fault: the test proves nothing")
	}
	c.SetPower(true)
	r, err := sc.Reading()
	if err != nil || r.Samples != 0 {
		t.Fatalf("right after power came back: %+v, %v; want no sample yet and no fault", r, err)
	}
}
