package firmware

import (
	"math"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
)

// The touch watch: while a shopping session runs, every tick compares each
// shelf's filtered weight with its "before" weight. A shelf whose weight
// never left it by foreign_min_g in two successive readings, and whose
// scale reported throughout, is Still: basket inference then knows nothing was
// lifted from it or set down on it (infer.Shelf.Still), which rules out
// explaining the other shelves by a unit moved onto this one and a
// look-alike taken. A lift always moves a shelf by a unit's weight; the
// filter's window mean lets a passing jolt through only in part, and the
// second reading rules out a single spike.
//
// The watch lives in memory. A session recovered after a restart has none,
// and all its shelves count as touched: no evidence, never false evidence.

// touchGap is the longest a shelf's scale may go without a new sample
// before the watch no longer vouches for it.
const touchGap = time.Second

// touchWatch is one session's watch (Run goroutine only).
type touchWatch struct {
	session string
	shelves map[int]*shelfWatch
}

type shelfWatch struct {
	before  float64
	last    time.Time // newest sample seen
	over    int       // successive readings beyond the threshold
	touched bool
}

// watchTouches starts the watch for session s from its "before" weights.
func (d *Device) watchTouches(s *ledger.Session) {
	w := &touchWatch{session: s.ID, shelves: map[int]*shelfWatch{}}
	for _, b := range s.Before {
		w.shelves[b.Shelf] = &shelfWatch{before: b.Grams, last: b.At}
	}
	d.touch = w
}

// sampleTouches feeds one tick's readings to the watch of the running
// session.
func (d *Device) sampleTouches() {
	w := d.touch
	if w == nil || d.sess == nil || d.sess.ID != w.session {
		return
	}
	for n, sw := range w.shelves {
		if sw.touched {
			continue
		}
		r, ok := d.readings[n]
		switch {
		case d.readErr[n] != nil || !ok || r.At.Sub(sw.last) > touchGap:
			sw.touched = true // not watched throughout: no evidence
		case r.At.After(sw.last):
			sw.last = r.At
			if math.Abs(r.Grams-sw.before) > d.cfg.ForeignMinG {
				sw.over++
				sw.touched = sw.over >= 2
			} else {
				sw.over = 0
			}
		}
	}
}

// still reports whether shelf n stayed still throughout session id up to
// now, as far as this run watched it.
func (d *Device) still(id string, n int, now time.Time) bool {
	w := d.touch
	if w == nil || w.session != id {
		return false
	}
	sw, ok := w.shelves[n]
	return ok && !sw.touched && sw.over == 0 && now.Sub(sw.last) <= touchGap
}
