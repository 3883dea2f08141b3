package tech

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
)

// cellRaw is one load cell's amplifier: its counts follow the grams placed
// over it under a true calibration, with a fixed ±3-count jitter.
type cellRaw struct {
	name string
	cal  scale.Calibration

	mu    sync.Mutex
	grams float64
	n     int
	err   error // every read fails with it (a dead chip)
}

func (c *cellRaw) set(g float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grams = g
}

func (c *cellRaw) ReadRaw(ctx context.Context) (int32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.n++
	jitter := []float64{3, -2, 1, -3, 2, -1}[c.n%6]
	return int32(math.Round(float64(c.cal.Offset) + c.grams*c.cal.CountsPerGram + jitter)), nil
}

func (c *cellRaw) String() string { return c.name }
func (c *cellRaw) Halt() error    { return nil }

// twoCellRig is a cabinet with shelf 1 on two cells (left and right) and
// shelf 2 on one; no locks.
func twoCellRig() (Rig, *cellRaw, *cellRaw) {
	left := &cellRaw{name: "left", cal: scale.Calibration{Offset: 120000, CountsPerGram: 420}}
	right := &cellRaw{name: "right", cal: scale.Calibration{Offset: -35000, CountsPerGram: -395.5}}
	one := &cellRaw{name: "one", cal: scale.Calibration{Offset: 0, CountsPerGram: 100}}
	rig := Rig{
		Cabinet:  hal.Cabinet{Shelves: []hal.Shelf{{Number: 1, Door: 1}, {Number: 2, Door: 1}}},
		Raw:      map[int]hal.RawScale{1: left, 2: one},
		RawRight: map[int]hal.RawScale{1: right},
	}
	return rig, left, right
}

func TestCalibrateCellTwoCellShelf(t *testing.T) {
	for _, cell := range []ledger.Cell{ledger.CellLeft, ledger.CellRight} {
		t.Run(string(cell), func(t *testing.T) {
			rig, left, right := twoCellRig()
			cells := map[ledger.Cell]*cellRaw{ledger.CellLeft: left, ledger.CellRight: right}
			var texts []string
			// The technician places each weight over the cell the prompt
			// names: that cell carries all of it, the other none.
			p := prompter{ask: func(_ context.Context, pr Prompt) (bool, error) {
				texts = append(texts, pr.Text)
				if pr.Kind == KindPlaceWeight {
					if pr.Cell != cell {
						t.Errorf("prompt for cell %q, calibrating %q", pr.Cell, cell)
					}
					cells[pr.Cell].set(pr.Grams)
				}
				return true, nil
			}}
			opts := CalibrateOpts{Samples: 12, Settle: time.Nanosecond, Out: io.Discard}
			got, err := CalibrateCell(context.Background(), rig, 1, cell, p, []float64{500, 1000}, &opts)
			if err != nil {
				t.Fatal(err)
			}
			truth := cells[cell].cal
			if k := got.Calibration.CountsPerGram; math.Abs(k/truth.CountsPerGram-1) > 1e-3 {
				t.Errorf("fitted %.3f counts per gram, true %.3f", k, truth.CountsPerGram)
			}
			if d := math.Abs(float64(got.Calibration.Offset - truth.Offset)); d > 3 {
				t.Errorf("offset %d, true %d", got.Calibration.Offset, truth.Offset)
			}
			want := "directly over its " + string(cell) + " load cell"
			if !strings.Contains(strings.Join(texts, "\n"), want) {
				t.Errorf("prompts do not say %q:\n%s", want, strings.Join(texts, "\n"))
			}
		})
	}
}

func TestCalibrateCellRefuses(t *testing.T) {
	rig, _, _ := twoCellRig()
	opts := CalibrateOpts{Samples: 2, Settle: time.Nanosecond}
	for _, tt := range []struct {
		shelf int
		cell  ledger.Cell
		want  string
	}{
		{2, ledger.CellRight, "shelf 2 has one load cell"},
		{1, ledger.Cell("middle"), `unknown load cell "middle"`},
		{3, ledger.CellLeft, "shelf 3: no raw scale"},
	} {
		_, err := CalibrateCell(context.Background(), rig, tt.shelf, tt.cell, prompter{}, []float64{500}, &opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("shelf %d cell %q: %v, want %q", tt.shelf, tt.cell, err, tt.want)
		}
	}
	// A one-cell shelf's prompts keep their wording.
	var texts []string
	p := prompter{ask: func(_ context.Context, pr Prompt) (bool, error) {
		texts = append(texts, pr.Text)
		if pr.Cell != "" {
			t.Errorf("one-cell shelf prompt names cell %q", pr.Cell)
		}
		if pr.Kind == KindPlaceWeight {
			rig.Raw[2].(*cellRaw).set(pr.Grams)
		}
		return true, nil
	}}
	if _, err := Calibrate(context.Background(), rig, 2, p, []float64{500, 1000}, &opts); err != nil {
		t.Fatal(err)
	}
	if j := strings.Join(texts, "\n"); !strings.Contains(j, "in the middle of shelf 2") || strings.Contains(j, "load cell") {
		t.Errorf("one-cell prompts:\n%s", j)
	}
}

// The diag checks both cells of a two-cell shelf: its "scale" row for the
// shelf's total and a "right cell" row for the right cell alone, so a
// technician knows which of the two is dead. The shelf is built as a board
// builds it: a scale.Pair of the two amplifiers, a Filter over the total
// and one over the right cell's view.
func TestDiagTwoCellShelf(t *testing.T) {
	for _, dead := range []string{"", "left", "right"} {
		t.Run("dead="+dead, func(t *testing.T) {
			rig, left, right := twoCellRig()
			left.set(800)
			right.set(700)
			switch dead {
			case "left":
				left.err = fmt.Errorf("left: %w", hal.ErrFault)
			case "right":
				right.err = fmt.Errorf("right: %w", hal.ErrFault)
			}
			pair, err := scale.NewPair(left, right, left.cal, right.cal)
			if err != nil {
				t.Fatal(err)
			}
			opts := &scale.Opts{RetryDelay: time.Millisecond}
			total, err := scale.New(pair, scale.PairCalibration, opts)
			if err != nil {
				t.Fatal(err)
			}
			rightF, err := scale.New(pair.Right(), right.cal, opts)
			if err != nil {
				t.Fatal(err)
			}
			oneF, err := scale.New(rig.Raw[2], rig.Raw[2].(*cellRaw).cal, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, f := range []*scale.Filter{total, rightF, oneF} {
				wg.Go(func() { _ = f.Run(ctx) })
			}
			defer wg.Wait()
			defer cancel()
			rig.Cabinet.Shelves[0].Scale, rig.Cabinet.Shelves[0].Right = total, rightF
			rig.Cabinet.Shelves[1].Scale = oneF
			// The cells are read through the Pair while the diag samples:
			// no raw access of its own, as on a board sharing the chips.
			rig.Raw, rig.RawRight = nil, nil

			rep, err := Diag(ctx, rig, prompter{}, io.Discard, &DiagOpts{Sample: 300 * time.Millisecond, Poll: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			sum, ok1 := rep.Find("shelf 1", "scale")
			rc, ok2 := rep.Find("shelf 1", "right cell")
			one, ok3 := rep.Find("shelf 2", "scale")
			if !ok1 || !ok2 || !ok3 {
				t.Fatalf("rows missing: %+v", rep.Rows)
			}
			if _, ok := rep.Find("shelf 2", "right cell"); ok {
				t.Fatalf("a right-cell row for a one-cell shelf: %+v", rep.Rows)
			}
			t.Logf("total %s %s; right %s %s", sum.Status, sum.Detail, rc.Status, rc.Detail)
			wantTotal, wantRight := Pass, Pass
			switch dead {
			case "left":
				wantTotal = Fail
			case "right":
				wantTotal, wantRight = Fail, Fail
			}
			if sum.Status != wantTotal || rc.Status != wantRight || one.Status != Pass {
				t.Fatalf("dead %q: total %s, right cell %s, shelf 2 %s; want %s, %s, PASS", dead, sum.Status, rc.Status, one.Status, wantTotal, wantRight)
			}
		})
	}
}
