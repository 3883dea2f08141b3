package firmware

import (
	"math"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// shelvesWhere is the set of shelves whose evidence in sale s has the
// property f.
func shelvesWhere(s msg.Sale, f func(msg.Evidence) bool) map[int]bool {
	out := map[int]bool{}
	for _, ev := range s.Evidence {
		if f(ev) {
			out[ev.Shelf] = true
		}
	}
	return out
}

func stillShelves(s msg.Sale) map[int]bool {
	return shelvesWhere(s, func(ev msg.Evidence) bool { return ev.Still })
}

// risenShelves are the shelves not reported never-risen.
func risenShelves(s msg.Sale) map[int]bool {
	return shelvesWhere(s, func(ev msg.Evidence) bool { return !ev.NeverRose })
}

func roseShelves(s msg.Sale) map[int]bool {
	return shelvesWhere(s, func(ev msg.Evidence) bool { return ev.Rose })
}

// The cabinet watches its shelves during a session: a shelf nobody touched
// is reported still; one a unit was taken from is not, nor one where a unit
// was lifted and put back, though its weight ends where it began. The
// door's slam rings every shelf by 30 g (the virtual cabinet's SlamG) and
// takes none of that away.
func TestTouchWatch(t *testing.T) {
	r := newRig(t)
	sale := r.shopShelf3(func() {
		if err := r.hw.Take(1, "NM-0003", 1); err != nil {
			t.Fatal(err)
		}
		stepFor(t, r.d, 500*time.Millisecond)
		p := r.product("QH-0201")
		if err := r.hw.Take(2, "QH-0201", 1); err != nil {
			t.Fatal(err)
		}
		stepFor(t, r.d, 500*time.Millisecond) // the shopper reads the label
		if err := r.hw.Put(2, "QH-0201", p.UnitWeightG, 1); err != nil {
			t.Fatal(err)
		}
	})
	dump(t, sale)
	got := stillShelves(sale)
	want := map[int]bool{3: true, 4: true}
	if len(got) != len(want) || !got[3] || !got[4] {
		t.Fatalf("still shelves %v, want %v (1 sold from, 2 lifted and put back)", got, want)
	}
	// Shelf 1 was only lifted from; the unit put back on shelf 2 raised it.
	if rose := risenShelves(sale); len(rose) != 1 || !rose[2] {
		t.Fatalf("shelves not reported never-risen %v, want only 2", rose)
	}
	if rose := roseShelves(sale); len(rose) != 1 || !rose[2] {
		t.Fatalf("shelves reported risen %v, want only 2", rose)
	}
	// One lift from shelf 1, one from shelf 2 (put back: no new low),
	// none from the still shelves whatever the slam rang.
	wantLifts := map[int]int{1: 1, 2: 1, 3: 0, 4: 0}
	for _, ev := range sale.Evidence {
		if ev.Lifts == nil || *ev.Lifts != wantLifts[ev.Shelf] {
			t.Fatalf("shelf %d lifts %v, want %d", ev.Shelf, ev.Lifts, wantLifts[ev.Shelf])
		}
	}
	if sale.Status != msg.SaleExact || len(sale.Lines) != 1 || sale.Lines[0].SKU != "NM-0003" {
		t.Fatalf("sale %s %+v, want NM-0003 exact", sale.Status, sale.Lines)
	}
}

// A session the cabinet recovers after a restart was not watched from its
// start: no shelf is reported still, whatever happened.
func TestTouchWatchForgetsAcrossRestart(t *testing.T) {
	r := newRig(t)
	r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	if err := r.hw.Take(1, "NM-0003", 1); err != nil {
		t.Fatal(err)
	}
	r.restart()
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	s := r.sales()
	sale := s[len(s)-1]
	dump(t, sale)
	if got := stillShelves(sale); len(got) != 0 {
		t.Fatalf("still shelves %v after a restart in the session, want none", got)
	}
	if got := risenShelves(sale); len(got) != 4 {
		t.Fatalf("shelves not reported never-risen %v after a restart in the session, want all 4", got)
	}
	if got := roseShelves(sale); len(got) != 0 {
		t.Fatalf("shelves reported risen %v after a restart in the session, want none: not watched is no evidence", got)
	}
	if got := shelvesWhere(sale, func(ev msg.Evidence) bool { return ev.Lifts != nil }); len(got) != 0 {
		t.Fatalf("shelves with a lift count %v after a restart in the session, want none", got)
	}
}

// The watch counts a level only once the weight held it for touchHold: a
// ring (a slammed door, a bump) swings both ways faster and leaves a shelf
// still; a unit lifted and set down again is seen both ways.
func TestTouchWatchHoldsLevels(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	const th = 10.0
	feed := func(sw *shelfWatch, from, to time.Duration, g func(t time.Duration) float64) {
		for at := from; at < to; at += 12500 * time.Microsecond { // 80 samples a second
			sw.see(t0.Add(at), g(at), th)
		}
	}
	ring := func(amp float64) func(time.Duration) float64 {
		return func(at time.Duration) float64 {
			s := at.Seconds()
			return 2000 + amp*math.Exp(-s/0.15)*math.Sin(2*math.Pi*7.3*s)
		}
	}

	sw := &shelfWatch{before: 2000, low: 2000, last: t0}
	feed(sw, 0, 2*time.Second, ring(60))
	if sw.touched || sw.rose {
		t.Fatalf("a 60 g ring: touched %v rose %v, want still", sw.touched, sw.rose)
	}

	sw = &shelfWatch{before: 2000, low: 2000, last: t0}
	feed(sw, 0, time.Second, func(at time.Duration) float64 {
		if at >= 300*time.Millisecond && at < 700*time.Millisecond {
			return 1500 // a 500 g jar lifted for 0.4 s
		}
		return 2000
	})
	if !sw.touched || !sw.rose {
		t.Fatalf("a jar lifted and put back: touched %v rose %v, want both", sw.touched, sw.rose)
	}

	sw = &shelfWatch{before: 2000, low: 2000, last: t0}
	feed(sw, 0, time.Second, func(at time.Duration) float64 {
		if at >= 300*time.Millisecond && at < 400*time.Millisecond {
			return 2040 // pressed for 0.1 s: shorter than touchHold
		}
		return 2000
	})
	if sw.touched || sw.rose {
		t.Fatalf("a 0.1 s press: touched %v rose %v, want still", sw.touched, sw.rose)
	}
	if off, up := sw.pending(th); off || up {
		t.Fatalf("pending %v %v long after the press", off, up)
	}
	sw.see(t0.Add(time.Second), 2040, th)
	if off, up := sw.pending(th); !off || !up {
		t.Fatalf("a reading 40 g up just now: pending %v %v, want both (a change may be starting)", off, up)
	}
}

// The watch counts a lift each time the weight holds a flat level below
// the lowest flat level before it: units lifted one after the other are
// as many lifts, the slide of a slow filter is one, a unit lifted again
// after it was put back is none, and a press is none.
func TestTouchWatchCountsLifts(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	const th = 10.0
	lifts := func(rate float64, g func(s float64) float64) int {
		sw := &shelfWatch{before: 2000, low: 2000, flatLow: 2000, last: t0}
		for i := 0; float64(i)/rate < 4; i++ {
			s := float64(i) / rate
			sw.see(t0.Add(time.Duration(s*float64(time.Second))), g(s), th)
		}
		return sw.lifts
	}
	step := func(at ...float64) func(float64) float64 { // 100 g lifted at each time
		return func(s float64) float64 {
			g := 2000.0
			for _, a := range at {
				if s >= a {
					g -= 100
				}
			}
			return g
		}
	}
	for _, c := range []struct {
		name string
		rate float64
		g    func(float64) float64
		want int
	}{
		{"two packs one second apart", 80, step(1, 2), 2},
		{"two packs in one grab", 80, step(1, 1), 1},
		{"two packs 0.1 s apart", 80, step(1, 1.1), 1},
		{"a 500 g jar through a filter sliding for 0.8 s at 10 samples a second", 10, func(s float64) float64 {
			return 2000 - 500*min(max((s-1)/0.8, 0), 1)
		}, 1},
		{"lifted, put back, lifted again", 80, func(s float64) float64 {
			if (s >= 1 && s < 2) || s >= 3 {
				return 1900
			}
			return 2000
		}, 1},
		{"a hand pressing 40 g for a second", 80, func(s float64) float64 {
			if s >= 1 && s < 2 {
				return 2040
			}
			return 2000
		}, 0},
	} {
		if got := lifts(c.rate, c.g); got != c.want {
			t.Errorf("%s: %d lifts, want %d", c.name, got, c.want)
		}
	}
}
