package tech

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/hal/sim"
)

// newSim builds a virtual cabinet sampling fast, runs it for the test and
// returns it with its rig.
func newSim(t *testing.T, cfg sim.Config) (*sim.Cabinet, Rig) {
	t.Helper()
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 200
	}
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim run: %v", err)
		}
	})
	return c, Rig{Cabinet: c.Hardware(), Raw: c.RawScales()}
}

// prompter answers with functions; nil ones answer yes and do nothing.
type prompter struct {
	ask  func(ctx context.Context, p Prompt) (bool, error)
	wait func(ctx context.Context, p Prompt) error
}

func (f prompter) Ask(ctx context.Context, p Prompt) (bool, error) {
	if f.ask == nil {
		return true, nil
	}
	return f.ask(ctx, p)
}

func (f prompter) Wait(ctx context.Context, p Prompt) error {
	if f.wait == nil {
		return nil
	}
	return f.wait(ctx, p)
}

var fastDiag = DiagOpts{
	Sample:      600 * time.Millisecond,
	DoorTimeout: time.Second,
	LockSettle:  200 * time.Millisecond, // sim bolts move in 150ms
	RingDown:    700 * time.Millisecond, // a sim shelf rings for 600ms after a door shuts
	Poll:        5 * time.Millisecond,
}

func TestDiag(t *testing.T) {
	twoDoors := sim.Config{Doors: 2}
	tests := []struct {
		name   string
		cfg    sim.Config
		break_ func(t *testing.T, c *sim.Cabinet)
		hand   func(c *sim.Cabinet) Prompter
		fail   [][2]string // part, check of every row that must fail
		skip   [][2]string
	}{
		{name: "healthy cabinet", cfg: twoDoors},
		{name: "jammed lock", cfg: twoDoors,
			break_: func(t *testing.T, c *sim.Cabinet) { must(t, c.JamLock(1, true)) },
			fail:   [][2]string{{"door 1 lock", "unlocks"}},
			skip:   [][2]string{{"door 1 switch", "opens"}, {"door 1 switch", "closes"}, {"door 1 lock", "locks after close"}}},
		{name: "dead scale", cfg: twoDoors,
			break_: func(t *testing.T, c *sim.Cabinet) { must(t, c.FaultScale(3, "dead")) },
			fail:   [][2]string{{"shelf 3", "scale"}}},
		{name: "saturated scale", cfg: twoDoors,
			break_: func(t *testing.T, c *sim.Cabinet) { must(t, c.FaultScale(2, "saturated")) },
			fail:   [][2]string{{"shelf 2", "scale"}}},
		{name: "noisy scale", cfg: sim.Config{Doors: 2, NoiseG: 20},
			fail: [][2]string{{"shelf 1", "scale"}, {"shelf 2", "scale"}, {"shelf 3", "scale"}, {"shelf 4", "scale"}}},
		{name: "door switch never changes", cfg: twoDoors,
			hand: func(c *sim.Cabinet) Prompter {
				// The technician does nothing at door 2.
				h := NewSimHand(c, Yes{Out: io.Discard})
				return prompter{wait: func(ctx context.Context, p Prompt) error {
					if p.Door == 2 {
						return nil
					}
					return h.Wait(ctx, p)
				}}
			},
			fail: [][2]string{{"door 2 switch", "opens"}},
			skip: [][2]string{{"door 2 switch", "closes"}}},
		{name: "blank display", cfg: twoDoors,
			hand: func(c *sim.Cabinet) Prompter {
				h := NewSimHand(c, Yes{Out: io.Discard})
				return prompter{wait: h.Wait, ask: func(ctx context.Context, p Prompt) (bool, error) {
					return p.Kind != KindCheckDisplay, nil
				}}
			},
			fail: [][2]string{{"display", "shows QR"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // the sims mostly wait on their sample timers
			c, rig := newSim(t, tt.cfg)
			if tt.break_ != nil {
				tt.break_(t, c)
			}
			var p Prompter = NewSimHand(c, Yes{Out: io.Discard})
			if tt.hand != nil {
				p = tt.hand(c)
			}
			var out bytes.Buffer
			rep, err := Diag(context.Background(), rig, p, &out, &fastDiag)
			if err != nil {
				t.Fatal(err)
			}
			want := map[[2]string]Status{}
			for _, r := range tt.fail {
				want[r] = Fail
			}
			for _, r := range tt.skip {
				want[r] = Skip
			}
			for _, part := range []string{"door 1", "door 2"} {
				for _, check := range []string{"lock/unlocks", "lock/locks", "switch/opens", "switch/closes", "lock/locks after close"} {
					p, ch, _ := strings.Cut(check, "/")
					if _, ok := rep.Find(part+" "+p, ch); !ok {
						t.Errorf("no row %s %s", part+" "+p, ch)
					}
				}
			}
			for _, r := range []string{"shelf 1", "shelf 2", "shelf 3", "shelf 4"} {
				if _, ok := rep.Find(r, "scale"); !ok {
					t.Errorf("no row for %s", r)
				}
			}
			for _, row := range rep.Rows {
				st, ok := want[[2]string{row.Part, row.Check}]
				if !ok {
					st = Pass
				}
				if row.Status != st {
					t.Errorf("%s %s: %s (%s), want %s", row.Part, row.Check, row.Status, row.Detail, st)
				}
			}
			if rep.OK() != (len(tt.fail) == 0) {
				t.Errorf("OK() = %v with failures %v", rep.OK(), rep.Failed())
			}
			if !strings.Contains(out.String(), "PART") || !strings.Contains(out.String(), "failed") {
				t.Errorf("no table printed:\n%s", out.String())
			}
			for _, d := range c.Snapshot().Doors {
				if d.Energised {
					t.Errorf("door %d left energised", d.Door)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out.String())
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDiagDetails(t *testing.T) {
	c, rig := newSim(t, sim.Config{TempC: 4})
	rep, err := Diag(context.Background(), rig, NewSimHand(c, Yes{Out: io.Discard}), io.Discard, &fastDiag)
	if err != nil {
		t.Fatal(err)
	}
	th, _ := rep.Find("thermometer", "reads")
	var celsius float64
	if _, err := fmt.Sscanf(th.Detail, "%f °C", &celsius); err != nil || th.Status != Pass || math.Abs(celsius-4) > 0.3 {
		t.Fatalf("thermometer row %+v", th)
	}
	sh, _ := rep.Find("shelf 1", "scale")
	var grams, noise, raw float64
	_, err = fmt.Sscanf(sh.Detail, "%f g, σ %f g, settled; raw %f", &grams, &noise, &raw)
	if err != nil || math.Abs(grams) > 1 || noise > 1 || math.Abs(raw-float64(sim.DefaultCalibration.Offset)) > 100 {
		t.Fatalf("shelf row %+v: %v", sh, err)
	}
	if got := c.Snapshot().Display.QR; got != DefaultDiagOpts.QR {
		t.Fatalf("display shows %q", got)
	}

	// A cabinet too warm for the limits fails its thermometer row.
	c.SetTemp(80)
	rep, err = Diag(context.Background(), Rig{Cabinet: hal.Cabinet{Thermometer: rig.Cabinet.Thermometer}},
		Yes{Out: io.Discard}, io.Discard, &fastDiag)
	if err != nil {
		t.Fatal(err)
	}
	if th, _ := rep.Find("thermometer", "reads"); th.Status != Fail {
		t.Fatalf("80 °C passed: %+v", th)
	}
}

func TestDiagCancelReleasesLock(t *testing.T) {
	c, rig := newSim(t, sim.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := NewSimHand(c, Yes{Out: io.Discard})
	p := prompter{ask: h.Ask, wait: func(ctx context.Context, p Prompt) error {
		if p.Kind == KindOpenDoor {
			if !c.Snapshot().Doors[0].Energised {
				t.Error("asked to open a door whose lock is not energised")
			}
			cancel() // the technician presses Ctrl-C with the door unlocked
		}
		return nil
	}}
	_, err := Diag(ctx, rig, p, io.Discard, &fastDiag)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Diag after cancel: %v", err)
	}
	if d := c.Snapshot().Doors[0]; d.Energised || !d.Locked {
		t.Fatalf("door after a cancelled diag: %+v", d)
	}
}

var fastCal = CalibrateOpts{Samples: 20, Settle: 300 * time.Millisecond}

func TestCalibrate(t *testing.T) {
	tests := []struct {
		name string
		cal  scale.Calibration // the sim's true calibration; zero: DefaultCalibration
	}{
		{"default cell", scale.Calibration{}},
		{"inverted cell", scale.Calibration{Offset: -5000, CountsPerGram: -42.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // the sims mostly wait on their sample timers
			c, rig := newSim(t, sim.Config{Doors: 2, Shelves: []sim.ShelfConfig{
				{Shelf: 1, Door: 1}, {Shelf: 2, Door: 2, Cal: tt.cal}}})
			truth := tt.cal
			if truth.CountsPerGram == 0 {
				truth = sim.DefaultCalibration
			}
			var log bytes.Buffer
			opts := fastCal
			opts.Out = &log
			at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
			opts.Clock = func() time.Time { return at }
			got, err := Calibrate(context.Background(), rig, 2, NewSimHand(c, Yes{Out: io.Discard}), []float64{1000, 500}, &opts)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			k := got.Calibration.CountsPerGram
			if math.Abs(k/truth.CountsPerGram-1) > 0.002 {
				t.Errorf("fitted %.4f counts per gram, true %.4f", k, truth.CountsPerGram)
			}
			if d := math.Abs(float64(got.Calibration.Offset - truth.Offset)); d > 5*math.Abs(truth.CountsPerGram) {
				t.Errorf("offset %d, true %d", got.Calibration.Offset, truth.Offset)
			}
			if len(got.Points) != 2 || got.Points[0].Grams != 500 || got.Points[1].Grams != 1000 {
				t.Fatalf("points %+v", got.Points)
			}
			for _, p := range got.Points {
				if math.Abs(p.ResidualG) > 0.5 {
					t.Errorf("residual %.3f g at %g g", p.ResidualG, p.Grams)
				}
			}
			if !got.At.Equal(at) || got.At.Location() != time.UTC || got.Counter != 0 {
				t.Errorf("at %v counter %d", got.At, got.Counter)
			}
			if got.TareStdCounts <= 0 || got.TareStdCounts > 3*0.5*math.Abs(truth.CountsPerGram) {
				t.Errorf("tare σ %.1f counts for 0.5 g noise", got.TareStdCounts)
			}
			snap := c.Snapshot()
			if d := snap.Doors[1]; d.Energised || d.Open {
				t.Errorf("door 2 after calibration: %+v", d)
			}
			if !strings.Contains(log.String(), "fit:") {
				t.Errorf("no progress printed:\n%s", log.String())
			}
		})
	}
}

func TestCalibrateRefuses(t *testing.T) {
	tests := []struct {
		name  string
		cfg   sim.Config
		refs  []float64
		hand  func(c *sim.Cabinet, h *SimHand) Prompter
		want  error
		noRef bool // refused before any weight was asked for
	}{
		{name: "grossly noisy tare", cfg: sim.Config{NoiseG: 40}, refs: []float64{500, 1000}, want: ErrNoisyTare, noRef: true},
		{name: "noisy tare", cfg: sim.Config{NoiseG: 8}, refs: []float64{500, 1000}, want: ErrNoisyTare},
		{name: "weight never placed", refs: []float64{500, 1000}, want: ErrNoSlope,
			hand: func(c *sim.Cabinet, h *SimHand) Prompter {
				return prompter{wait: h.Wait, ask: func(ctx context.Context, p Prompt) (bool, error) {
					if p.Kind == KindPlaceWeight {
						return true, nil // says yes, puts nothing on
					}
					return h.Ask(ctx, p)
				}}
			}},
		{name: "wrong weight placed", refs: []float64{500, 1000}, want: ErrBadFit,
			hand: func(c *sim.Cabinet, h *SimHand) Prompter {
				return prompter{wait: h.Wait, ask: func(ctx context.Context, p Prompt) (bool, error) {
					if p.Kind == KindPlaceWeight && p.Grams == 1000 {
						p.Grams = 1200 // the technician grabbed the wrong weight
					}
					return h.Ask(ctx, p)
				}}
			}},
		{name: "technician says the shelf is not empty", refs: []float64{500}, want: ErrAborted, noRef: true,
			hand: func(c *sim.Cabinet, h *SimHand) Prompter {
				return prompter{wait: h.Wait, ask: func(ctx context.Context, p Prompt) (bool, error) {
					return p.Kind != KindEmptyShelf, nil
				}}
			}},
		{name: "dead scale", refs: []float64{500}, want: hal.ErrFault, noRef: true,
			hand: func(c *sim.Cabinet, h *SimHand) Prompter {
				must(t, c.FaultScale(1, "dead"))
				return h
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // the sims mostly wait on their sample timers
			c, rig := newSim(t, tt.cfg)
			h := NewSimHand(c, Yes{Out: io.Discard})
			var p Prompter = h
			if tt.hand != nil {
				p = tt.hand(c, h)
			}
			asked := false
			spy := prompter{wait: p.Wait, ask: func(ctx context.Context, pr Prompt) (bool, error) {
				asked = asked || pr.Kind == KindPlaceWeight
				return p.Ask(ctx, pr)
			}}
			got, err := Calibrate(context.Background(), rig, 1, spy, tt.refs, &fastCal)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v (result %+v)", err, tt.want, got)
			}
			if got.Calibration.CountsPerGram != 0 {
				t.Fatalf("a refused calibration came back: %+v", got)
			}
			if tt.noRef && asked {
				t.Fatal("asked for a reference weight after the tare failed")
			}
			if d := c.Snapshot().Doors[0]; d.Energised {
				t.Fatalf("lock left energised: %+v", d)
			}
		})
	}
}

func TestCalibrateBadInput(t *testing.T) {
	c, rig := newSim(t, sim.Config{})
	p := NewSimHand(c, Yes{Out: io.Discard})
	for _, tt := range []struct {
		name  string
		shelf int
		refs  []float64
	}{
		{"no such shelf", 9, []float64{500}},
		{"no refs", 1, nil},
		{"negative ref", 1, []float64{-500}},
		{"NaN ref", 1, []float64{math.NaN()}},
		{"absurd ref", 1, []float64{1e9}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Calibrate(context.Background(), rig, tt.shelf, p, tt.refs, &fastCal); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if d := c.Snapshot().Doors[0]; d.Energised {
		t.Fatal("bad input energised a lock")
	}
}

func TestLinePrompter(t *testing.T) {
	var out bytes.Buffer
	p := NewLinePrompter(strings.NewReader("maybe\n Y \nno\n"), &out)
	ctx := context.Background()
	q := Prompt{Text: "Ready?"}
	if yes, err := p.Ask(ctx, q); !yes || err != nil {
		t.Fatalf("first answer: %v %v", yes, err)
	}
	if yes, err := p.Ask(ctx, q); yes || err != nil {
		t.Fatalf("second answer: %v %v", yes, err)
	}
	if _, err := p.Ask(ctx, q); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("after the input ended: %v", err)
	}
	if err := p.Wait(ctx, Prompt{Text: "Open door 1."}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, "Ready? [y/n]") != 4 || !strings.Contains(got, ">> Open door 1.") {
		t.Fatalf("output %q", got)
	}

	// Nobody answers: cancelling returns at once.
	r, w := io.Pipe()
	defer w.Close() // ends the prompter's reader
	p = NewLinePrompter(r, io.Discard)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Ask(cctx, q); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ask: %v", err)
	}
}
