package sim

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bangfu/cabinet/hal/scale"
)

// shelf is one shelf's physical state. Cabinet.mu guards it.
type shelf struct {
	num, door int
	cal       scale.Calibration
	emptyG    float64
	twoCell   bool
	units     map[string][]unit // by SKU, newest last
	objects   []unit
	lanes     map[string]float64 // each SKU's lane (SetLane), where Load stands its units
	loadG     float64            // tray + units + objects, recomputed on change

	// cells is the shelf's load cell, or on a two-cell shelf its left
	// (cells[0]) and right (cells[1]) ones.
	cells []*loadCell

	vibs  []vibration
	fault string

	// The load cells' own temperature follows the air's with the time
	// constant Config.CellTau: cellC at cellAt, heading for airC.
	cellC, airC float64
	cellAt      time.Time

	// A shopper leaning on the shelf with leanG at position leanX: it
	// rests on it until let go; each let-go leaves a hysteresis offset.
	leanG, leanX float64
	hyst         *rand.Rand
	pos          *rand.Rand // where units land on a two-cell shelf

	raw, rawRight *rawScale     // rawRight: two-cell only
	filter, right *scale.Filter // right: two-cell only
}

// unit is a unit or a foreign object on a shelf: its true weight and
// where it stands, 0 over the left load cell and 1 over the right (only a
// two-cell shelf tells; a one-cell shelf's units stand at 0.5).
type unit struct{ g, x float64 }

// loadCell is one load cell under a shelf.
type loadCell struct {
	loadG float64 // its share of the shelf's true load, recomputed on change
	leanG float64 // its share of a lean

	// Creep is the sum over load changes Δᵢ at tᵢ of
	// CreepFrac·Δᵢ·(1 − exp(−(t−tᵢ)/τ)), kept in closed form as
	// CreepFrac·(creepSum − creepPending·exp(−(t−creepAt)/τ)).
	creepSum, creepPending float64
	creepAt                time.Time

	zeroPerC  float64 // this cell's zero drift, g/°C, drawn from the seed
	residualG float64 // the hysteresis leans left on it, summed
	noise     *rand.Rand
}

// vibration is a decaying ring of the shelf started at a moment.
type vibration struct {
	at   time.Time
	ampG float64
}

// Where a unit lands on a two-cell shelf (see the package doc).
const (
	laneJitter = 0.05 // a unit stands within ±laneJitter of its SKU's lane
	middle     = 0.5  // the lane of a SKU given none, and where a lean pushes by default
)

// share is how much of w grams at position x each load cell carries: all
// of it on a one-cell shelf, w·(1−x) and w·x on a two-cell one.
func (s *shelf) share(w, x float64) [2]float64 {
	if !s.twoCell {
		return [2]float64{w, 0}
	}
	return [2]float64{w * (1 - x), w * x}
}

// recompute sums the true load in a fixed order, so that a replay adds the
// same floating-point numbers in the same order.
func (s *shelf) recompute() {
	g := s.emptyG
	cell := [2]float64{s.emptyG, 0}
	if s.twoCell {
		cell = [2]float64{s.emptyG / 2, s.emptyG / 2} // the tray stands centred
	}
	add := func(u unit) {
		g += u.g
		if s.twoCell {
			sh := s.share(u.g, u.x)
			cell[0] += sh[0]
			cell[1] += sh[1]
		}
	}
	for _, sku := range slices.Sorted(maps.Keys(s.units)) {
		for _, u := range s.units[sku] {
			add(u)
		}
	}
	for _, u := range s.objects {
		add(u)
	}
	s.loadG = g
	if !s.twoCell {
		cell[0] = g
	}
	for i, c := range s.cells {
		c.loadG = cell[i]
	}
}

// rightG is the right load cell's share of the true load; 0 on a one-cell
// shelf.
func (s *shelf) rightG() float64 {
	if !s.twoCell {
		return 0
	}
	return s.cells[1].loadG
}

// inLane draws where a unit of sku stands on a two-cell shelf: within
// ±laneJitter of its lane (SetLane; the middle when it has none), clipped
// to the shelf. A one-cell shelf draws nothing.
func (s *shelf) inLane(sku string) float64 {
	if !s.twoCell {
		return middle
	}
	x, ok := s.lanes[sku]
	if !ok {
		x = middle
	}
	return min(max(x+(2*s.pos.Float64()-1)*laneJitter, 0), 1)
}

// anywhere draws a position uniform over a two-cell shelf. A one-cell
// shelf draws nothing.
func (s *shelf) anywhere() float64 {
	if !s.twoCell {
		return middle
	}
	return s.pos.Float64()
}

// creep starts the creep of a load change of delta grams per cell at now.
func (s *shelf) creep(now time.Time, delta [2]float64, tau time.Duration) {
	for i, c := range s.cells {
		c.creepPending = c.creepPending*decay(now.Sub(c.creepAt), tau) + delta[i]
		c.creepSum += delta[i]
		c.creepAt = now
	}
}

// setLean makes the lean on s grams at x and returns each cell's change.
func (s *shelf) setLean(grams, x float64) [2]float64 {
	sh := s.share(grams, x)
	var delta [2]float64
	for i, c := range s.cells {
		delta[i] = sh[i] - c.leanG
		c.leanG = sh[i]
	}
	s.leanG, s.leanX = grams, x
	return delta
}

// shake starts a vibration of the given amplitude at now.
func (s *shelf) shake(now time.Time, ampG float64) {
	if ampG > 0 {
		s.vibs = append(s.vibs, vibration{at: now, ampG: ampG})
	}
}

// decay is exp(−dt/tau), 1 for dt ≤ 0 and 0 for tau = 0.
func decay(dt, tau time.Duration) float64 {
	if dt <= 0 {
		return 1
	}
	if tau <= 0 {
		return 0
	}
	return math.Exp(-dt.Seconds() / tau.Seconds())
}

// cellTemp is the load cells' temperature at now: it approaches the air's
// exponentially with time constant tau (at once when tau is 0).
func (s *shelf) cellTemp(now time.Time, tau time.Duration) float64 {
	if tau <= 0 {
		return s.airC
	}
	return s.airC + (s.cellC-s.airC)*decay(now.Sub(s.cellAt), tau)
}

// setAir changes the air temperature around the cells at now.
func (s *shelf) setAir(now time.Time, airC float64, tau time.Duration) {
	s.cellC = s.cellTemp(now, tau)
	s.cellAt = now
	s.airC = airC
}

// grams is what the load cells see at now, in grams, each including one
// noise draw of its own: [0] the one cell of a one-cell shelf (and [1] 0),
// or the left and the right cell. Zero and span drift with the cells'
// temperature away from the calibration temperature cfg.TempC. A
// vibration shakes the shelf: each of two cells rings with half of it, in
// phase, so that their sum rings as a one-cell shelf does.
func (s *shelf) grams(now time.Time, cfg *Config) [2]float64 {
	dT := s.cellTemp(now, cfg.CellTau) - cfg.TempC
	var g [2]float64
	for i, c := range s.cells {
		g[i] = (c.loadG+c.leanG)*(1+cfg.SpanPerC*dT) + c.zeroPerC*dT + c.residualG
		g[i] += cfg.CreepFrac * (c.creepSum - c.creepPending*decay(now.Sub(c.creepAt), cfg.CreepTau))
	}
	part := 1 / float64(len(s.cells))

	// The ring decays with a time constant of a quarter of the settle time,
	// so 5 g has fallen below 0.1 g when the settle time is over.
	tau := cfg.SettleTime / 4
	kept := s.vibs[:0]
	for _, v := range s.vibs {
		dt := now.Sub(v.at)
		if tau <= 0 || dt > 12*tau {
			continue // died out
		}
		kept = append(kept, v)
		if dt >= 0 {
			ring := v.ampG * decay(dt, tau) * math.Cos(2*math.Pi*vibHz*dt.Seconds())
			for i := range s.cells {
				g[i] += ring * part
			}
		}
	}
	s.vibs = kept

	// Always draw, so that the noise sequence does not depend on NoiseG.
	for i, c := range s.cells {
		g[i] += c.noise.NormFloat64() * cfg.NoiseG
	}
	return g
}

// door is one door, its lock and its reed switch. Cabinet.mu guards it.
type door struct {
	num  int
	open bool

	energised   bool      // commanded open
	retractFrom time.Time // when the bolt started to retract
	boltOut     bool
	jammed      bool

	// The reed switch's raw level ("closed") is a log of edges, oldest first,
	// some of them in the future while a bounce plays out. baseLevel is the
	// level before the oldest edge kept; baseSeq and baseAt describe the
	// newest edge dropped from the log.
	edges     []edge
	seq       uint64
	baseLevel bool
	baseSeq   uint64
	baseAt    time.Time
}

// edge is a change of the reed switch's raw level.
type edge struct {
	seq    uint64
	at     time.Time
	closed bool
}

// advanceLock moves the bolt as far as time now allows.
func (d *door) advanceLock(now time.Time, release time.Duration) {
	if d.jammed {
		return
	}
	if d.energised && d.boltOut && now.Sub(d.retractFrom) >= release {
		d.boltOut = false
	}
	if !d.energised && !d.boltOut && !d.open {
		d.boltOut = true
	}
}

func (d *door) energise(now time.Time, release time.Duration) {
	d.advanceLock(now, release)
	if !d.energised {
		d.energised = true
		d.retractFrom = now
	}
	d.advanceLock(now, release)
}

func (d *door) release(now time.Time, release time.Duration) {
	d.advanceLock(now, release)
	d.energised = false
	d.advanceLock(now, release)
}

// levelAt is the reed switch's raw level at t.
func (d *door) levelAt(t time.Time) bool {
	level := d.baseLevel
	for _, e := range d.edges {
		if e.at.After(t) {
			break
		}
		level = e.closed
	}
	return level
}

// bounce plays the reed switch's response to the door moving at now to
// closed: it flaps between the old and the new level for bounceTime, then
// holds the new level. A bounce still playing from an earlier move is cut
// off where the new one starts.
func (d *door) bounce(now time.Time, closed bool, bounceTime time.Duration) {
	i := len(d.edges)
	for i > 0 && d.edges[i-1].at.After(now) {
		i--
	}
	d.edges = d.edges[:i]
	level := d.levelAt(now)
	add := func(at time.Time, l bool) {
		if l == level {
			return
		}
		d.seq++
		d.edges = append(d.edges, edge{seq: d.seq, at: at, closed: l})
		level = l
	}
	if bounceTime > 0 {
		const flaps = 6
		q := bounceTime / flaps
		for k := range flaps {
			add(now.Add(time.Duration(k)*q), closed == (k%2 == 0))
		}
	}
	add(now.Add(bounceTime), closed)
	if n := len(d.edges) - maxEdges; n > 0 {
		last := d.edges[n-1]
		d.baseLevel, d.baseSeq, d.baseAt = last.closed, last.seq, last.at
		d.edges = slices.Delete(d.edges, 0, n)
	}
}
