// Package sim is the virtual cabinet: the physical world that the simulator,
// scenarios and tests act on (a person opens doors, takes and puts items) and
// a hal backend on top of it, so the firmware runs unchanged against it.
//
// sim owns the physics of one cabinet — shelf loads and the units on them,
// load-cell noise, creep, temperature drift of zero and span, vibration
// after a door slams or an item moves, a shopper leaning on a shelf and the
// hysteresis it leaves, reed-switch bounce, lock timing and jams — and the
// hal devices that observe and drive it. It must not contain firmware
// policy (sessions, baskets, alarms), talk to a platform or broker, or
// import firmware, payment, telemetry or simulator.
//
// # Units
//
// A unit's true weight is its nominal weight plus an offset within the
// SKU's tolerance TolG, as a filling line makes them: each SKU has a fill
// bias, uniform within ±0.3·TolG and drawn once per SKU and cabinet; a
// unit's offset is that bias plus a normal spread of σ = TolG/2.5, clipped
// to ±TolG; and about 3 % of units are drawn near the limit instead, with
// an offset of 0.75–1·TolG either way.
//
// # Temperature
//
// Each load cell's temperature follows the air's (SetTemp) with the time
// constant Config.CellTau, and its zero moves with it: by its own
// coefficient, drawn from the seed within 0.5–1.5 times Config.DriftGPerC
// of either sign, per °C away from the calibration temperature
// Config.TempC. The span drifts by Config.SpanPerC per °C.
//
// # Leaning
//
// A shopper may lean on a shelf (Lean, LeanAt): the load cell reads the
// force, the shelf's goods do not change, and letting go — or closing the
// door — leaves the cell a hysteresis offset of 0.5–3 g.
//
// # Two load cells
//
// A shelf may stand on two load cells, a left and a right one
// (ShelfConfig.TwoCell). Every unit, object and lean on it then stands at
// a position x along the shelf, 0 over the left cell and 1 over the
// right, and loads the left cell with w·(1−x) and the right with w·x; the
// empty tray stands centred. A unit Load puts on the shelf stands within
// ±0.05 of its SKU's lane (SetLane; the middle for a SKU given none); a
// unit Put on a shelf where its SKU has a lane lands within ±0.05 of it
// too (put back in its lane), one of a SKU without a lane there (moved
// from another shelf) and a foreign object land anywhere, uniformly; a
// lean pushes where LeanAt says (Lean: the middle), and the hysteresis it
// leaves is shared between the cells the same way. Each cell has its own
// noise (σ Config.NoiseG), its own zero coefficient, its own creep of its
// own load changes and its own hysteresis; both share the temperature,
// and a vibration rings half on each, in phase. The shelf's Scale reads
// the sum of both cells in the shelf's calibration (so its noise is
// √2·NoiseG), its Right scale the right cell alone; a sample of the two
// is drawn at one instant (see Sampler), so they share the right cell's
// noise as a real pair of amplifiers read together would. A scale fault
// (FaultScale) hits both cells.
//
// # Time and randomness
//
// Physics is evaluated lazily from Config.Clock at the moment something is
// observed, so a test with an injected clock drives every time constant
// without sleeping. Only RawScale.ReadRaw waits in real time, one sample
// period, as the HX711 would.
//
// Every random draw comes from Config.Seed through math/rand/v2 PCG
// generators: one stream for the units' true weights, one per SKU for its
// fill bias, one for the thermometer, and per shelf one for load-cell noise,
// one for its zero's temperature coefficient and one for the hysteresis
// leaning leaves; a two-cell shelf has a noise and a zero stream for its
// right cell too, and one for where units land. Separate streams keep a
// seed replaying exactly even though the shelves' scales sample
// concurrently, keep a SKU's fill bias the same whatever order SKUs are
// loaded in (the units' own weights come from one stream: load them in a
// fixed order to replay), and leave a one-cell shelf's samples as they
// were whether its neighbours stand on one cell or two.
package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image/png"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/hal/screen"
)

// Errors the person's actions fail with.
var (
	ErrLocked     = errors.New("sim: door is locked")
	ErrDoorClosed = errors.New("sim: door is closed")
	ErrNotEnough  = errors.New("sim: not enough units on the shelf")
	ErrNoDoor     = errors.New("sim: no such door")
	ErrNoShelf    = errors.New("sim: no such shelf")
	ErrOneCell    = errors.New("sim: the shelf has one load cell")
)

// Display size DisplayPNG renders at: a 2.4" portrait SPI panel.
const (
	DisplayWidth  = 240
	DisplayHeight = 320
)

// DefaultCalibration is used for shelves whose ShelfConfig.Cal is zero: an
// arbitrary zero offset and 100 counts per gram, so a 24-bit HX711 saturates
// beyond about 83 kg.
var DefaultCalibration = scale.Calibration{Offset: 84213, CountsPerGram: 100}

// ShelfConfig describes one shelf's scale.
type ShelfConfig struct {
	Shelf  int               // shelf number, unique, ≥ 1
	Door   int               // the door in front of it; 0 means door 1
	Cal    scale.Calibration // zero CountsPerGram means DefaultCalibration; both cells of a two-cell shelf have it
	EmptyG float64           // weight of the empty tray on the load cell(s)
	// TwoCell puts the shelf on two load cells, a left and a right one (see
	// the package doc): hal.Shelf.Right reads the right one.
	TwoCell bool
}

// Config describes a virtual cabinet. Zero fields take the default in their
// comment; for the imperfections, a negative value switches the effect off.
type Config struct {
	Name string // prefix of the devices' String(); default "sim"
	Seed int64

	NoiseG     float64       // load-cell noise σ per sample and cell, grams; default 0.5
	SampleRate float64       // HX711 samples per second; default 10
	SettleTime time.Duration // vibration after a door close or item move dies out over this; default 600ms
	VibrationG float64       // initial vibration amplitude, grams; default 5
	SlamG      float64       // a door slam's initial vibration amplitude on the door's shelves, grams; default 30
	CreepFrac  float64       // creep as a fraction of a load change; default 0.0003
	CreepTau   time.Duration // creep time constant; default 20s (must not be negative)
	DriftGPerC float64       // typical zero drift per °C of a load cell away from TempC (each cell's own is drawn); default 0.05
	SpanPerC   float64       // span drift, fraction of load per °C away from TempC; default 0.00001
	CellTau    time.Duration // the load cells' temperature follows the air's with this time constant; default 5m

	BounceTime      time.Duration // reed switch bounce after a door moves; default 30ms
	LockReleaseTime time.Duration // bolt retraction after Energise; default 150ms

	Doors   int           // number of doors, numbered from 1; default 1
	Shelves []ShelfConfig // nil means four shelves spread over the doors

	// TempC is the starting air temperature and the temperature the scales
	// were calibrated at: drift is relative to it.
	TempC float64

	// Scale configures each shelf's filter; its Clock and Logger default to
	// the ones below.
	Scale scale.Opts

	Clock func() time.Time // default time.Now
	// After paces the simulated HX711s: it sends once d has passed on the
	// simulation's clock (default time.After). A test that moves Clock by
	// hand passes its fake clock's After too, so samples come as it
	// advances and never by wall time.
	After  func(d time.Duration) <-chan time.Time
	Logger *slog.Logger // default discards
}

// vibHz is the shelves' natural frequency; the vibration rings at it.
const vibHz = 7.3

// maxEdges bounds each door's log of reed-switch edges.
const maxEdges = 256

// thermoNoiseC is the thermometer's noise σ in °C.
const thermoNoiseC = 0.05

// The units' true weights around their nominal (see the package doc).
const (
	fillBiasFrac = 0.3  // a SKU's fill bias: uniform within ±fillBiasFrac·TolG
	unitSigmaDiv = 2.5  // a unit's normal spread: σ = TolG/unitSigmaDiv
	nearLimit    = 0.03 // the share of units drawn near the limit
	nearLimitMin = 0.75 // … at |offset| in [nearLimitMin, 1]·TolG
)

// MaxLeanG is the heaviest lean Lean accepts: about a grown-up's weight on
// one arm, well within the load cell.
const MaxLeanG = 50_000

// The hysteresis offset a lean leaves on the load cell when let go.
const (
	hystMinG = 0.5
	hystMaxG = 3.0
)

// resolve applies defaults and checks c.
func (c Config) resolve() (Config, error) {
	pos := func(v *float64, def float64) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 0
		}
	}
	dur := func(v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 0
		}
	}
	for _, v := range []float64{c.NoiseG, c.SampleRate, c.VibrationG, c.SlamG, c.CreepFrac, c.DriftGPerC, c.SpanPerC, c.TempC} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return c, errors.New("sim: config has a NaN or infinite number")
		}
	}
	if c.Name == "" {
		c.Name = "sim"
	}
	pos(&c.NoiseG, 0.5)
	if c.SampleRate < 0 || c.SampleRate > 10000 {
		return c, fmt.Errorf("sim: sample rate %v Hz outside 0…10000", c.SampleRate)
	}
	if c.SampleRate == 0 {
		c.SampleRate = 10
	}
	dur(&c.SettleTime, 600*time.Millisecond)
	pos(&c.VibrationG, 5)
	pos(&c.SlamG, 30)
	pos(&c.CreepFrac, 0.0003)
	if c.CreepTau < 0 {
		return c, errors.New("sim: negative creep time constant")
	}
	if c.CreepTau == 0 {
		c.CreepTau = 20 * time.Second
	}
	pos(&c.DriftGPerC, 0.05)
	pos(&c.SpanPerC, 0.00001)
	dur(&c.CellTau, 5*time.Minute)
	dur(&c.BounceTime, 30*time.Millisecond)
	dur(&c.LockReleaseTime, 150*time.Millisecond)
	if c.Doors < 0 || c.Doors > 64 {
		return c, fmt.Errorf("sim: %d doors outside 0…64", c.Doors)
	}
	if c.Doors == 0 {
		c.Doors = 1
	}
	if c.Shelves == nil {
		for i := range 4 {
			c.Shelves = append(c.Shelves, ShelfConfig{Shelf: i + 1, Door: i%c.Doors + 1})
		}
	}
	c.Shelves = slices.Clone(c.Shelves)
	seen := map[int]bool{}
	for i := range c.Shelves {
		s := &c.Shelves[i]
		if s.Shelf < 1 || seen[s.Shelf] {
			return c, fmt.Errorf("sim: shelf number %d is not positive and unique", s.Shelf)
		}
		seen[s.Shelf] = true
		if s.Door == 0 {
			s.Door = 1
		}
		if s.Door < 1 || s.Door > c.Doors {
			return c, fmt.Errorf("sim: shelf %d is behind door %d of %d: %w", s.Shelf, s.Door, c.Doors, ErrNoDoor)
		}
		if s.Cal.CountsPerGram == 0 {
			s.Cal = DefaultCalibration
		}
		if err := s.Cal.Validate(); err != nil {
			return c, fmt.Errorf("sim: shelf %d: %w", s.Shelf, err)
		}
		if s.EmptyG < 0 || math.IsNaN(s.EmptyG) {
			return c, fmt.Errorf("sim: shelf %d: tray weight %v g", s.Shelf, s.EmptyG)
		}
	}
	sort.Slice(c.Shelves, func(i, j int) bool { return c.Shelves[i].Shelf < c.Shelves[j].Shelf })
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Scale.Clock == nil {
		c.Scale.Clock = c.Clock
	}
	if c.Scale.After == nil {
		c.Scale.After = c.After
	}
	if c.Scale.Logger == nil {
		c.Scale.Logger = c.Logger
	}
	return c, nil
}

// Cabinet is one virtual cabinet. All methods are safe for concurrent use;
// one mutex guards the whole physical state.
type Cabinet struct {
	cfg     Config
	clock   func() time.Time
	running atomic.Bool
	samples atomic.Uint64 // raw samples drawn, by every reader

	mu      sync.Mutex
	doors   []*door // door n at index n-1
	shelves []*shelf
	byNum   map[int]*shelf
	stock   *rand.Rand // units' true weights
	thermo  *rand.Rand
	specs   map[string]unitSpec
	bias    map[string]float64   // each SKU's fill bias, a fraction of its TolG
	carried map[string][]float64 // units taken out, by SKU, newest last
	tempC   float64
	powered bool
	screen  hal.Screen
	signal  hal.Signal
	period  time.Duration // one HX711 sample period
	sampler *Sampler      // Sample and SampleRight
	run     *Sampler      // the Scales' raw scales
	hush    chan struct{} // non-nil while hushed (hal.Quiet); closed when it ends
	began   chan struct{} // closed by the next Hush: Run stops the Filters' goroutines

	hw hal.Cabinet
}

// unitSpec is what the cabinet knows of a product from Load.
type unitSpec struct{ unitG, tolG float64 }

// Stream ids of the PCG generators derived from the seed.
const (
	streamStock  = 0x5eed0001
	streamThermo = 0x5eed0002
	streamBias   = 0x5eed0003 << 32 // ^ the SKU's FNV-1a hash
	streamNoise  = 0x5eed1000       // + shelf number
	streamDrift  = 0x5eed0004 << 32 // + shelf number
	streamHyst   = 0x5eed0005 << 32 // + shelf number
	streamNoiseR = 0x5eed0006 << 32 // + shelf number: a two-cell shelf's right cell
	streamDriftR = 0x5eed0007 << 32 // + shelf number: a two-cell shelf's right cell
	streamPos    = 0x5eed0008 << 32 // + shelf number: where units land on a two-cell shelf
)

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// New builds a powered cabinet with all doors closed and locked, empty
// shelves, and its hal devices ready.
func New(cfg Config) (*Cabinet, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	c := &Cabinet{
		cfg:     cfg,
		clock:   cfg.Clock,
		byNum:   map[int]*shelf{},
		stock:   newRand(cfg.Seed, streamStock),
		thermo:  newRand(cfg.Seed, streamThermo),
		specs:   map[string]unitSpec{},
		bias:    map[string]float64{},
		carried: map[string][]float64{},
		tempC:   cfg.TempC,
		powered: true,
		period:  time.Duration(float64(time.Second) / cfg.SampleRate),
	}
	c.sampler, c.run = c.NewSampler(), c.NewSampler()
	for n := 1; n <= cfg.Doors; n++ {
		d := &door{num: n, boltOut: true, baseLevel: true}
		c.doors = append(c.doors, d)
		sensor := &doorSensor{c: c, d: d, stableFor: 2 * cfg.BounceTime, stable: true, cand: true}
		c.hw.Doors = append(c.hw.Doors, hal.Door{Number: n, Lock: &lock{c: c, d: d}, Sensor: sensor})
	}
	now := cfg.Clock()
	for _, sc := range cfg.Shelves {
		n := uint64(sc.Shelf)
		s := &shelf{
			num:     sc.Shelf,
			door:    sc.Door,
			cal:     sc.Cal,
			emptyG:  sc.EmptyG,
			twoCell: sc.TwoCell,
			units:   map[string][]unit{},
			lanes:   map[string]float64{},
			cellC:   cfg.TempC,
			airC:    cfg.TempC,
			cellAt:  now,
			hyst:    newRand(cfg.Seed, streamHyst+n),
		}
		s.cells = []*loadCell{{noise: newRand(cfg.Seed, streamNoise+n), zeroPerC: zeroPerC(cfg, streamDrift+n)}}
		if s.twoCell {
			s.cells = append(s.cells, &loadCell{noise: newRand(cfg.Seed, streamNoiseR+n), zeroPerC: zeroPerC(cfg, streamDriftR+n)})
			s.pos = newRand(cfg.Seed, streamPos+n)
		}
		s.recompute()
		s.raw = &rawScale{c: c, s: s}
		opts := cfg.Scale
		opts.Logger = opts.Logger.With("shelf", s.num)
		f, err := scale.New(s.raw, s.cal, &opts)
		if err != nil {
			return nil, fmt.Errorf("sim: shelf %d: %w", s.num, err)
		}
		s.filter = f
		hs := hal.Shelf{Number: s.num, Door: s.door, Scale: f}
		if s.twoCell {
			s.rawRight = &rawScale{c: c, s: s, right: true}
			ro := cfg.Scale
			ro.Logger = ro.Logger.With("shelf", s.num, "cell", "right")
			if s.right, err = scale.New(s.rawRight, s.cal, &ro); err != nil {
				return nil, fmt.Errorf("sim: shelf %d right cell: %w", s.num, err)
			}
			hs.Right = s.right
		}
		c.shelves = append(c.shelves, s)
		c.byNum[s.num] = s
		c.hw.Shelves = append(c.hw.Shelves, hs)
	}
	c.hw.Display = &display{c: c}
	c.hw.Thermometer = &thermometer{c: c}
	c.hw.Indicator = &indicator{c: c}
	c.hw.Quiet = quietHW{c}
	return c, nil
}

// zeroPerC draws a load cell's zero coefficient from its stream: 0.5–1.5
// times the typical one, either sign.
func zeroPerC(cfg Config, stream uint64) float64 {
	dr := newRand(cfg.Seed, stream)
	k := cfg.DriftGPerC * (0.5 + dr.Float64())
	if dr.IntN(2) == 0 {
		k = -k
	}
	return k
}

// Hardware returns the hal devices of the cabinet. Every call returns the
// same devices; the Scales (and a two-cell shelf's Right) only have
// readings while Run is running.
func (c *Cabinet) Hardware() hal.Cabinet {
	hw := c.hw
	hw.Doors = slices.Clone(hw.Doors)
	hw.Shelves = slices.Clone(hw.Shelves)
	return hw
}

// Run samples every shelf's scale (each Filter's Run) until ctx ends, then
// returns nil. The caller owns the goroutine; only one Run may be active.
// While the cabinet is hushed (Hush) the Filters' goroutines are stopped,
// not only held, so that a hushed cabinet holds no goroutine of its own
// but Run's.
func (c *Cabinet) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("sim: Run is already running")
	}
	defer c.running.Store(false)
	var filters []*scale.Filter
	for _, s := range c.shelves {
		filters = append(filters, s.filter)
		if s.right != nil {
			filters = append(filters, s.right)
		}
	}
	for {
		c.mu.Lock()
		began := make(chan struct{})
		c.began = began
		ended := c.hush
		c.mu.Unlock()
		if ended == nil {
			if err := sampleUntil(ctx, filters, began); err != nil || ctx.Err() != nil {
				return err
			}
			c.mu.Lock()
			ended = c.hush
			c.mu.Unlock()
		}
		if ended == nil {
			continue // the hush ended before the Filters stopped
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ended:
		}
	}
}

// sampleUntil runs the filters until ctx ends or stop is closed.
func sampleUntil(ctx context.Context, filters []*scale.Filter, stop <-chan struct{}) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(filters))
	var wg sync.WaitGroup
	for i, f := range filters {
		wg.Go(func() { errs[i] = f.Run(rctx) })
	}
	select {
	case <-ctx.Done():
	case <-stop:
	}
	cancel()
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cabinet) door(n int) (*door, error) {
	if n < 1 || n > len(c.doors) {
		return nil, fmt.Errorf("sim: door %d: %w", n, ErrNoDoor)
	}
	return c.doors[n-1], nil
}

func (c *Cabinet) shelf(n int) (*shelf, error) {
	s, ok := c.byNum[n]
	if !ok {
		return nil, fmt.Errorf("sim: shelf %d: %w", n, ErrNoShelf)
	}
	return s, nil
}

// reachable returns shelf n if its door is open.
func (c *Cabinet) reachable(n int) (*shelf, error) {
	s, err := c.shelf(n)
	if err != nil {
		return nil, err
	}
	if !c.doors[s.door-1].open {
		return nil, fmt.Errorf("sim: shelf %d behind door %d: %w", n, s.door, ErrDoorClosed)
	}
	return s, nil
}

// OpenDoor pulls the door open. It fails with ErrLocked while the bolt is
// engaged, unless force breaks it open (the bolt stays out: Locked reports
// true for an open door, as a broken-open cabinet would). Opening an open
// door does nothing.
func (c *Cabinet) OpenDoor(door int, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	d, err := c.door(door)
	if err != nil {
		return err
	}
	now := c.clock()
	d.advanceLock(now, c.cfg.LockReleaseTime)
	if d.open {
		return nil
	}
	if d.boltOut && !force {
		return fmt.Errorf("sim: open door %d: %w", door, ErrLocked)
	}
	d.open = true
	d.bounce(now, false, c.cfg.BounceTime)
	return nil
}

// CloseDoor pushes the door shut; the bolt extends if the lock is released,
// and the slam shakes the door's shelves. Closing a closed door does nothing.
func (c *Cabinet) CloseDoor(door int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	d, err := c.door(door)
	if err != nil {
		return err
	}
	if !d.open {
		return nil
	}
	now := c.clock()
	d.advanceLock(now, c.cfg.LockReleaseTime)
	d.open = false
	d.advanceLock(now, c.cfg.LockReleaseTime)
	d.bounce(now, true, c.cfg.BounceTime)
	for _, s := range c.shelves {
		if s.door == door {
			c.letGo(s, now) // a shopper closing the door is not leaning in
			s.shake(now, c.cfg.SlamG)
		}
	}
	return nil
}

// Take removes qty units of sku from the shelf, the most recently put first.
// The shelf's door must be open; fewer units than qty fail with ErrNotEnough.
// The taken units keep their true weights: Put of the same SKU returns them.
func (c *Cabinet) Take(shelf int, sku string, qty int) error {
	if qty < 1 {
		return fmt.Errorf("sim: take %d units: quantity must be positive", qty)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	s, err := c.reachable(shelf)
	if err != nil {
		return err
	}
	have := s.units[sku]
	if len(have) < qty {
		return fmt.Errorf("sim: take %d × %s from shelf %d holding %d: %w", qty, sku, shelf, len(have), ErrNotEnough)
	}
	var delta [2]float64
	for range qty {
		u := have[len(have)-1]
		have = have[:len(have)-1]
		c.carried[sku] = append(c.carried[sku], u.g)
		sh := s.share(u.g, u.x)
		delta[0] -= sh[0]
		delta[1] -= sh[1]
	}
	if len(have) == 0 {
		delete(s.units, sku)
	} else {
		s.units[sku] = have
	}
	c.moved(s, delta)
	return nil
}

// Put puts qty units of sku on the shelf; its door must be open. Units taken
// earlier are put back first, with their true weights; further units get a
// true weight drawn around unitG (or, when unitG is 0, the nominal weight
// Load gave the SKU) within the tolerance Load gave it, as Load draws them
// (an SKU Load never saw has no tolerance: its units weigh unitG). On a
// two-cell shelf a unit lands in its SKU's lane if the shelf has one for
// it (SetLane), anywhere otherwise (see the package doc).
func (c *Cabinet) Put(shelf int, sku string, unitG float64, qty int) error {
	if qty < 1 {
		return fmt.Errorf("sim: put %d units: quantity must be positive", qty)
	}
	if unitG < 0 || math.IsNaN(unitG) || math.IsInf(unitG, 0) {
		return fmt.Errorf("sim: put %s: unit weight %v g", sku, unitG)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	s, err := c.reachable(shelf)
	if err != nil {
		return err
	}
	spec, known := c.specs[sku]
	if unitG == 0 {
		if !known && len(c.carried[sku]) < qty {
			return fmt.Errorf("sim: put %s: no unit weight given or known", sku)
		}
		unitG = spec.unitG
	}
	_, inLane := s.lanes[sku]
	var delta [2]float64
	for range qty {
		var w float64
		if out := c.carried[sku]; len(out) > 0 {
			w = out[len(out)-1]
			c.carried[sku] = out[:len(out)-1]
		} else {
			w = c.draw(sku, unitG, spec.tolG)
		}
		u := unit{g: w}
		if inLane {
			u.x = s.inLane(sku)
		} else {
			u.x = s.anywhere()
		}
		s.units[sku] = append(s.units[sku], u)
		sh := s.share(u.g, u.x)
		delta[0] += sh[0]
		delta[1] += sh[1]
	}
	c.moved(s, delta)
	return nil
}

// PutObject puts a foreign object of the given weight on the shelf; its door
// must be open. On a two-cell shelf it lands anywhere.
func (c *Cabinet) PutObject(shelf int, grams float64) error {
	if grams <= 0 || math.IsNaN(grams) || math.IsInf(grams, 0) {
		return fmt.Errorf("sim: object of %v g", grams)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	s, err := c.reachable(shelf)
	if err != nil {
		return err
	}
	u := unit{g: grams, x: s.anywhere()}
	s.objects = append(s.objects, u)
	c.moved(s, s.share(u.g, u.x))
	return nil
}

// Load stocks a shelf without a door, as found at power-on: qty units of sku,
// each with its own true weight within unitG ± tolG, drawn as the package
// doc says (the SKU's fill bias, a normal spread, a few near the limit). It
// causes no vibration or creep. The SKU's nominal weight and tolerance are
// remembered for later Puts. On a two-cell shelf the units stand in the
// SKU's lane (SetLane before Load; the middle without one).
func (c *Cabinet) Load(shelf int, sku string, unitG, tolG float64, qty int) error {
	if qty < 1 || unitG <= 0 || tolG < 0 || tolG >= unitG || math.IsNaN(unitG+tolG) || math.IsInf(unitG+tolG, 0) {
		return fmt.Errorf("sim: load %d × %s of %v ± %v g: invalid", qty, sku, unitG, tolG)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	s, err := c.shelf(shelf)
	if err != nil {
		return err
	}
	c.specs[sku] = unitSpec{unitG: unitG, tolG: tolG}
	for range qty {
		w := c.draw(sku, unitG, tolG)
		s.units[sku] = append(s.units[sku], unit{g: w, x: s.inLane(sku)})
	}
	s.recompute()
	return nil
}

// SetLane gives sku a lane on a shelf: the position x along it, 0 over the
// left load cell and 1 over the right, where the units Load puts there
// stand (within ±0.05) and where a unit Put there lands. Units already on
// the shelf stay where they are. A one-cell shelf keeps the lane and
// weighs the same wherever a unit stands.
func (c *Cabinet) SetLane(shelf int, sku string, x float64) error {
	if !(x >= 0 && x <= 1) {
		return fmt.Errorf("sim: lane of %s on shelf %d at %v: want 0 to 1", sku, shelf, x)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	s, err := c.shelf(shelf)
	if err != nil {
		return err
	}
	s.lanes[sku] = x
	return nil
}

// draw returns a unit of sku's true weight within unitG ± tolG.
func (c *Cabinet) draw(sku string, unitG, tolG float64) float64 {
	if tolG <= 0 {
		return unitG
	}
	if c.stock.Float64() < nearLimit {
		off := (nearLimitMin + (1-nearLimitMin)*c.stock.Float64()) * tolG
		if c.stock.IntN(2) == 0 {
			off = -off
		}
		return unitG + off
	}
	off := c.fillBias(sku)*tolG + c.stock.NormFloat64()*tolG/unitSigmaDiv
	return unitG + min(max(off, -tolG), tolG)
}

// fillBias is the SKU's fill bias as a fraction of its tolerance, drawn on
// first use from a stream of its own: the same for a seed whatever order
// the SKUs are loaded in.
func (c *Cabinet) fillBias(sku string) float64 {
	b, ok := c.bias[sku]
	if !ok {
		h := fnv.New64a()
		h.Write([]byte(sku))
		b = (2*newRand(c.cfg.Seed, streamBias^h.Sum64()).Float64() - 1) * fillBiasFrac
		c.bias[sku] = b
	}
	return b
}

// moved records a load change of delta grams per load cell on s made by a
// person.
func (c *Cabinet) moved(s *shelf, delta [2]float64) {
	now := c.clock()
	s.recompute()
	s.creep(now, delta, c.cfg.CreepTau)
	s.shake(now, c.cfg.VibrationG)
}

// Lean has a shopper lean on a shelf, or rest a bag or a hand on it, with
// grams of force while its door is open; leaning again changes the force,
// and Lean(shelf, 0) lets go, door open or not. The force comes and goes
// like any load (vibration, creep) but is no item: TrueG leaves it out.
// Each let-go leaves the load cell a hysteresis offset of 0.5–3 g, drawn
// from the seed, which stays. Closing a door lets go of its shelves. On a
// two-cell shelf the lean pushes in the middle (LeanAt chooses where).
func (c *Cabinet) Lean(shelf int, grams float64) error {
	return c.LeanAt(shelf, grams, middle)
}

// LeanAt is Lean at position x along the shelf, 0 over the left load cell
// and 1 over the right: on a two-cell shelf the force, and the hysteresis
// letting go leaves, are shared between the cells as a unit's weight at x
// would be. Leaning again may move the lean; letting go (grams 0) leaves
// the hysteresis where the lean was, whatever x says. A one-cell shelf
// reads the same wherever it is leant on.
func (c *Cabinet) LeanAt(shelf int, grams, x float64) error {
	if !(grams >= 0 && grams <= MaxLeanG) {
		return fmt.Errorf("sim: lean of %v g on shelf %d: want 0 to %d g", grams, shelf, MaxLeanG)
	}
	if !(x >= 0 && x <= 1) {
		return fmt.Errorf("sim: lean on shelf %d at %v: want a position from 0 to 1", shelf, x)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	now := c.clock()
	if grams == 0 {
		s, err := c.shelf(shelf)
		if err != nil {
			return err
		}
		c.letGo(s, now)
		return nil
	}
	s, err := c.reachable(shelf)
	if err != nil {
		return err
	}
	if grams == s.leanG && (x == s.leanX || !s.twoCell) {
		return nil
	}
	if !s.twoCell {
		x = middle
	}
	s.creep(now, s.setLean(grams, x), c.cfg.CreepTau)
	s.shake(now, c.cfg.VibrationG)
	return nil
}

// letGo ends a lean on s at now, leaving its hysteresis; c.mu is held.
func (c *Cabinet) letGo(s *shelf, now time.Time) {
	if s.leanG == 0 {
		return
	}
	h := s.share(hystMinG+(hystMaxG-hystMinG)*s.hyst.Float64(), s.leanX)
	for i, cell := range s.cells {
		cell.residualG += h[i]
	}
	s.creep(now, s.setLean(0, s.leanX), c.cfg.CreepTau)
	s.shake(now, c.cfg.VibrationG)
}

// JamLock jams the door's lock (its bolt stops moving, wherever it is) or
// frees it; a freed lock that is energised retracts LockReleaseTime later.
func (c *Cabinet) JamLock(door int, jammed bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	d, err := c.door(door)
	if err != nil {
		return err
	}
	now := c.clock()
	d.advanceLock(now, c.cfg.LockReleaseTime)
	if d.jammed && !jammed && now.After(d.retractFrom) {
		d.retractFrom = now
	}
	d.jammed = jammed
	d.advanceLock(now, c.cfg.LockReleaseTime)
	return nil
}

// SetTemp sets the air temperature. The thermometer reads it at once; the
// load cells warm or cool towards it with the time constant CellTau, and
// their zero and span drift as they do.
func (c *Cabinet) SetTemp(celsius float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	now := c.clock()
	for _, s := range c.shelves {
		s.setAir(now, celsius, c.cfg.CellTau)
	}
	c.tempC = celsius
}

// SetPower cuts or restores the cabinet's power. Without power every lock
// is de-energised (fail-secure: it locks once its door is closed), the
// display and indicator go blank, and every hal call fails with
// hal.ErrClosed. Doors, shelves and weights are untouched.
func (c *Cabinet) SetPower(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	if c.powered == on {
		return
	}
	c.powered = on
	if on {
		// The board starts again: its amplifiers' filters start empty, with
		// a fresh grace before missing samples count as a fault (without
		// it, the first tick after a long cut saw a "dead" scale on every
		// shelf until the first sample came).
		for _, sh := range c.shelves {
			sh.filter.Restart()
			if sh.right != nil {
				sh.right.Restart()
			}
		}
		return
	}
	now := c.clock()
	for _, d := range c.doors {
		d.release(now, c.cfg.LockReleaseTime)
	}
	c.screen = hal.Screen{}
	c.signal = hal.SignalOff
}

// FaultScale makes a shelf's HX711 misbehave: "dead" (ReadRaw fails after
// its sample period), "saturated" (it reads full scale); "" restores it.
// On a two-cell shelf the fault hits both cells.
func (c *Cabinet) FaultScale(shelf int, mode string) error {
	switch mode {
	case "", "dead", "saturated":
	default:
		return fmt.Errorf("sim: unknown scale fault %q", mode)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stir() // the world changes: a hush ends
	s, err := c.shelf(shelf)
	if err != nil {
		return err
	}
	s.fault = mode
	return nil
}

// Sample draws one HX711 sample of the shelf's scale — on a two-cell
// shelf the sum of both cells — at the clock's present time, without
// waiting: what ReadRaw returns after its sample period. Tests use it with
// an injected clock to step the physics deterministically. It pairs with
// SampleRight as a Sampler's samples do.
func (c *Cabinet) Sample(shelf int) (int32, error) { return c.sampler.Sample(shelf) }

// SampleRight is Sample of a two-cell shelf's right load cell alone; it
// fails for a one-cell shelf.
func (c *Cabinet) SampleRight(shelf int) (int32, error) { return c.sampler.SampleRight(shelf) }

// A Sampler draws the raw samples of one reader of the shelves' scales —
// one set of Filters, such as the firmware's. A two-cell shelf's two cells
// are read together, as a pair of amplifiers clocked together would be:
// Sample and SampleRight of the same shelf share one draw of both cells,
// taken by whichever comes first, as long as the other comes within one
// sample period of clock time and has not had that draw yet; otherwise it
// draws afresh. So the total and the right cell share the right cell's
// noise, and each reader of its own Sampler gets samples of its own. A
// Sampler is safe for concurrent use.
type Sampler struct {
	c     *Cabinet
	pairs map[int]*pairing // by shelf; Cabinet.mu guards it
}

// pairing is the newest draw of a two-cell shelf's cells.
type pairing struct {
	at    time.Time
	g     [2]float64 // left, right
	fresh [2]bool    // not yet taken by the total (0), the right cell (1)
}

// NewSampler returns a Sampler of its own for one more reader of the
// cabinet's scales (hal/sim/remote gives each connection one).
func (c *Cabinet) NewSampler() *Sampler { return &Sampler{c: c, pairs: map[int]*pairing{}} }

// Sample draws a sample of the shelf's scale, as Cabinet.Sample.
func (p *Sampler) Sample(shelf int) (int32, error) { return p.sample(shelf, false) }

// SampleRight draws a sample of a two-cell shelf's right cell, as
// Cabinet.SampleRight.
func (p *Sampler) SampleRight(shelf int) (int32, error) { return p.sample(shelf, true) }

func (p *Sampler) sample(shelf int, right bool) (int32, error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	s, err := p.c.shelf(shelf)
	if err != nil {
		return 0, err
	}
	return p.c.sample(s, p, right)
}

// sample is Sample (or SampleRight) for sampler p with c.mu held.
func (c *Cabinet) sample(s *shelf, p *Sampler, right bool) (int32, error) {
	dev := s.raw
	if right {
		if !s.twoCell {
			return 0, fmt.Errorf("sim: shelf %d: no right load cell: %w", s.num, ErrOneCell)
		}
		dev = s.rawRight
	}
	if !c.powered {
		return 0, fmt.Errorf("sim: %s: no power: %w", dev, hal.ErrClosed)
	}
	switch s.fault {
	case "dead":
		return 0, fmt.Errorf("sim: %s: data not ready: %w", dev, hal.ErrFault)
	case "saturated":
		return scale.RawMax, nil
	}
	c.samples.Add(1)
	now := c.clock()
	var g float64
	if !s.twoCell {
		g = s.grams(now, &c.cfg)[0]
	} else {
		pr := p.pairs[s.num]
		if pr == nil {
			pr = &pairing{}
			p.pairs[s.num] = pr
		}
		k := 0
		if right {
			k = 1
		}
		if dt := now.Sub(pr.at); !pr.fresh[k] || dt < 0 || dt >= c.period {
			pr.g, pr.at, pr.fresh = s.grams(now, &c.cfg), now, [2]bool{true, true}
		}
		pr.fresh[k] = false
		g = pr.g[0] + pr.g[1]
		if right {
			g = pr.g[1]
		}
	}
	v := math.Round(float64(s.cal.Offset) + s.cal.CountsPerGram*g)
	return int32(min(max(v, float64(scale.RawMin)), float64(scale.RawMax))), nil
}

// Samples is how many raw samples the cabinet's load cells have given, to
// every reader: the simulation's own cost, which a hush (hal.Quiet) stops.
func (c *Cabinet) Samples() uint64 { return c.samples.Load() }

// Snapshot is the whole visible state of the cabinet at one moment. Its
// JSON form matches the simulator's GET /api/cabinets/{id}.
type Snapshot struct {
	At        time.Time    `json:"at"`
	Powered   bool         `json:"powered"`
	TempC     float64      `json:"temp_c"`
	Doors     []DoorState  `json:"doors"`
	Shelves   []ShelfState `json:"shelves"`
	Display   DisplayState `json:"display"`
	Indicator string       `json:"indicator"`
}

// DoorState is one door and its lock.
type DoorState struct {
	Door        int  `json:"door"`
	Open        bool `json:"open"`
	Locked      bool `json:"locked"`       // the bolt is out
	Energised   bool `json:"energised"`    // the lock is commanded open
	PendingLock bool `json:"pending_lock"` // released while open: locks when closed
	Jammed      bool `json:"jammed"`
}

// ShelfState is one shelf: what is on it and what its scale reads.
type ShelfState struct {
	Shelf   int            `json:"shelf"`
	Door    int            `json:"door"`
	Items   map[string]int `json:"items"`
	Objects []float64      `json:"objects_g,omitempty"`
	TrueG   float64        `json:"true_g"`           // tray, units and objects
	LeanG   float64        `json:"lean_g,omitempty"` // a shopper leaning on it (Lean)
	ReadG   float64        `json:"read_g"`           // the scale filter's newest grams
	Settled bool           `json:"settled"`
	ReadErr string         `json:"read_error,omitempty"`
	Fault   string         `json:"fault,omitempty"`

	// A shelf on two load cells (ShelfConfig.TwoCell) has these too.
	TwoCell    bool     `json:"two_cell,omitempty"`
	RightG     *float64 `json:"right_g,omitempty"`      // the right cell's share of TrueG
	LeanX      *float64 `json:"lean_x,omitempty"`       // where a shopper leans (LeanAt), while leaning
	ReadRightG *float64 `json:"read_right_g,omitempty"` // the right cell's filter's newest grams
	RightErr   string   `json:"read_right_error,omitempty"`
}

// DisplayState is what the display shows.
type DisplayState struct {
	QR     string `json:"qr"`
	Status string `json:"status"`
}

// Snapshot returns the cabinet's state now.
func (c *Cabinet) Snapshot() Snapshot {
	c.mu.Lock()
	now := c.clock()
	snap := Snapshot{
		At:        now.UTC(),
		Powered:   c.powered,
		TempC:     c.tempC,
		Display:   DisplayState{QR: c.screen.QR, Status: c.screen.Status},
		Indicator: c.signal.String(),
	}
	for _, d := range c.doors {
		d.advanceLock(now, c.cfg.LockReleaseTime)
		snap.Doors = append(snap.Doors, DoorState{
			Door:        d.num,
			Open:        d.open,
			Locked:      d.boltOut,
			Energised:   d.energised,
			PendingLock: d.open && !d.energised && !d.boltOut,
			Jammed:      d.jammed,
		})
	}
	for _, s := range c.shelves {
		st := ShelfState{Shelf: s.num, Door: s.door, Items: map[string]int{}, TrueG: s.loadG, LeanG: s.leanG, Fault: s.fault}
		for sku, us := range s.units {
			st.Items[sku] = len(us)
		}
		for _, o := range s.objects {
			st.Objects = append(st.Objects, o.g)
		}
		if s.twoCell {
			st.TwoCell = true
			st.RightG = ptr(s.rightG())
			if s.leanG > 0 {
				st.LeanX = ptr(s.leanX)
			}
		}
		snap.Shelves = append(snap.Shelves, st)
	}
	c.mu.Unlock()
	// The filters have their own lock; read them outside the cabinet's.
	for i, s := range c.shelves {
		st := &snap.Shelves[i]
		if r, err := s.filter.Reading(); err != nil {
			st.ReadErr = err.Error()
		} else {
			st.ReadG = r.Grams
			st.Settled = r.Settled
		}
		if s.right == nil {
			continue
		}
		if r, err := s.right.Reading(); err != nil {
			st.RightErr = err.Error()
		} else {
			st.ReadRightG = ptr(r.Grams)
		}
	}
	return snap
}

func ptr[T any](v T) *T { return &v }

// DisplayPNG writes what the display shows as a DisplayWidth×DisplayHeight
// PNG.
func (c *Cabinet) DisplayPNG(w io.Writer) error {
	c.mu.Lock()
	s := c.screen
	c.mu.Unlock()
	if err := png.Encode(w, screen.Render(s, DisplayWidth, DisplayHeight)); err != nil {
		return fmt.Errorf("sim: display png: %w", err)
	}
	return nil
}
