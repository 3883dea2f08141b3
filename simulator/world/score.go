package world

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/infer"
)

// Outcome is how infer.Infer did on one session.
type Outcome struct {
	// Exact reports status exact or empty: the sale is charged without
	// review.
	Exact bool
	// Right reports that the charged units per SKU equal the units bought
	// per SKU (the shelf a unit is charged to does not matter).
	Right bool
	// ChargedFen is Σ Qty·price over the result's lines, at the world's
	// prices.
	ChargedFen int64
}

// Judge scores a result against the session's truth.
func Judge(s Session, r infer.Result) Outcome {
	charged := map[string]int{}
	var fen int64
	for _, l := range r.Lines {
		charged[l.SKU] += l.Qty
		fen += int64(l.Qty) * s.Prices[l.SKU]
	}
	return Outcome{
		Exact:      r.Status == infer.StatusExact || r.Status == infer.StatusEmpty,
		Right:      maps.Equal(charged, s.Taken),
		ChargedFen: fen,
	}
}

// Tally counts outcomes.
type Tally struct {
	Sessions int
	// ExactRight: exact (or empty) and right.
	ExactRight int
	// Flagged: ambiguous, sent to review; FlaggedRight of them charged
	// the right units all the same.
	Flagged, FlaggedRight int
	// ExactWrong: exact (or empty) but not right.
	ExactWrong int
	// Over: charged more fen than the truth, whatever the status;
	// OverExact of them were reported exact.
	Over, OverExact int
	// Under: charged fewer fen than the truth.
	Under int
	// ChargedFen and TrueFen are the fen charged and really owed.
	ChargedFen, TrueFen int64
}

// add counts one session.
func (t *Tally) add(o Outcome, trueFen int64) {
	t.Sessions++
	t.ChargedFen += o.ChargedFen
	t.TrueFen += trueFen
	switch {
	case o.Exact && o.Right:
		t.ExactRight++
	case o.Exact:
		t.ExactWrong++
	default:
		t.Flagged++
		if o.Right {
			t.FlaggedRight++
		}
	}
	if o.ChargedFen > trueFen {
		t.Over++
		if o.Exact {
			t.OverExact++
		}
	}
	if o.ChargedFen < trueFen {
		t.Under++
	}
}

// merge adds u's counts.
func (t *Tally) merge(u Tally) {
	t.Sessions += u.Sessions
	t.ExactRight += u.ExactRight
	t.Flagged += u.Flagged
	t.FlaggedRight += u.FlaggedRight
	t.ExactWrong += u.ExactWrong
	t.Over += u.Over
	t.OverExact += u.OverExact
	t.Under += u.Under
	t.ChargedFen += u.ChargedFen
	t.TrueFen += u.TrueFen
}

// Pct is n as a percentage of the tally's sessions.
func (t Tally) Pct(n int) float64 {
	if t.Sessions == 0 {
		return 0
	}
	return 100 * float64(n) / float64(t.Sessions)
}

// ExactRightShare is the percentage of the sales reported exact (or
// empty) that charged the right units: the share a shopper and a supplier
// can take on trust.
func (t Tally) ExactRightShare() float64 {
	n := t.ExactRight + t.ExactWrong
	if n == 0 {
		return 100
	}
	return 100 * float64(t.ExactRight) / float64(n)
}

// RevenuePct is the fen charged as a percentage of the fen owed.
func (t Tally) RevenuePct() float64 {
	if t.TrueFen == 0 {
		return 0
	}
	return 100 * float64(t.ChargedFen) / float64(t.TrueFen)
}

// Score is the tallies of one setting by shopper class.
type Score struct {
	ByClass [NumClasses]Tally
	// Calib counts, per posterior bin (CalibBins), sessions whose most
	// probable basket had that posterior, and how many of those baskets
	// were right: a calibrated model that says 0.999 is right 999 times
	// in 1,000.
	Calib [len(CalibBins)]struct{ N, Right int }
}

// CalibBins are the lower edges of the calibration table's posterior bins.
var CalibBins = [...]float64{0, 0.5, 0.9, 0.99, 0.999, 0.9999}

// Add judges r against s, counts it and returns the outcome.
func (sc *Score) Add(s Session, r infer.Result) Outcome {
	o := Judge(s, r)
	sc.ByClass[s.Class].add(o, s.TrueFen)
	// The most probable basket: the charged one, or the first
	// alternative when a cheaper basket was charged instead.
	lines, post := r.Lines, r.Posterior
	if len(r.Alternatives) > 0 && r.Alternatives[0].Posterior > post {
		lines, post = r.Alternatives[0].Lines, r.Alternatives[0].Posterior
	}
	bin := 0
	for i, lo := range CalibBins {
		if post >= lo {
			bin = i
		}
	}
	sc.Calib[bin].N++
	if sameUnits(lines, s.Taken) {
		sc.Calib[bin].Right++
	}
	return o
}

// sameUnits reports whether lines charge exactly the units taken, per SKU.
func sameUnits(lines []infer.Line, taken map[string]int) bool {
	got := map[string]int{}
	for _, l := range lines {
		got[l.SKU] += l.Qty
	}
	if len(got) != len(taken) {
		return false
	}
	for k, n := range taken {
		if got[k] != n {
			return false
		}
	}
	return true
}

// Merge adds another score's counts.
func (sc *Score) Merge(o Score) {
	for c := range sc.ByClass {
		sc.ByClass[c].merge(o.ByClass[c])
	}
	for i := range sc.Calib {
		sc.Calib[i].N += o.Calib[i].N
		sc.Calib[i].Right += o.Calib[i].Right
	}
}

// CalibTable is the calibration as a markdown table.
func (sc Score) CalibTable() string {
	var b strings.Builder
	b.WriteString("| posterior of the most probable basket | sessions | that basket right |\n|---|---:|---:|\n")
	for i, c := range sc.Calib {
		hi := "1"
		if i+1 < len(CalibBins) {
			hi = fmt.Sprint(CalibBins[i+1])
		}
		right := "—"
		if c.N > 0 {
			right = fmt.Sprintf("%.3f %%", 100*float64(c.Right)/float64(c.N))
		}
		fmt.Fprintf(&b, "| [%g, %s) | %d | %s |\n", CalibBins[i], hi, c.N, right)
	}
	return b.String()
}

// Total is the tally over all classes.
func (sc Score) Total() Tally {
	var t Tally
	for _, c := range sc.ByClass {
		t.merge(c)
	}
	return t
}

// Ordinary is the "ordinary purchases" metric: the ordinary class's
// exact-and-right share, in percent.
func (sc Score) Ordinary() float64 {
	o := sc.ByClass[Ordinary]
	return o.Pct(o.ExactRight)
}

// Table is the score as a markdown table: one row per class and one for
// all sessions.
func (sc Score) Table() string {
	var b strings.Builder
	b.WriteString("| class | sessions | exact & right | flagged | flagged, charge right | exact but wrong | overcharged, of them exact | undercharged | revenue charged/true |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for c, t := range sc.ByClass {
		writeRow(&b, Class(c).String(), t)
	}
	writeRow(&b, "**all**", sc.Total())
	return b.String()
}

func writeRow(b *strings.Builder, name string, t Tally) {
	rev := "—"
	if t.TrueFen > 0 {
		rev = fmt.Sprintf("%.2f %%", t.RevenuePct())
	}
	fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s, %d exact | %s | %s |\n",
		name, t.Sessions, pct(t, t.ExactRight), pct(t, t.Flagged), pct(t, t.FlaggedRight),
		count(t, t.ExactWrong), count(t, t.Over), t.OverExact, count(t, t.Under), rev)
}

// pct formats a share of sessions.
func pct(t Tally, n int) string { return fmt.Sprintf("%.2f %%", t.Pct(n)) }

// count formats a count with its share of sessions.
func count(t Tally, n int) string { return fmt.Sprintf("%d (%.2f %%)", n, t.Pct(n)) }

// Run is one setting's score at one noise level.
type Run struct {
	// Setting names the world and options, e.g. "default" or "two-cell".
	Setting string
	// Sigma is the load cells' per-sample noise σ in grams.
	Sigma float64
	Score Score
	// Examples are a few sessions worth a look (reported exact but charged
	// wrongly or more than owed), one line each.
	Examples []string
}

// Latency is the wall time of infer.Infer per session.
type Latency struct {
	Setting       string
	Sigma         float64
	Sessions      int
	P50, P99, Max time.Duration
}

// NewLatency summarises per-session durations.
func NewLatency(setting string, sigma float64, ds []time.Duration) Latency {
	s := slices.Clone(ds)
	slices.Sort(s)
	l := Latency{Setting: setting, Sigma: sigma, Sessions: len(s)}
	if len(s) > 0 {
		l.P50, l.P99, l.Max = quantile(s, 0.50), quantile(s, 0.99), s[len(s)-1]
	}
	return l
}

// quantile of sorted durations, nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Report is a whole accuracy run.
type Report struct {
	// Title heads the report.
	Title string
	// Planograms and SessionsPerPlanogram give the size of every run.
	Planograms, SessionsPerPlanogram int
	// Notes are printed under the title, one paragraph each.
	Notes []string
	Runs  []Run
	// Latency is filled by a separate timing pass (may be empty).
	Latency []Latency
}

// Markdown prints the report: a summary over runs, each run's table by
// class, and the latency table.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", r.Title)
	fmt.Fprintf(&b, "%d planograms × %d sessions = %d sessions per σ and setting.\n\n",
		r.Planograms, r.SessionsPerPlanogram, r.Planograms*r.SessionsPerPlanogram)
	for _, n := range r.Notes {
		b.WriteString(n + "\n\n")
	}
	b.WriteString(r.summary())
	for _, run := range r.Runs {
		fmt.Fprintf(&b, "\n### %s, σ = %g g\n\n", run.Setting, run.Sigma)
		fmt.Fprintf(&b, "Ordinary purchases exact and right: %.2f %%.\n\n", run.Score.Ordinary())
		if t := run.Score.Total(); t.ExactRight+t.ExactWrong > 0 {
			fmt.Fprintf(&b, "Sales reported exact (or empty) that were right: %.4f %% (%d wrong of %d).\n\n",
				t.ExactRightShare(), t.ExactWrong, t.ExactRight+t.ExactWrong)
		}
		b.WriteString(run.Score.Table())
		b.WriteString("\nCalibration:\n\n")
		b.WriteString(run.Score.CalibTable())
		if len(run.Examples) > 0 {
			b.WriteString("\nSessions reported exact but charged wrongly or more than owed (first few):\n\n")
			for _, e := range run.Examples {
				b.WriteString("- " + e + "\n")
			}
		}
	}
	if len(r.Latency) > 0 {
		b.WriteString("\n### Latency of infer.Infer per session\n\n")
		b.WriteString("| setting | σ | sessions | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n")
		for _, l := range r.Latency {
			fmt.Fprintf(&b, "| %s | %g g | %d | %s | %s | %s |\n", l.Setting, l.Sigma, l.Sessions, ms(l.P50), ms(l.P99), ms(l.Max))
		}
	}
	return b.String()
}

// summary is one row per run over all classes.
func (r Report) summary() string {
	var b strings.Builder
	b.WriteString("| setting | σ | sessions | ordinary purchases | exact & right | flagged | exact but wrong | overcharged, of them exact | undercharged | revenue charged/true |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		t := run.Score.Total()
		fmt.Fprintf(&b, "| %s | %g g | %d | %.2f %% | %s | %s | %s | %s, %d exact | %s | %.2f %% |\n",
			run.Setting, run.Sigma, t.Sessions, run.Score.Ordinary(), pct(t, t.ExactRight), pct(t, t.Flagged),
			count(t, t.ExactWrong), count(t, t.Over), t.OverExact, count(t, t.Under), t.RevenuePct())
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
