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
	units     map[string][]float64 // true weight of each unit, by SKU, newest last
	objects   []float64
	loadG     float64 // tray + units + objects, recomputed on change

	// Creep is the sum over load changes Δᵢ at tᵢ of
	// CreepFrac·Δᵢ·(1 − exp(−(t−tᵢ)/τ)), kept in closed form as
	// CreepFrac·(creepSum − creepPending·exp(−(t−creepAt)/τ)).
	creepSum, creepPending float64
	creepAt                time.Time

	vibs  []vibration
	noise *rand.Rand
	fault string

	// The load cell's own temperature follows the air's with the time
	// constant Config.CellTau: cellC at cellAt, heading for airC.
	cellC, airC float64
	cellAt      time.Time
	zeroPerC    float64 // this cell's zero drift, g/°C, drawn from the seed

	// A shopper leaning on the shelf: leanG rests on it until let go;
	// each let-go leaves a hysteresis offset, summed in residualG.
	leanG     float64
	residualG float64
	hyst      *rand.Rand

	raw    *rawScale
	filter *scale.Filter
}

// vibration is a decaying ring of the shelf started at a moment.
type vibration struct {
	at   time.Time
	ampG float64
}

// recompute sums the true load in a fixed order, so that a replay adds the
// same floating-point numbers in the same order.
func (s *shelf) recompute() {
	g := s.emptyG
	for _, sku := range slices.Sorted(maps.Keys(s.units)) {
		for _, w := range s.units[sku] {
			g += w
		}
	}
	for _, w := range s.objects {
		g += w
	}
	s.loadG = g
}

// creep starts the creep of a load change of delta grams at now.
func (s *shelf) creep(now time.Time, delta float64, tau time.Duration) {
	s.creepPending = s.creepPending*decay(now.Sub(s.creepAt), tau) + delta
	s.creepSum += delta
	s.creepAt = now
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

// cellTemp is the load cell's temperature at now: it approaches the air's
// exponentially with time constant tau (at once when tau is 0).
func (s *shelf) cellTemp(now time.Time, tau time.Duration) float64 {
	if tau <= 0 {
		return s.airC
	}
	return s.airC + (s.cellC-s.airC)*decay(now.Sub(s.cellAt), tau)
}

// setAir changes the air temperature around the cell at now.
func (s *shelf) setAir(now time.Time, airC float64, tau time.Duration) {
	s.cellC = s.cellTemp(now, tau)
	s.cellAt = now
	s.airC = airC
}

// grams is what the load cell sees at now, in grams, including one noise
// draw. Zero and span drift with the cell's temperature away from the
// calibration temperature cfg.TempC.
func (s *shelf) grams(now time.Time, cfg *Config) float64 {
	dT := s.cellTemp(now, cfg.CellTau) - cfg.TempC
	g := (s.loadG+s.leanG)*(1+cfg.SpanPerC*dT) + s.zeroPerC*dT + s.residualG
	g += cfg.CreepFrac * (s.creepSum - s.creepPending*decay(now.Sub(s.creepAt), cfg.CreepTau))

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
			g += v.ampG * decay(dt, tau) * math.Cos(2*math.Pi*vibHz*dt.Seconds())
		}
	}
	s.vibs = kept

	// Always draw, so that the noise sequence does not depend on NoiseG.
	return g + s.noise.NormFloat64()*cfg.NoiseG
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
