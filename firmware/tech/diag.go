package tech

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/internal/clock"
)

// DiagOpts tunes Diag. Zero fields take the values of DefaultDiagOpts.
type DiagOpts struct {
	// Sample is how long each shelf is watched for its noise; shelves are
	// sampled together.
	Sample time.Duration
	// DoorTimeout is how long the technician has for each door move.
	DoorTimeout time.Duration
	// LockSettle is how long after energising or releasing a lock its
	// feedback is read: the bolt's travel time, with margin.
	LockSettle time.Duration
	// RingDown is how long the shelves are left after the door checks
	// before their noise is measured: a shut door rings its shelves for a
	// moment, which is not the load cells' noise.
	RingDown time.Duration
	// Poll is how often door switches and scales are read.
	Poll time.Duration
	// MaxNoiseG is the largest scale noise σ, in grams, that passes.
	MaxNoiseG float64
	// MinC and MaxC bound a sane cabinet air temperature.
	MinC, MaxC float64
	// QR is the text of the test QR code.
	QR string
}

// DefaultDiagOpts are the values zero fields of DiagOpts fall back to.
var DefaultDiagOpts = DiagOpts{
	Sample:      5 * time.Second,
	DoorTimeout: 30 * time.Second,
	LockSettle:  500 * time.Millisecond,
	RingDown:    time.Second,
	Poll:        20 * time.Millisecond,
	MaxNoiseG:   scale.DefaultOpts.MaxStdG,
	MinC:        -25,
	MaxC:        60,
	QR:          "BANGFU DIAG",
}

func (o *DiagOpts) resolve() DiagOpts {
	r := DefaultDiagOpts
	if o == nil {
		return r
	}
	if o.Sample > 0 {
		r.Sample = o.Sample
	}
	if o.DoorTimeout > 0 {
		r.DoorTimeout = o.DoorTimeout
	}
	if o.LockSettle > 0 {
		r.LockSettle = o.LockSettle
	}
	if o.RingDown > 0 {
		r.RingDown = o.RingDown
	}
	if o.Poll > 0 {
		r.Poll = o.Poll
	}
	if o.MaxNoiseG > 0 {
		r.MaxNoiseG = o.MaxNoiseG
	}
	if o.MinC != 0 || o.MaxC != 0 {
		r.MinC, r.MaxC = o.MinC, o.MaxC
	}
	if o.QR != "" {
		r.QR = o.QR
	}
	return r
}

// Status is a check's outcome.
type Status string

// Outcomes. A skipped check did not run because an earlier one failed or
// the part is not fitted; it is not a failure of its own.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Row is one check.
type Row struct {
	Part   string // "door 1 lock", "shelf 3", "display"
	Check  string // "unlocks", "noise", …
	Status Status
	Detail string
}

// Report is the outcome of Diag, rows in the order the checks ran.
type Report struct {
	Rows []Row
}

// OK reports whether no check failed.
func (r Report) OK() bool { return len(r.Failed()) == 0 }

// Failed returns the failed rows.
func (r Report) Failed() []Row {
	var out []Row
	for _, row := range r.Rows {
		if row.Status == Fail {
			out = append(out, row)
		}
	}
	return out
}

// Find returns the row for part and check.
func (r Report) Find(part, check string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Part == part && row.Check == check {
			return row, true
		}
	}
	return Row{}, false
}

// Print writes the table and a summary line.
func (r Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tCHECK\tRESULT\tDETAIL")
	counts := map[Status]int{}
	for _, row := range r.Rows {
		counts[row.Status]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Part, row.Check, row.Status, row.Detail)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("tech: print report: %w", err)
	}
	_, err := fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", counts[Pass], counts[Fail], counts[Skip])
	return err
}

// diag is one run of Diag.
type diag struct {
	rig Rig
	p   Prompter
	out io.Writer
	o   DiagOpts

	mu  sync.Mutex // rows are added by the shelves' goroutines too
	rep Report
}

func (d *diag) row(part, check string, st Status, format string, a ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rep.Rows = append(d.rep.Rows, Row{Part: part, Check: check, Status: st, Detail: fmt.Sprintf(format, a...)})
}

func (d *diag) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

// Diag tests every part of the rig with the technician's help and prints
// the pass/fail table to out. It returns an error only when it could not
// finish (ctx ended, the prompter failed); failed checks are in the Report.
// Every lock it energised is released before it returns, even on error.
func Diag(ctx context.Context, rig Rig, p Prompter, out io.Writer, o *DiagOpts) (Report, error) {
	d := &diag{rig: rig, p: p, out: out, o: o.resolve()}
	doors := append([]hal.Door(nil), rig.Cabinet.Doors...)
	sort.Slice(doors, func(i, j int) bool { return doors[i].Number < doors[j].Number })
	for _, door := range doors {
		if err := d.door(ctx, door); err != nil {
			return d.rep, err
		}
	}
	if err := d.shelves(ctx); err != nil {
		return d.rep, err
	}
	if err := d.display(ctx); err != nil {
		return d.rep, err
	}
	if err := d.indicator(ctx); err != nil {
		return d.rep, err
	}
	d.thermometer(ctx)
	fmt.Fprintln(out)
	if err := d.rep.Print(out); err != nil {
		return d.rep, err
	}
	return d.rep, nil
}

// release puts the lock back in its safe state even after ctx ended: a
// cancelled diagnosis must not leave a door unlocked.
func release(ctx context.Context, l hal.Lock) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := l.Release(rctx); err != nil {
		return fmt.Errorf("tech: release %s: %w", l, err)
	}
	return nil
}

// waitDoor polls the switch until it reports closed == want or timeout
// passes; it returns how long that took and whether it happened.
func (d *diag) waitDoor(ctx context.Context, s hal.DoorSensor, want bool, timeout time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	for {
		closed, err := s.Closed(ctx)
		if err == nil && closed == want {
			return time.Since(start), true, nil
		}
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		if time.Since(start) >= timeout {
			if err != nil {
				return timeout, false, err
			}
			return timeout, false, nil
		}
		if err := clock.Sleep(ctx, d.o.Poll); err != nil {
			return 0, false, err
		}
	}
}

// door tests one door's lock, then its switch.
func (d *diag) door(ctx context.Context, door hal.Door) (err error) {
	lockPart := fmt.Sprintf("door %d lock", door.Number)
	swPart := fmt.Sprintf("door %d switch", door.Number)
	if door.Lock == nil || door.Sensor == nil {
		d.row(fmt.Sprintf("door %d", door.Number), "fitted", Fail, "lock or switch missing from the rig")
		return nil
	}
	defer func() {
		if rerr := release(ctx, door.Lock); rerr != nil {
			d.row(lockPart, "release at the end", Fail, "%v", rerr)
			err = errors.Join(err, rerr)
		}
	}()

	// The lock is tested with the door shut: only then does a released
	// bolt go out.
	if closed, serr := door.Sensor.Closed(ctx); serr == nil && !closed {
		d.say("door %d is open.", door.Number)
		if err := d.p.Wait(ctx, Prompt{Kind: KindCloseDoor, Door: door.Number,
			Text: fmt.Sprintf("Close door %d for the lock test.", door.Number)}); err != nil {
			return err
		}
		if _, ok, err := d.waitDoor(ctx, door.Sensor, true, d.o.DoorTimeout); err != nil && ctx.Err() != nil {
			return err
		} else if !ok {
			d.row(lockPart, "door shut for the test", Fail, "door %d did not close within %v", door.Number, d.o.DoorTimeout)
		}
	}

	d.say("door %d: energising the lock…", door.Number)
	unlocked := d.lockStep(ctx, door.Lock, lockPart, "unlocks", true)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.lockStep(ctx, door.Lock, lockPart, "locks", false)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	if !unlocked {
		d.row(swPart, "opens", Skip, "lock did not open")
		d.row(swPart, "closes", Skip, "lock did not open")
		d.row(lockPart, "locks after close", Skip, "lock did not open")
		return nil
	}
	if err := door.Lock.Energise(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.row(swPart, "opens", Fail, "energise lock: %v", err)
		return nil
	}
	if err := clock.Sleep(ctx, d.o.LockSettle); err != nil {
		return err
	}
	if err := d.p.Wait(ctx, Prompt{Kind: KindOpenDoor, Door: door.Number,
		Text: fmt.Sprintf("Door %d is unlocked: open it.", door.Number)}); err != nil {
		return err
	}
	took, ok, serr := d.waitDoor(ctx, door.Sensor, false, d.o.DoorTimeout)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case ok:
		d.row(swPart, "opens", Pass, "seen open after %v", took.Round(time.Millisecond))
	case serr != nil:
		d.row(swPart, "opens", Fail, "%v", serr)
	default:
		d.row(swPart, "opens", Fail, "still reads closed after %v: magnet, wiring or closed_level", d.o.DoorTimeout)
	}
	if err := release(ctx, door.Lock); err != nil {
		d.row(lockPart, "release", Fail, "%v", err)
	}
	if err := d.p.Wait(ctx, Prompt{Kind: KindCloseDoor, Door: door.Number,
		Text: fmt.Sprintf("Close door %d.", door.Number)}); err != nil {
		return err
	}
	opened := ok
	took, ok, serr = d.waitDoor(ctx, door.Sensor, true, d.o.DoorTimeout)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case !opened:
		d.row(swPart, "closes", Skip, "door not seen open: cannot tell")
	case ok:
		d.row(swPart, "closes", Pass, "seen closed after %v", took.Round(time.Millisecond))
	case serr != nil:
		d.row(swPart, "closes", Fail, "%v", serr)
	default:
		d.row(swPart, "closes", Fail, "still reads open after %v", d.o.DoorTimeout)
	}
	if err := clock.Sleep(ctx, d.o.LockSettle); err != nil {
		return err
	}
	locked, lerr := door.Lock.Locked(ctx)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case lerr != nil:
		d.row(lockPart, "locks after close", Fail, "%v", lerr)
	case !ok:
		d.row(lockPart, "locks after close", Skip, "door not seen closed")
	case locked:
		d.row(lockPart, "locks after close", Pass, "feedback: locked")
	default:
		d.row(lockPart, "locks after close", Fail, "feedback: unlocked with the door shut (a lock_fault)")
	}
	return nil
}

// lockStep energises (open) or releases the lock, waits LockSettle and
// checks the feedback; it reports whether the feedback was as wanted.
func (d *diag) lockStep(ctx context.Context, l hal.Lock, part, check string, open bool) bool {
	var err error
	if open {
		err = l.Energise(ctx)
	} else {
		err = l.Release(ctx)
	}
	if err != nil {
		d.row(part, check, Fail, "%v", err)
		return false
	}
	if clock.Sleep(ctx, d.o.LockSettle) != nil {
		return false
	}
	locked, err := l.Locked(ctx)
	switch {
	case err != nil:
		d.row(part, check, Fail, "feedback: %v", err)
		return false
	case locked == open:
		d.row(part, check, Fail, "feedback still %s after %v: jammed bolt, relay or wiring", lockWord(locked), d.o.LockSettle)
		return false
	}
	d.row(part, check, Pass, "feedback %s after %v", lockWord(locked), d.o.LockSettle)
	return true
}

func lockWord(locked bool) string {
	if locked {
		return "locked"
	}
	return "unlocked"
}

// rawStats summarises raw counts.
type rawStats struct {
	n         int
	mean, std float64
	min, max  int32
}

func statsOf(v []int32) rawStats {
	s := rawStats{n: len(v)}
	if len(v) == 0 {
		return s
	}
	s.min, s.max = v[0], v[0]
	for _, x := range v {
		s.mean += float64(x)
		s.min, s.max = min(s.min, x), max(s.max, x)
	}
	s.mean /= float64(len(v))
	if len(v) > 1 {
		ss := 0.0
		for _, x := range v {
			dx := float64(x) - s.mean
			ss += dx * dx
		}
		s.std = math.Sqrt(ss / float64(len(v)-1))
	}
	return s
}

// shelves watches every shelf for Sample at once.
func (d *diag) shelves(ctx context.Context) error {
	shelves := append([]hal.Shelf(nil), d.rig.Cabinet.Shelves...)
	sort.Slice(shelves, func(i, j int) bool { return shelves[i].Number < shelves[j].Number })
	if len(shelves) == 0 {
		return nil
	}
	d.say("sampling %d shelves for %v; keep the cabinet still…", len(shelves), d.o.Sample)
	if len(d.rig.Cabinet.Doors) > 0 {
		if err := clock.Sleep(ctx, d.o.RingDown); err != nil {
			return err
		}
	}
	// A shelf on two load cells also gets a row for its right cell alone,
	// so a technician knows which cell to look at.
	results := make([]shelfResult, len(shelves))
	rights := make([]*shelfResult, len(shelves))
	var wg sync.WaitGroup
	for i, s := range shelves {
		wg.Go(func() { results[i] = d.sampleCell(ctx, s.Scale, d.rig.Raw[s.Number]) })
		if raw := d.rig.RawRight[s.Number]; s.Right != nil || raw != nil {
			wg.Go(func() {
				r := d.sampleCell(ctx, s.Right, raw)
				rights[i] = &r
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, s := range shelves {
		part := fmt.Sprintf("shelf %d", s.Number)
		d.row(part, "scale", results[i].status, "%s", results[i].detail)
		if r := rights[i]; r != nil {
			d.row(part, "right cell", r.status, "%s", r.detail)
		}
	}
	return nil
}

type shelfResult struct {
	status Status
	detail string
}

// sampleCell reads one scale's raw counts (rawDev, nil when the rig has
// no raw access) and its filtered readings (sc) for Sample and judges them.
func (d *diag) sampleCell(ctx context.Context, sc hal.Scale, rawDev hal.RawScale) shelfResult {
	sctx, cancel := context.WithTimeout(ctx, d.o.Sample)
	defer cancel()

	var raw []int32
	var rawErr error
	var wg sync.WaitGroup
	if r := rawDev; r != nil {
		wg.Go(func() {
			for sctx.Err() == nil {
				v, err := r.ReadRaw(sctx)
				if err != nil {
					if sctx.Err() == nil {
						rawErr = err
						clock.Sleep(sctx, d.o.Poll) // a failing chip may fail at once: don't spin
					}
					continue
				}
				raw = append(raw, v)
			}
		})
	}

	var last hal.Reading
	var readErr error
	var noiseSum float64
	var noiseN int
	if sc != nil {
		for sctx.Err() == nil {
			rd, err := sc.Reading()
			last, readErr = rd, err
			if err == nil && rd.Samples > 1 {
				noiseSum += rd.NoiseG
				noiseN++
			}
			if clock.Sleep(sctx, d.o.Poll) != nil {
				break
			}
		}
	}
	wg.Wait()

	st := statsOf(raw)
	rawText := "no raw access"
	if rawDev != nil {
		rawText = fmt.Sprintf("raw %.0f ±%.0f counts (n=%d)", st.mean, st.std, st.n)
	}
	fail := func(format string, a ...any) shelfResult {
		return shelfResult{Fail, fmt.Sprintf(format, a...) + "; " + rawText}
	}
	switch {
	case rawErr != nil:
		return fail("raw read: %v", rawErr)
	case st.n > 0 && (st.max >= scale.RawMax || st.min <= scale.RawMin):
		return fail("raw at full scale: overloaded, broken or miswired load cell")
	case rawDev != nil && st.n == 0:
		return fail("no raw sample in %v", d.o.Sample)
	case sc == nil:
		return fail("no scale in the rig")
	case readErr != nil:
		return fail("%v", readErr)
	case last.Samples == 0:
		return fail("no filtered reading in %v", d.o.Sample)
	}
	noise := last.NoiseG
	if noiseN > 0 {
		noise = noiseSum / float64(noiseN)
	}
	detail := fmt.Sprintf("%.1f g, σ %.2f g, %s; %s", last.Grams, noise, settledWord(last.Settled), rawText)
	switch {
	case noise > d.o.MaxNoiseG:
		return shelfResult{Fail, fmt.Sprintf("noise σ %.2f g above %.2f g: ", noise, d.o.MaxNoiseG) + detail}
	case !last.Settled:
		return shelfResult{Fail, "never settled: something touches the tray? " + detail}
	}
	return shelfResult{Pass, detail}
}

func settledWord(b bool) string {
	if b {
		return "settled"
	}
	return "not settled"
}

func (d *diag) display(ctx context.Context) error {
	disp := d.rig.Cabinet.Display
	if disp == nil {
		d.row("display", "shows QR", Fail, "no display in the rig")
		return nil
	}
	const status = "DIAG display test"
	if err := disp.Show(ctx, hal.Screen{QR: d.o.QR, Status: status}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.row("display", "shows QR", Fail, "%v", err)
		return nil
	}
	yes, err := d.p.Ask(ctx, Prompt{Kind: KindCheckDisplay,
		Text: fmt.Sprintf("Does the display show a QR code and %q?", status)})
	if err != nil {
		return err
	}
	if yes {
		d.row("display", "shows QR", Pass, "confirmed by the technician")
	} else {
		d.row("display", "shows QR", Fail, "technician saw no test screen")
	}
	return nil
}

func (d *diag) indicator(ctx context.Context) error {
	ind := d.rig.Cabinet.Indicator
	if ind == nil {
		d.row("indicator", "signals", Skip, "none fitted")
		return nil
	}
	if err := ind.Set(ctx, hal.SignalAlarm); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.row("indicator", "signals", Fail, "%v", err)
		return nil
	}
	yes, err := d.p.Ask(ctx, Prompt{Kind: KindCheckIndicator,
		Text: "Is the LED flashing fast and the buzzer (if fitted) beeping?"})
	offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if oerr := ind.Set(offCtx, hal.SignalOff); oerr != nil {
		d.row("indicator", "turns off", Fail, "%v", oerr)
	}
	if err != nil {
		return err
	}
	if yes {
		d.row("indicator", "signals", Pass, "confirmed by the technician")
	} else {
		d.row("indicator", "signals", Fail, "technician saw no alarm signal")
	}
	return nil
}

func (d *diag) thermometer(ctx context.Context) {
	th := d.rig.Cabinet.Thermometer
	if th == nil {
		d.row("thermometer", "reads", Skip, "none fitted")
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := th.Celsius(tctx)
	switch {
	case err != nil:
		d.row("thermometer", "reads", Fail, "%v", err)
	case math.IsNaN(c) || c < d.o.MinC || c > d.o.MaxC:
		d.row("thermometer", "reads", Fail, "%.1f °C outside %.0f…%.0f °C", c, d.o.MinC, d.o.MaxC)
	default:
		d.row("thermometer", "reads", Pass, "%.1f °C", c)
	}
}
