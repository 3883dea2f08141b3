package world

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/infer"
)

// The accuracy harness: every planogram i is drawn from
// rand.NewPCG(planogramSeed, i) and its session j from
// rand.NewPCG(sessionSeed, i<<32|j), so a run replays exactly whatever the
// number of workers. The same session seed is used at both σ and on one
// cell and two: the shoppers and the units' true weights are the same in
// every run; only the readings differ.
const (
	planogramSeed = 20260601
	sessionSeed   = 20260602
)

// sigmas are the load cells' per-sample noise levels: a good cell and a
// poor one.
var sigmas = []float64{0.5, 2}

// setting is a way of running infer.Infer on the world, or (frontier set)
// of deciding on the world's own posterior instead.
type setting struct {
	name     string
	twoCell  bool
	options  func(Planogram) *infer.Options
	frontier func(post []FrontierBasket) infer.Result
	// noTouch hides the touch detector's flags (Still, NeverRose, Rose) from
	// Infer: the cabinet as it judged before it watched its shelves during
	// a session.
	noTouch bool
	// noLifts hides only the watch's lift counts (Lifts, LiftsKnown).
	noLifts bool
}

// judge is the setting's result for session s of planogram p at σ; post
// holds the session's frontier posterior once computed, shared by the
// frontier settings.
func (st setting) judge(p Planogram, s Session, sigma float64, post *[]FrontierBasket) infer.Result {
	if st.frontier != nil {
		if *post == nil {
			*post = p.Frontier(s, sigma)
		}
		return st.frontier(*post)
	}
	if st.noTouch {
		s.Shelves = slices.Clone(s.Shelves)
		for i := range s.Shelves {
			s.Shelves[i].Still, s.Shelves[i].NeverRose, s.Shelves[i].Rose = false, false, false
		}
	}
	if st.noTouch || st.noLifts {
		s.Shelves = slices.Clone(s.Shelves)
		for i := range s.Shelves {
			s.Shelves[i].Lifts, s.Shelves[i].LiftsKnown = 0, false
		}
	}
	return infer.Infer(s.Shelves, s.Cabinet, st.options(p))
}

func defaultOptions(Planogram) *infer.Options { return nil }

var (
	settingDefault = setting{name: "default", options: defaultOptions}
	// The default model without the lift counts, and without any of the
	// touch watch's evidence.
	settingNoLifts = setting{name: "default, no lift counts", options: defaultOptions, noLifts: true}
	settingNoTouch = setting{name: "default, no touch evidence", options: defaultOptions, noTouch: true}
	settingRevenue = setting{name: "revenue-first", options: func(Planogram) *infer.Options {
		return &infer.Options{RevenueFirst: true}
	}}
	settingOracle  = setting{name: "oracle", options: OracleOptions}
	settingTwoCell = setting{name: "two-cell", twoCell: true, options: defaultOptions}
	// The frontier (frontier.go) under the default decision rule and
	// under the posterior alone.
	settingFrontier = setting{name: "frontier", frontier: func(post []FrontierBasket) infer.Result {
		return FrontierDecide(post, infer.DefaultConfidence, infer.DefaultCheaperBound, false)
	}}
	settingFrontierRevenue = setting{name: "frontier, revenue-first", frontier: func(post []FrontierBasket) infer.Result {
		return FrontierDecide(post, infer.DefaultConfidence, infer.DefaultCheaperBound, true)
	}}
	allSettings = []setting{settingDefault, settingNoLifts, settingNoTouch, settingRevenue, settingOracle, settingTwoCell, settingFrontier, settingFrontierRevenue}
)

// maxExamples is how many failing sessions a run keeps for its log.
const maxExamples = 5

// runAcc accumulates one run (a setting at one σ): its score and examples
// of the sessions that break an assertion.
type runAcc struct {
	score                           Score
	overExact, exactWrong, malforms []string
}

func (a *runAcc) merge(b runAcc) {
	a.score.Merge(b.score)
	a.overExact = appendCapped(a.overExact, b.overExact...)
	a.exactWrong = appendCapped(a.exactWrong, b.exactWrong...)
	a.malforms = appendCapped(a.malforms, b.malforms...)
}

func appendCapped(dst []string, src ...string) []string {
	for _, s := range src {
		if len(dst) < maxExamples {
			dst = append(dst, s)
		}
	}
	return dst
}

// runIndex is the position of (setting k, σ index si) among the runs.
func runIndex(k, si int) int { return k*len(sigmas) + si }

// planogramOf draws planogram i.
func planogramOf(i int) Planogram {
	return NewPlanogram(rand.New(rand.NewPCG(planogramSeed, uint64(i))))
}

// sessionOf draws session j of planogram p (number i).
func sessionOf(p Planogram, i, j int, sigma float64, twoCell bool) Session {
	return p.Session(rand.New(rand.NewPCG(sessionSeed, uint64(i)<<32|uint64(j))), sigma, twoCell)
}

// playPlanogram plays sessions sessions of planogram i at every σ under
// every setting and returns one runAcc per run.
func playPlanogram(i, sessions int, settings []setting) []runAcc {
	p := planogramOf(i)
	acc := make([]runAcc, len(settings)*len(sigmas))
	for si, sigma := range sigmas {
		for j := range sessions {
			var drawn [2]*Session // one cell, two cells: drawn once, shared by settings
			var post []FrontierBasket
			for k, st := range settings {
				c := 0
				if st.twoCell {
					c = 1
				}
				if drawn[c] == nil {
					s := sessionOf(p, i, j, sigma, st.twoCell)
					drawn[c] = &s
				}
				s := *drawn[c]
				r := st.judge(p, s, sigma, &post)
				acc[runIndex(k, si)].record(s, r, fmt.Sprintf("planogram %d session %d σ=%g", i, j, sigma))
			}
		}
	}
	return acc
}

// record scores one session and keeps it as an example if it breaks an
// assertion.
func (a *runAcc) record(s Session, r infer.Result, where string) {
	o := a.score.Add(s, r)
	if err := wellFormed(r); err != nil {
		a.malforms = appendCapped(a.malforms, where+": "+err.Error())
	}
	if o.Exact && o.ChargedFen > s.TrueFen {
		a.overExact = appendCapped(a.overExact, describe(where, s, r, o))
	}
	if o.Exact && !o.Right {
		a.exactWrong = appendCapped(a.exactWrong, describe(where, s, r, o))
	}
}

// describe is one session and its result, for a failure message.
func describe(where string, s Session, r infer.Result, o Outcome) string {
	return fmt.Sprintf("%s (%s): bought %v = %d fen; charged %s %v = %d fen, posterior %.4g, alternatives %d",
		where, s.Class, s.Lines, s.TrueFen, r.Status, r.Lines, o.ChargedFen, r.Posterior, len(r.Alternatives))
}

// wellFormed checks a Result's shape: a known status, lines sorted by
// shelf then SKU without repeats, every Qty > 0, Posterior in [0, 1].
func wellFormed(r infer.Result) error {
	switch r.Status {
	case infer.StatusExact, infer.StatusAmbiguous, infer.StatusEmpty:
	default:
		return fmt.Errorf("status %q", r.Status)
	}
	for i, l := range r.Lines {
		if l.Qty <= 0 {
			return fmt.Errorf("line %+v: qty ≤ 0", l)
		}
		if i > 0 && compareLines(r.Lines[i-1], l) >= 0 {
			return fmt.Errorf("lines not sorted: %+v before %+v", r.Lines[i-1], l)
		}
	}
	if math.IsNaN(r.Posterior) || r.Posterior < 0 || r.Posterior > 1 {
		return fmt.Errorf("posterior %g", r.Posterior)
	}
	return nil
}

// evaluate plays planograms × sessions at every σ under every setting on
// workers goroutines fed planogram indices over a channel; it returns one
// runAcc per run, in runIndex order. It returns only once every worker
// has stopped.
func evaluate(planograms, sessions, workers int, settings []setting) []runAcc {
	per := make([][]runAcc, planograms)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range idx {
				per[i] = playPlanogram(i, sessions, settings)
			}
		})
	}
	for i := range planograms {
		idx <- i
	}
	close(idx)
	wg.Wait()

	out := make([]runAcc, len(settings)*len(sigmas))
	for _, acc := range per {
		for r := range out {
			out[r].merge(acc[r])
		}
	}
	return out
}

// runs turns accumulators into the report's runs.
func runs(acc []runAcc, settings []setting) []Run {
	var out []Run
	for k, st := range settings {
		for si, sigma := range sigmas {
			a := acc[runIndex(k, si)]
			ex := slices.Clone(a.overExact)
			for _, e := range a.exactWrong {
				if !slices.Contains(ex, e) {
					ex = appendCapped(ex, e)
				}
			}
			out = append(out, Run{Setting: st.name, Sigma: sigma, Score: a.score, Examples: ex})
		}
	}
	return out
}

// MaxExactWrongPct is the share of sessions that may be reported exact
// but charged wrongly.
const MaxExactWrongPct = 0.5

// TestAccuracy is the quick gate in `make test`: 100 planograms × 20
// sessions per σ under the default options. It asserts only what must
// hold in the real world: no session reported exact is overcharged, at
// most MaxExactWrongPct % are exact but wrong, and every Result is well
// formed.
func TestAccuracy(t *testing.T) {
	planograms, sessions := 100, 20
	if testing.Short() {
		planograms = 25
	}
	settings := []setting{settingDefault}
	acc := evaluate(planograms, sessions, runtime.GOMAXPROCS(0), settings)
	for si, sigma := range sigmas {
		a := acc[runIndex(0, si)]
		t.Run(fmt.Sprintf("sigma=%gg", sigma), func(t *testing.T) {
			tot := a.score.Total()
			t.Logf("default options, σ = %g g, %d sessions; ordinary purchases %.2f %%\n%s",
				sigma, tot.Sessions, a.score.Ordinary(), a.score.Table())
			checkRun(t, a)
		})
	}
}

// checkRun asserts a run's invariants.
func checkRun(t *testing.T, a runAcc) {
	t.Helper()
	tot := a.score.Total()
	if tot.OverExact > 0 {
		t.Errorf("%d sessions reported exact were overcharged, e.g.\n%s", tot.OverExact, lines(a.overExact))
	}
	if p := tot.Pct(tot.ExactWrong); p > MaxExactWrongPct {
		t.Errorf("%.2f %% of sessions (%d) exact but wrong, limit %.1f %%, e.g.\n%s",
			p, tot.ExactWrong, MaxExactWrongPct, lines(a.exactWrong))
	}
	if len(a.malforms) > 0 {
		t.Errorf("malformed results, e.g.\n%s", lines(a.malforms))
	}
}

func lines(ss []string) string {
	var out string
	for _, s := range ss {
		out += "  " + s + "\n"
	}
	return out
}

// Environment of the full report.
const (
	envReport     = "BANGFU_ACCURACY"
	envPlanograms = "BANGFU_ACCURACY_PLANOGRAMS"
	envSessions   = "BANGFU_ACCURACY_SESSIONS"
	envOut        = "BANGFU_ACCURACY_OUT"
)

// TestAccuracyReport is the full report (make accuracy): by default 1,000
// planograms × 100 sessions at each σ under every setting, in parallel
// over GOMAXPROCS workers, then a timing pass. It prints the markdown
// tables and writes them to $BANGFU_ACCURACY_OUT when set. It fails only
// on malformed results: the numbers are for people to read.
func TestAccuracyReport(t *testing.T) {
	if os.Getenv(envReport) != "1" {
		t.Skipf("the full accuracy report runs only with %s=1 (make accuracy); %s and %s override its size, %s names a file for the tables",
			envReport, envPlanograms, envSessions, envOut)
	}
	planograms := envInt(t, envPlanograms, 1000)
	sessions := envInt(t, envSessions, 100)
	workers := runtime.GOMAXPROCS(0)

	start := time.Now()
	acc := evaluate(planograms, sessions, workers, allSettings)
	took := time.Since(start)
	rep := Report{
		Title:                "infer.Infer on the simulated world",
		Planograms:           planograms,
		SessionsPerPlanogram: sessions,
		Notes:                reportNotes(took, workers),
		Runs:                 runs(acc, allSettings),
		Latency:              latencyPass(allSettings),
	}
	md := rep.Markdown()
	fmt.Println(md)
	if out := os.Getenv(envOut); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for r, a := range acc {
		if len(a.malforms) > 0 {
			t.Errorf("run %d: malformed results, e.g.\n%s", r, lines(a.malforms))
		}
	}
}

func reportNotes(took time.Duration, workers int) []string {
	return []string{
		"Settings: **default** (nil Options), **revenue-first** (`RevenueFirst: true`) and **oracle** " +
			"(`OracleOptions`: the world's true rates where Options has a knob) on one load cell per shelf; " +
			"**two-cell** (nil Options) on two load cells per shelf with lanes; **frontier** and **frontier, revenue-first**: " +
			"not infer.Infer but the exact posterior under the world's own process (`Planogram.Frontier`, one cell per shelf), " +
			fmt.Sprintf("decided by the default rule (exact iff posterior ≥ %g and no cheaper basket ≥ %g) or by the posterior alone — ",
				infer.DefaultConfidence, infer.DefaultCheaperBound) +
			"the best any model can do on this world. " +
			"**default, no lift counts** and **default, no touch evidence** hide part of the touch watch's evidence from the default model. " +
			"The shoppers and units are the same in every run; only the readings differ.",
		fmt.Sprintf("Seeds: planogram i from PCG(%d, i), session j from PCG(%d, i<<32|j). "+
			"Accuracy pass: %s on %d workers.", planogramSeed, sessionSeed, took.Round(time.Second), workers),
		"exact & right: status exact or empty and the charged units per SKU equal the units bought. " +
			"flagged: ambiguous. overcharged: charged fen > owed fen, any status; \"n exact\": how many of them were reported exact.",
	}
}

// Timing pass sizes: the first latencyPlanograms six-shelf planograms,
// latencySessions sessions each, one goroutine.
const (
	latencyPlanograms = 100
	latencySessions   = 20
)

// latencyPass times infer.Infer per session, alone on one goroutine, on
// six-shelf planograms, for every setting and σ.
func latencyPass(settings []setting) []Latency {
	var out []Latency
	plans := sixShelf(latencyPlanograms)
	for _, st := range settings {
		if st.frontier != nil {
			continue // the yardstick, not the cabinet's code
		}
		for _, sigma := range sigmas {
			var ds []time.Duration
			for _, pi := range plans {
				for j := range latencySessions {
					s := sessionOf(pi.p, pi.i, j, sigma, st.twoCell)
					opt := st.options(pi.p)
					t0 := time.Now()
					infer.Infer(s.Shelves, s.Cabinet, opt)
					ds = append(ds, time.Since(t0))
				}
			}
			out = append(out, NewLatency(st.name, sigma, ds))
		}
	}
	return out
}

// numbered is a planogram with its number.
type numbered struct {
	i int
	p Planogram
}

// sixShelf is the first n planograms with six shelves.
func sixShelf(n int) []numbered {
	var out []numbered
	for i := 0; len(out) < n; i++ {
		if p := planogramOf(i); len(p.Shelves) == 6 {
			out = append(out, numbered{i, p})
		}
	}
	return out
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkInfer times infer.Infer per session on pre-drawn sessions of
// six-shelf planograms, under default options, at each σ on one cell and
// two; p50_ms and p99_ms are the per-call quantiles.
func BenchmarkInfer(b *testing.B) {
	plans := sixShelf(50)
	for _, twoCell := range []bool{false, true} {
		for _, sigma := range sigmas {
			var ss []Session
			for _, pi := range plans {
				for j := range 10 {
					ss = append(ss, sessionOf(pi.p, pi.i, j, sigma, twoCell))
				}
			}
			name := fmt.Sprintf("cells=%d/sigma=%gg", 1+boolInt(twoCell), sigma)
			b.Run(name, func(b *testing.B) { benchSessions(b, ss) })
		}
	}
}

func benchSessions(b *testing.B, ss []Session) {
	ds := make([]time.Duration, 0, 4096)
	for i := 0; b.Loop(); i++ {
		s := ss[i%len(ss)]
		t0 := time.Now()
		infer.Infer(s.Shelves, s.Cabinet, nil)
		ds = append(ds, time.Since(t0))
	}
	// After the loop: b.Loop resets the timer, which drops metrics
	// reported before it.
	l := NewLatency("", 0, ds)
	b.ReportMetric(float64(l.P50)/float64(time.Millisecond), "p50_ms")
	b.ReportMetric(float64(l.P99)/float64(time.Millisecond), "p99_ms")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestWellFormedCatches checks that the shape check rejects what it must.
func TestWellFormedCatches(t *testing.T) {
	good := infer.Result{Status: infer.StatusExact, Posterior: 1,
		Lines: []infer.Line{{Shelf: 1, SKU: "A", Qty: 1}, {Shelf: 1, SKU: "B", Qty: 2}, {Shelf: 2, SKU: "A", Qty: 1}}}
	if err := wellFormed(good); err != nil {
		t.Fatalf("good result rejected: %v", err)
	}
	bad := []infer.Result{
		{Status: "maybe"},
		{Status: infer.StatusExact, Lines: []infer.Line{{Shelf: 1, SKU: "A", Qty: 0}}},
		{Status: infer.StatusExact, Lines: []infer.Line{{Shelf: 2, SKU: "A", Qty: 1}, {Shelf: 1, SKU: "A", Qty: 1}}},
		{Status: infer.StatusExact, Lines: slices.Repeat([]infer.Line{{Shelf: 1, SKU: "A", Qty: 1}}, 2)},
		{Status: infer.StatusAmbiguous, Posterior: 1.5},
		{Status: infer.StatusAmbiguous, Posterior: math.NaN()},
	}
	for i, r := range bad {
		if wellFormed(r) == nil {
			t.Errorf("bad result %d accepted: %+v", i, r)
		}
	}
}
