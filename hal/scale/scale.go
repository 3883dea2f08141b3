// Package scale turns a load-cell amplifier's raw counts into calibrated,
// filtered grams with a "settled" judgement and fault detection. It is shared
// by the real HX711 drivers and the simulator, so both judge a shelf the same
// way.
//
// scale owns the filter window, the calibration arithmetic and the fault
// rules (saturation, missing data). It must not touch hardware (drivers
// implement hal.RawScale), store calibration (the firmware keeps it in its
// ledger) or make policy decisions about what a weight change means.
//
// # Settled
//
// A reading is settled when the window is full, the samples' standard
// deviation is at most Opts.MaxStdG, and the mean of the window's first half
// differs from the mean of its second half by at most
//
//	3·s·sqrt(4/N) + 0.5 g
//
// where s is the pooled standard deviation within the two halves. The
// within-half spread is used, not the whole window's, because a trend inflates
// the whole window's spread by at least as much as it separates the halves:
// with the whole-window spread the test could never fail for N ≤ 10.
package scale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/bangfu/cabinet/hal"
)

// Raw values a 24-bit HX711 reports when its input is out of range.
const (
	RawMax int32 = 0x7FFFFF  // positive full scale
	RawMin int32 = -0x800000 // negative full scale
)

// Errors Reading wraps, together with hal.ErrFault.
var (
	// ErrSaturated means the newest sample was at the amplifier's full scale:
	// the cell is overloaded, broken or miswired.
	ErrSaturated = errors.New("scale: load cell saturated")
	// ErrNoData means no sample arrived for longer than Opts.NoDataAfter.
	ErrNoData = errors.New("scale: no data")
)

// Calibration maps raw counts to grams: grams = (raw − Offset) / CountsPerGram.
type Calibration struct {
	Offset        int32   // raw counts at zero load
	CountsPerGram float64 // may be negative when the cell is wired inverted
}

// Validate reports whether the calibration can convert counts to grams.
func (c Calibration) Validate() error {
	if c.CountsPerGram == 0 || math.IsNaN(c.CountsPerGram) || math.IsInf(c.CountsPerGram, 0) {
		return fmt.Errorf("scale: counts per gram %v is not a usable factor", c.CountsPerGram)
	}
	return nil
}

// Grams converts a raw count (or a mean of counts) to grams.
func (c Calibration) Grams(raw float64) float64 {
	return (raw - float64(c.Offset)) / c.CountsPerGram
}

// Opts configures a Filter. Zero fields take the values of DefaultOpts.
type Opts struct {
	// Window is the number of samples in the filter window (2…4096).
	Window int
	// MaxStdG is the largest sample standard deviation, in grams, that still
	// counts as settled.
	MaxStdG float64
	// NoDataAfter is how long without a sample (a dead chip, repeated read
	// errors) before Reading fails with ErrNoData.
	NoDataAfter time.Duration
	// RetryDelay is how long Run waits after a failed read before trying
	// again, so a driver that fails at once does not spin.
	RetryDelay time.Duration
	// Clock stamps samples in Run and judges missing data in Reading.
	Clock func() time.Time
	// After times Run's wait after a failed read (default time.After):
	// the same clock as Clock, so that a test moving a fake clock moves
	// the retries too.
	After func(d time.Duration) <-chan time.Time
	// Logger receives change-only messages (reads failing, recovered,
	// saturated).
	Logger *slog.Logger
}

// DefaultOpts are the values zero fields of Opts fall back to.
var DefaultOpts = Opts{
	Window:      8,
	MaxStdG:     5,
	NoDataAfter: 2 * time.Second,
	RetryDelay:  100 * time.Millisecond,
}

const maxWindow = 4096

// Filter is one shelf's scale: a window over calibrated samples. It
// implements hal.Scale. All methods are safe for concurrent use.
type Filter struct {
	raw         hal.RawScale
	window      int
	maxStdG     float64
	noDataAfter time.Duration
	retryDelay  time.Duration
	clock       func() time.Time
	after       func(time.Duration) <-chan time.Time
	log         *slog.Logger

	mu        sync.Mutex
	cal       Calibration
	buf       []int32     // ring of raw samples, newest at (head−1) mod window
	at        []time.Time // when each sample in buf was taken
	head, n   int
	lastAt    time.Time // newest sample of any kind, or construction time
	saturated bool
	lastErr   error // newest ReadRaw error, for the ErrNoData message
	running   bool

	// A hold (Hold, Release) stops sampling while the hardware vouches
	// that the load does not move: held is non-nil while it lasts (Release
	// closes it), vouched is when the last hold ended.
	held    chan struct{}
	vouched time.Time
}

// New returns a Filter over raw with calibration cal. o may be nil.
func New(raw hal.RawScale, cal Calibration, o *Opts) (*Filter, error) {
	if raw == nil {
		return nil, errors.New("scale: nil raw scale")
	}
	if err := cal.Validate(); err != nil {
		return nil, err
	}
	opts := DefaultOpts
	if o != nil {
		if o.Window < 0 || o.Window == 1 || o.Window > maxWindow {
			return nil, fmt.Errorf("scale: window %d outside 2…%d", o.Window, maxWindow)
		}
		if o.MaxStdG < 0 || math.IsNaN(o.MaxStdG) {
			return nil, fmt.Errorf("scale: max std %v g is not usable", o.MaxStdG)
		}
		if o.NoDataAfter < 0 || o.RetryDelay < 0 {
			return nil, errors.New("scale: negative durations in options")
		}
		if o.Window != 0 {
			opts.Window = o.Window
		}
		if o.MaxStdG != 0 {
			opts.MaxStdG = o.MaxStdG
		}
		if o.NoDataAfter != 0 {
			opts.NoDataAfter = o.NoDataAfter
		}
		if o.RetryDelay != 0 {
			opts.RetryDelay = o.RetryDelay
		}
		opts.Clock = o.Clock
		opts.After = o.After
		opts.Logger = o.Logger
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Filter{
		raw:         raw,
		window:      opts.Window,
		maxStdG:     opts.MaxStdG,
		noDataAfter: opts.NoDataAfter,
		retryDelay:  opts.RetryDelay,
		clock:       opts.Clock,
		after:       opts.After,
		cal:         cal,
		buf:         make([]int32, opts.Window),
		at:          make([]time.Time, opts.Window),
	}
	f.log = opts.Logger.With("scale", f.String())
	// A fresh filter gets NoDataAfter of grace before missing data is a fault.
	f.lastAt = f.clock()
	return f, nil
}

// String names the scale after its amplifier.
func (f *Filter) String() string { return f.raw.String() }

// Calibration returns the calibration in use.
func (f *Filter) Calibration() Calibration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cal
}

// SetCalibration replaces the calibration. The window keeps raw counts, so
// the next Reading already uses the new calibration.
func (f *Filter) SetCalibration(cal Calibration) error {
	if err := cal.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cal = cal
	return nil
}

// Run reads samples from the raw scale and feeds them to the window until
// ctx ends, then returns nil. Read errors are retried after Opts.RetryDelay;
// if they last longer than Opts.NoDataAfter, Reading reports ErrNoData.
func (f *Filter) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.running {
		f.mu.Unlock()
		return fmt.Errorf("scale: %s: Run already running", f)
	}
	f.running = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running = false
		f.mu.Unlock()
	}()

	failing := false
	for ctx.Err() == nil {
		f.mu.Lock()
		held := f.held
		f.mu.Unlock()
		if held != nil {
			select {
			case <-ctx.Done():
			case <-held:
			}
			continue
		}
		v, err := f.raw.ReadRaw(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			f.mu.Lock()
			f.lastErr = err
			f.mu.Unlock()
			if !failing {
				failing = true
				f.log.Warn("scale reads failing", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-f.after(f.retryDelay):
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if failing {
			failing = false
			f.log.Info("scale reads recovered")
		}
		f.Feed(v, f.clock())
	}
	return nil
}

// Hold stops sampling until Release, for hardware that vouches the load
// does not move meanwhile (hal.Quiet, a simulation): Run takes no sample,
// and Reading returns the window as it stands, dated now. A sample already
// being read when Hold is called is still fed.
func (f *Filter) Hold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = make(chan struct{})
	}
}

// Release ends a Hold: the window counts as vouched for up to now, and Run
// samples again at once. Without a hold it does nothing.
func (f *Filter) Release() {
	now := f.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held != nil {
		close(f.held)
		f.held = nil
		f.vouched = now
	}
}

// fresh is the newest moment the window stands for: its newest sample,
// the end of the last hold, or now while held. f.mu is held.
func (f *Filter) fresh(now time.Time) time.Time {
	if f.held != nil {
		return now
	}
	t := f.lastAt
	if f.vouched.After(t) {
		t = f.vouched
	}
	return t
}

// Restart empties the window and gives the scale a fresh NoDataAfter of
// grace, as a board does when its power comes back: the amplifier starts
// again, the samples from before the cut are no evidence, and the time
// without samples while the power was off is no fault.
func (f *Filter) Restart() {
	now := f.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.head, f.n = 0, 0
	f.lastAt, f.lastErr, f.saturated = now, nil, false
	f.vouched = time.Time{}
}

// Feed adds one raw sample taken at time at. Run calls it for every sample;
// tests call it directly. A saturated sample empties the window.
func (f *Filter) Feed(raw int32, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if at.After(f.lastAt) {
		f.lastAt = at
	}
	if raw >= RawMax || raw <= RawMin {
		if !f.saturated {
			f.log.Warn("scale saturated", "raw", raw)
		}
		f.saturated = true
		f.head, f.n = 0, 0
		return
	}
	if f.saturated {
		f.saturated = false
		f.log.Info("scale no longer saturated")
	}
	f.lastErr = nil
	f.buf[f.head] = raw
	f.at[f.head] = at.UTC()
	f.head = (f.head + 1) % f.window
	if f.n < f.window {
		f.n++
	}
}

// Reading returns the filtered weight. Before the first sample it returns a
// Reading with Samples 0 and no error; it fails with an error wrapping
// hal.ErrFault and ErrNoData when no sample came for Opts.NoDataAfter, or
// hal.ErrFault and ErrSaturated while the newest sample is saturated.
func (f *Filter) Reading() (hal.Reading, error) {
	now := f.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if gap := now.Sub(f.fresh(now)); gap > f.noDataAfter {
		if f.lastErr != nil {
			return hal.Reading{}, fmt.Errorf("scale: %s: no sample for %v (last error: %v): %w: %w",
				f, gap.Round(time.Millisecond), f.lastErr, ErrNoData, hal.ErrFault)
		}
		return hal.Reading{}, fmt.Errorf("scale: %s: no sample for %v: %w: %w",
			f, gap.Round(time.Millisecond), ErrNoData, hal.ErrFault)
	}
	if f.saturated {
		return hal.Reading{}, fmt.Errorf("scale: %s: %w: %w", f, ErrSaturated, hal.ErrFault)
	}
	if f.n == 0 {
		return hal.Reading{}, nil
	}
	r := f.reading()
	if t := f.fresh(now); t.After(r.At) {
		r.At = t.UTC() // vouched for by a hold
	}
	return r, nil
}

// reading computes the statistics of the window; f.mu is held.
func (f *Filter) reading() hal.Reading {
	// Samples oldest first, in grams.
	g := make([]float64, f.n)
	start := (f.head - f.n + f.window) % f.window
	for i := range g {
		g[i] = f.cal.Grams(float64(f.buf[(start+i)%f.window]))
	}
	mean, ss := meanSS(g)
	std := 0.0
	if f.n > 1 {
		std = math.Sqrt(ss / float64(f.n-1))
	}
	r := hal.Reading{
		Grams:   mean,
		NoiseG:  std,
		Samples: f.n,
		At:      f.at[(f.head-1+f.window)%f.window],
		Oldest:  f.at[start],
	}
	if f.n == f.window && std <= f.maxStdG {
		r.Settled = !trending(g)
	}
	return r
}

// trending reports whether the window's halves differ by more than the
// noise within them explains (see the package documentation).
func trending(g []float64) bool {
	h := len(g) / 2
	m1, ss1 := meanSS(g[:h])
	m2, ss2 := meanSS(g[len(g)-h:])
	pooled := 0.0
	if h > 1 {
		pooled = math.Sqrt((ss1 + ss2) / float64(2*(h-1)))
	}
	limit := 3*pooled*math.Sqrt(4/float64(len(g))) + 0.5
	return math.Abs(m1-m2) > limit
}

// meanSS returns the mean of g and the sum of squared deviations from it.
func meanSS(g []float64) (mean, ss float64) {
	for _, v := range g {
		mean += v
	}
	mean /= float64(len(g))
	for _, v := range g {
		d := v - mean
		ss += d * d
	}
	return mean, ss
}

var _ hal.Scale = (*Filter)(nil)
