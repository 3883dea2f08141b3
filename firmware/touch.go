package firmware

import (
	"math"
	"time"

	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/firmware/ledger"
)

// The touch watch: while a shopping session runs, every tick compares each
// shelf's filtered weight with its "before" weight and with the lowest it
// has been in the session. Of a shelf whose scale reported throughout:
//
//   - one whose weight never held a level off the before weight by
//     foreign_min_g is Still: nothing was lifted from it or set down on it
//     (infer.Shelf.Still);
//   - one whose weight never rose by foreign_min_g above its lowest is
//     NeverRose: units may have been lifted, but nothing was set down on it
//     (infer.Shelf.NeverRose);
//   - one whose weight did rise so Rose:
//     something was set down on it, or a hand pressed on it
//     (infer.Shelf.Rose).
//
// It also counts each shelf's lifts (infer.Shelf.Lifts): the times its
// weight held a flat level below the lowest flat level before it by
// foreign_min_g. Units lifted one after the other are as many lifts; a
// handful grabbed at once, or a unit lifted while the filter still slides
// from the one before, is one. A press or a resting hand lifts nothing,
// and a unit lifted again after it was put back reaches no new low.
//
// Inference then rules out explaining the other shelves by a unit moved
// onto this one and a look-alike taken. A lift always moves a shelf by a
// unit's weight, and setting a unit down raises it, for as long as a hand
// needs to reach for the next thing. A level counts only once the weight
// has held it for touchHold: a spike, a bump or the ring of a slammed door
// swings both ways faster than that and is not mistaken for goods lifted
// or set down (and the watch goes on through the close, so the filter's
// lag never hides a last-moment set-down). A hand resting on a shelf
// looks like a rise: Rose only makes a set-down likelier (by infer's
// Options.RiseFalseP), and a rise on every shelf at once is a jolt, which
// inference ignores.
//
// The watch lives in memory. A session recovered after a restart has none,
// and all its shelves count as touched: no evidence, never false evidence.

// touchGap is the longest a shelf's scale may go without a new sample
// before the watch no longer vouches for it.
const touchGap = time.Second

// touchHold is how long the weight must hold a level for the watch to
// count it: longer than a shelf's ring (a few Hz and up) swings one way,
// shorter than a shopper's hand rests on a unit it sets down.
const touchHold = 200 * time.Millisecond

// touchWatch is one session's watch (Run goroutine only).
type touchWatch struct {
	session string
	shelves map[int]*shelfWatch
}

type shelfWatch struct {
	before, low float64   // the before weight; the lowest level held since
	last        time.Time // newest sample seen
	recent      []sample  // the readings of the last touchHold, oldest first
	touched     bool      // held a level off the before weight (or not watched throughout)
	rose        bool      // held a level above low (or not watched throughout)
	lost        bool      // not watched throughout: no evidence
	flatLow     float64   // the lowest flat level held since before
	lifts       int       // flat levels held below flatLow by the threshold
}

// sample is one filtered reading the watch saw.
type sample struct {
	at time.Time
	g  float64
}

// add records reading g at at and returns the range of the readings of
// the last touchHold, held reporting whether they span it: only then is
// every level in [lo, hi] one the weight held.
func (sw *shelfWatch) add(at time.Time, g float64) (lo, hi float64, held bool) {
	sw.recent = append(sw.recent, sample{at, g})
	// Keep the newest reading at or before at−touchHold: it opens the span.
	cut := 0
	for cut+1 < len(sw.recent) && !sw.recent[cut+1].at.After(at.Add(-touchHold)) {
		cut++
	}
	sw.recent = append(sw.recent[:0], sw.recent[cut:]...)
	lo, hi = g, g
	for _, s := range sw.recent {
		lo, hi = math.Min(lo, s.g), math.Max(hi, s.g)
	}
	return lo, hi, at.Sub(sw.recent[0].at) >= touchHold
}

// watchTouches starts the watch for session s from its "before" weights.
func (d *Device) watchTouches(s *ledger.Session) {
	w := &touchWatch{session: s.ID, shelves: map[int]*shelfWatch{}}
	for _, b := range s.Before {
		w.shelves[b.Shelf] = &shelfWatch{before: b.Grams, low: b.Grams, flatLow: b.Grams, last: b.At}
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
		if sw.lost {
			continue // no evidence, and nothing more to learn
		}
		r, ok := d.readings[n]
		switch {
		case d.readErr[n] != nil || !ok || r.At.Sub(sw.last) > touchGap:
			sw.touched, sw.rose, sw.lost = true, true, true // not watched throughout: no evidence
		case r.At.After(sw.last):
			sw.see(r.At, r.Grams, d.cfg.ForeignMinG)
		}
	}
}

// see takes one new reading g at at, with the touch threshold th.
func (sw *shelfWatch) see(at time.Time, g, th float64) {
	sw.last = at
	lo, hi, held := sw.add(at, g)
	if !held {
		return
	}
	sw.touched = sw.touched || lo > sw.before+th || hi < sw.before-th
	sw.rose = sw.rose || lo > sw.low+th
	sw.touched = sw.touched || sw.rose
	sw.low = math.Min(sw.low, hi)
	if hi-lo <= th { // a flat level, not the slide of a filter or a ring
		if hi < sw.flatLow-th {
			sw.lifts++
		}
		sw.flatLow = math.Min(sw.flatLow, hi)
	}
}

// pending reports that the last touchHold's readings already leave the
// before weight (off) or rise above the lowest level (up) without having
// held it long: the start of a change the watch cannot yet vouch against.
func (sw *shelfWatch) pending(th float64) (off, up bool) {
	for _, s := range sw.recent[1:] {
		off = off || math.Abs(s.g-sw.before) > th
		up = up || s.g-sw.low > th
	}
	return off, up
}

// watched sets in's touch evidence from what the watch saw of shelf n in
// session id up to now: still, never rose or rose, and the lifts. It
// leaves in's evidence unset (no evidence) when this run did not watch
// the shelf throughout.
func (d *Device) watched(id string, n int, now time.Time, in *infer.Shelf) {
	w := d.touch
	if w == nil || w.session != id {
		return
	}
	sw, ok := w.shelves[n]
	if !ok || sw.lost || now.Sub(sw.last) > touchGap {
		return
	}
	th := d.cfg.ForeignMinG
	off, up, down := false, false, false
	if len(sw.recent) > 1 {
		off, up = sw.pending(th)
		for _, s := range sw.recent[1:] {
			down = down || s.g < sw.flatLow-th // a lift may be under way
		}
	}
	in.NeverRose = !sw.rose && !up
	in.Still = in.NeverRose && !sw.touched && !off
	in.Rose = sw.rose
	in.Lifts, in.LiftsKnown = sw.lifts, !down
}
