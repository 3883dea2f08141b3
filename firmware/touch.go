package firmware

import (
	"math"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
)

// The touch watch: while a shopping session runs, every tick compares each
// shelf's filtered weight with its "before" weight and with the lowest it
// has been in the session. Of a shelf whose scale reported throughout:
//
//   - one whose weight never left the before weight by foreign_min_g (in
//     two successive readings) is Still: nothing was lifted from it or set
//     down on it (infer.Shelf.Still);
//   - one whose weight never rose by foreign_min_g above its lowest is
//     NeverRose: units may have been lifted, but nothing was set down on it
//     (infer.Shelf.NeverRose);
//   - one whose weight did rise so (in two successive readings) Rose:
//     something was set down on it, or a hand pressed on it
//     (infer.Shelf.Rose).
//
// Inference then rules out explaining the other shelves by a unit moved
// onto this one and a look-alike taken. A lift always moves a shelf by a
// unit's weight, and setting a unit down raises it; the filter's window
// mean lets a passing jolt through only in part, and the second reading
// rules out a single spike. A hand resting on a shelf, or a jolt, looks
// like a rise: Rose only makes a set-down likelier (by infer's
// Options.RiseFalseP), and a rise on every shelf at once is a jolt, which
// inference ignores.
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
	before, low float64   // the before weight; the lowest weight seen since
	last        time.Time // newest sample seen
	over, up    int       // successive readings beyond the threshold: off before, above low
	touched     bool      // left the before weight (or not watched throughout)
	rose        bool      // rose above low (or not watched throughout)
	lost        bool      // not watched throughout: no evidence
}

// watchTouches starts the watch for session s from its "before" weights.
func (d *Device) watchTouches(s *ledger.Session) {
	w := &touchWatch{session: s.ID, shelves: map[int]*shelfWatch{}}
	for _, b := range s.Before {
		w.shelves[b.Shelf] = &shelfWatch{before: b.Grams, low: b.Grams, last: b.At}
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
		if sw.rose {
			continue // and so touched: nothing more to learn
		}
		r, ok := d.readings[n]
		switch {
		case d.readErr[n] != nil || !ok || r.At.Sub(sw.last) > touchGap:
			sw.touched, sw.rose, sw.lost = true, true, true // not watched throughout: no evidence
		case r.At.After(sw.last):
			sw.last = r.At
			sw.touched = sw.touched || beyond(&sw.over, math.Abs(r.Grams-sw.before) > d.cfg.ForeignMinG)
			sw.rose = beyond(&sw.up, r.Grams-sw.low > d.cfg.ForeignMinG)
			sw.touched = sw.touched || sw.rose
			sw.low = math.Min(sw.low, r.Grams)
		}
	}
}

// beyond counts successive readings beyond a threshold in *n and reports
// the second.
func beyond(n *int, over bool) bool {
	if !over {
		*n = 0
		return false
	}
	*n++
	return *n >= 2
}

// watched reports what the watch saw of shelf n in session id up to now:
// still, never rose, or rose. All are false when this run did not watch
// the shelf throughout.
func (d *Device) watched(id string, n int, now time.Time) (still, neverRose, rose bool) {
	w := d.touch
	if w == nil || w.session != id {
		return false, false, false
	}
	sw, ok := w.shelves[n]
	if !ok || sw.lost || now.Sub(sw.last) > touchGap {
		return false, false, false
	}
	neverRose = !sw.rose && sw.up == 0
	return neverRose && !sw.touched && sw.over == 0, neverRose, sw.rose
}
