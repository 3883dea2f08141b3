package cabsim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bangfu/cabinet/internal/clock"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// The sale-load driver (Options.SaleEvery, cabsim -sale-every) puts a
// realistic sale rate on a fleet and measures what reaches the virtual
// platform. Shoppers come to each cabinet as a Poisson process with mean
// gap SaleEvery; the arrival times are drawn from a PCG seeded from
// Options.Seed, so a seed replays the same arrivals. One scheduler
// goroutine holds every cabinet's next arrival in a min-heap and sleeps
// on one timer until the earliest; a bounded pool of workers runs the
// purchases, so that between purchases a cabinet costs the driver one heap
// entry.
//
// A purchase: the shopper waits (at most loadWait, plus the cabinet's
// receipt time) for the cabinet to show its QR code, scans it with a buyer
// "load-<n>", waits for the door the unlock names to be unlocked, opens it,
// takes 1–3 units from one or two shelves behind it that still hold stock
// (SKUs drawn from the virtual hardware's snapshot), with about a second
// of hands before and after the takes, and shuts the door; the time the
// door shut (UTC) is kept. A shopper who comes while the cabinet's
// previous purchase still runs is skipped; one who finds nothing behind
// the door is counted empty; a purchase that fails (no QR code, the scan
// refused, the door never unlocked) is counted by reason, never fatal.
//
// The platform's OnSale hook matches each sale to its purchase by session
// id: close→platform latency is the sale's arrival at the platform minus
// the close. A closed purchase whose sale has not arrived is pending, and
// lost once the close is loadLostAge old. Every latency is kept, in
// milliseconds, in memory (4 bytes a sale: a day of 5,000 cabinets at a
// sale every 10 minutes is under 3 MB) and the percentiles are exact
// (nearest rank over a sorted copy, made for each report).
const (
	loadWorkers  = 64                    // purchases at once; as many more arrivals may queue
	loadWait     = 10 * time.Second      // the longest wait for a QR code, an unlock
	loadPoll     = 50 * time.Millisecond // how often a waiting shopper looks
	loadHands    = time.Second           // a shopper's hands, ±30 %
	loadLostAge  = 2 * time.Minute       // a sale not arrived this long after the close is lost
	loadLogEvery = 60 * time.Second      // the summary line
	loadStream   = 0x6c6f61642d647276    // the arrivals' PCG stream ("load-drv")
	loadDoor     = 1                     // the door Platform.Scan unlocks
	loadMaxGap   = 20                    // an arrival gap is at most this many SaleEvery
	loadMinGap   = time.Millisecond      // nor less than this
	loadMaxUnits = 3                     // a shopper takes 1…loadMaxUnits units
)

// errNoLoad is GET /api/load's 404 without a sale load.
var errNoLoad = errors.New("cabsim: no sale load runs (start cabsim with -sale-every)")

// checkSaleLoad refuses a sale load Start could not run.
func checkSaleLoad(o Options) error {
	switch {
	case o.SaleEvery < 0:
		return fmt.Errorf("cabsim: sale-every %v: want a positive duration, or 0 for no sale load", o.SaleEvery)
	case o.SaleEvery > 0 && len(o.PlatformKeys) > 0:
		return errors.New("cabsim: a sale load (-sale-every) needs the virtual platform: with an external platform (-platform=external) the simulator can neither scan nor see the sales")
	}
	return nil
}

// loadDriver is the sale-load driver of one Sim. run is its one
// goroutine, which owns the workers; onSale is the platform's OnSale hook.
type loadDriver struct {
	s     *Sim
	every time.Duration
	seed  uint64
	log   *slog.Logger
	hands time.Duration

	halt     chan struct{} // closed by stop
	haltOnce sync.Once
	shoppers atomic.Int64  // numbers the buyers
	busy     []atomic.Bool // by cabinet index: a purchase runs there; set before run's workers start

	mu        sync.Mutex
	running   bool
	startedAt time.Time
	stoppedAt time.Time // when run stopped, zero while it runs
	hb0, hb1  int       // the platform's heartbeat count at the start and the stop
	counts    loadCounts
	failed    map[string]int
	sales     int // new sales the platform received since the start
	unmatched int // of which no purchase of the driver's
	sessions  map[string]*loadPurchase
	lat       []int32 // close→platform, ms
}

type loadCounts struct {
	arrivals, started, completed, skipped, empty, overflow int
}

// loadPurchase is a scanned purchase waiting for its sale.
type loadPurchase struct {
	cabinet    string
	closedAt   time.Time // zero until the door shut
	receivedAt time.Time // the sale's arrival, if it came before closedAt was kept
}

func newLoadDriver(s *Sim) *loadDriver {
	return &loadDriver{s: s, every: s.opts.SaleEvery, seed: uint64(s.opts.Seed), log: s.log, hands: loadHands,
		halt: make(chan struct{}), failed: map[string]int{}, sessions: map[string]*loadPurchase{}}
}

// stop ends the arrivals without stopping the Sim: the purchases in
// progress finish, their sales are still matched, and the report stays
// (tests use it to let every pending sale arrive).
func (d *loadDriver) stop() { d.haltOnce.Do(func() { close(d.halt) }) }

// arrival is a cabinet's next shopper.
type arrival struct {
	at  time.Time
	cab int // index in Sim.cabinets
	n   int // the cabinet's arrivals so far
}

type arrivalHeap []arrival

func (h arrivalHeap) Len() int { return len(h) }
func (h arrivalHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].cab < h[j].cab
}
func (h arrivalHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *arrivalHeap) Push(x any)   { *h = append(*h, x.(arrival)) }
func (h *arrivalHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type loadJob struct {
	cab, n int
}

// gap draws the time to a cabinet's next shopper: exponential with mean
// d.every, capped at loadMaxGap means.
func (d *loadDriver) gap(rng *rand.Rand) time.Duration {
	g := time.Duration(min(rng.ExpFloat64(), loadMaxGap) * float64(d.every))
	return max(g, loadMinGap)
}

// run schedules shoppers until ctx ends or stop, then waits for the purchases in
// progress to stop and logs the last summary.
func (d *loadDriver) run(ctx context.Context) {
	cabs := d.s.cabinets
	d.busy = make([]atomic.Bool, len(cabs))
	rng := rand.New(rand.NewPCG(d.seed, loadStream))
	now := time.Now()
	d.mu.Lock()
	d.running, d.startedAt = true, now
	d.sales, d.unmatched = 0, 0
	d.mu.Unlock()
	hb0 := d.s.Platform.Heartbeats()
	d.mu.Lock()
	d.hb0 = hb0
	d.mu.Unlock()
	d.log.Info("sale load started", "cabinets", len(cabs), "sale_every", d.every, "workers", loadWorkers)

	// A Poisson process is memoryless: each cabinet's first shopper comes
	// an exponential gap after the start, which staggers the fleet.
	h := make(arrivalHeap, 0, len(cabs))
	for i := range cabs {
		h = append(h, arrival{at: now.Add(d.gap(rng)), cab: i})
	}
	heap.Init(&h)

	jobs := make(chan loadJob, loadWorkers)
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for j := range jobs {
				d.purchase(ctx, j)
			}
		})
	}
	defer func() {
		close(jobs)
		wg.Wait()
		hb1 := d.s.Platform.Heartbeats()
		d.mu.Lock()
		d.stoppedAt, d.hb1 = time.Now(), hb1
		d.mu.Unlock()
		d.log.Info("cabsim load: " + d.report(time.Now()).summary())
	}()

	tick := time.NewTicker(loadLogEvery)
	defer tick.Stop()
	timer := time.NewTimer(time.Until(h[0].at))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.halt:
			return
		case <-tick.C:
			d.log.Info("cabsim load: " + d.report(time.Now()).summary())
		case <-timer.C:
			now := time.Now()
			for !h[0].at.After(now) {
				a := &h[0]
				d.dispatch(jobs, loadJob{cab: a.cab, n: a.n})
				// The next one from this one's time, not from now: a late
				// scheduler does not stretch the process.
				a.at = a.at.Add(d.gap(rng))
				a.n++
				heap.Fix(&h, 0)
			}
			timer.Reset(h[0].at.Sub(now))
		}
	}
}

// dispatch hands an arrival to the workers, unless its cabinet is in a
// purchase already (skipped) or every worker is busy and the queue full
// (overflow).
func (d *loadDriver) dispatch(jobs chan<- loadJob, j loadJob) {
	outcome := func(f func(*loadCounts)) {
		d.mu.Lock()
		d.counts.arrivals++
		f(&d.counts)
		d.mu.Unlock()
	}
	if !d.busy[j.cab].CompareAndSwap(false, true) {
		outcome(func(c *loadCounts) { c.skipped++ })
		return
	}
	select {
	case jobs <- j:
		outcome(func(c *loadCounts) { c.started++ })
	default:
		d.busy[j.cab].Store(false)
		outcome(func(c *loadCounts) { c.overflow++ })
	}
}

func (d *loadDriver) fail(ctx context.Context, reason string) {
	if ctx.Err() != nil {
		reason = "interrupted"
	}
	d.mu.Lock()
	d.failed[reason]++
	d.mu.Unlock()
}

// purchase is one shopper at cabinet j.cab.
func (d *loadDriver) purchase(ctx context.Context, j loadJob) {
	defer d.busy[j.cab].Store(false)
	if ctx.Err() != nil {
		d.fail(ctx, "interrupted")
		return
	}
	c := d.s.cabinets[j.cab]
	// Each purchase draws from its own stream, so what a cabinet's n-th
	// shopper takes does not depend on the other cabinets.
	rng := rand.New(rand.NewPCG(d.seed, uint64(j.cab)<<32|uint64(uint32(j.n))))
	if len(stockBehind(c, loadDoor)) == 0 {
		d.mu.Lock()
		d.counts.empty++
		d.mu.Unlock()
		return
	}
	// A shopper waits out the receipt of the sale before (ReceiptS) too.
	ready := loadWait + time.Duration(c.cfg.ReceiptS)*time.Second
	if !pollUntil(ctx, ready, func() bool { return c.mode() == "idle" && c.HW.Snapshot().Display.QR != "" }) {
		d.fail(ctx, "not_ready")
		return
	}
	buyer := msg.Buyer{Ref: fmt.Sprintf("load-%d", d.shoppers.Add(1)), Kind: msg.BuyerPerson}
	sctx, cancel := context.WithTimeout(ctx, loadWait)
	cmd, reply, err := d.s.Scan(sctx, c.ID, buyer, 0, 0)
	cancel()
	switch {
	case err != nil:
		d.fail(ctx, "scan")
		d.log.Debug("sale load: scan failed", "cabinet", c.ID, "err", err)
		return
	case !reply.OK:
		d.fail(ctx, "refused:"+reply.Error)
		d.log.Debug("sale load: scan refused", "cabinet", c.ID, "error", reply.Error, "detail", reply.Detail)
		return
	}
	sid := cmd.SessionID
	d.mu.Lock()
	d.sessions[sid] = &loadPurchase{cabinet: c.ID}
	d.mu.Unlock()
	forget := func(reason string) {
		d.mu.Lock()
		delete(d.sessions, sid)
		d.mu.Unlock()
		d.fail(ctx, reason)
	}
	door := cmd.Door
	if door == 0 {
		door = loadDoor
	}
	opened := pollUntil(ctx, loadWait, func() bool {
		for _, ds := range c.HW.Snapshot().Doors {
			if ds.Door == door && !ds.Locked {
				return c.HW.OpenDoor(door, false) == nil
			}
		}
		return false
	})
	if !opened {
		forget("door_never_unlocked")
		return
	}
	// From here on the door is open: whatever happens, the shopper shuts
	// it, so that the cabinet is not left with an open door.
	if clock.Sleep(ctx, d.handsTime(rng)) == nil {
		for _, t := range pickBasket(rng, stockBehind(c, door)) {
			if err := c.HW.Take(t.shelf, t.sku, t.qty); err != nil {
				d.log.Warn("sale load: take", "cabinet", c.ID, "shelf", t.shelf, "sku", t.sku, "err", err)
			}
		}
		clock.Sleep(ctx, d.handsTime(rng))
	}
	closedAt := time.Now().UTC()
	if err := c.HW.CloseDoor(door); err != nil {
		forget("door_close")
		d.log.Warn("sale load: close", "cabinet", c.ID, "err", err)
		return
	}
	if ctx.Err() != nil {
		forget("interrupted")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts.completed++
	p := d.sessions[sid]
	if p == nil { // cannot happen: only this purchase forgets its session
		return
	}
	p.closedAt = closedAt
	if !p.receivedAt.IsZero() {
		d.matchLocked(sid, p)
	}
}

func (d *loadDriver) handsTime(rng *rand.Rand) time.Duration {
	return time.Duration(float64(d.hands) * (0.7 + 0.6*rng.Float64()))
}

// onSale is the platform's OnSale hook: it matches a sale to its purchase.
func (d *loadDriver) onSale(rec platform.SaleRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sales++
	p := d.sessions[rec.Sale.SessionID]
	if p == nil {
		d.unmatched++
		return
	}
	p.receivedAt = rec.ReceivedAt
	if !p.closedAt.IsZero() {
		d.matchLocked(rec.Sale.SessionID, p)
	}
}

// matchLocked keeps a purchase's latency; d.mu is held.
func (d *loadDriver) matchLocked(sid string, p *loadPurchase) {
	ms := p.receivedAt.Sub(p.closedAt).Milliseconds()
	d.lat = append(d.lat, int32(min(max(ms, 0), math.MaxInt32)))
	delete(d.sessions, sid)
}

// pollUntil polls cond every loadPoll for at most d; false when it never
// held or ctx ended.
func pollUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || clock.Sleep(ctx, loadPoll) != nil {
			return false
		}
	}
}

// shelfStock is the units of each SKU on one shelf.
type shelfStock struct {
	shelf int
	items map[string]int
}

// stockBehind lists the shelves behind a door that hold something, in
// shelf order, from the virtual hardware's snapshot.
func stockBehind(c *Cabinet, door int) []shelfStock {
	var out []shelfStock
	for _, sh := range c.HW.Snapshot().Shelves {
		if sh.Door != door {
			continue
		}
		items := map[string]int{}
		for sku, n := range sh.Items {
			if n > 0 {
				items[sku] = n
			}
		}
		if len(items) > 0 {
			out = append(out, shelfStock{shelf: sh.Shelf, items: items})
		}
	}
	return out
}

type loadTake struct {
	shelf int
	sku   string
	qty   int
}

// pickBasket chooses what a shopper takes: 1–3 units, from one or two of
// the shelves, each unit a SKU still on its shelf.
func pickBasket(rng *rand.Rand, shelves []shelfStock) []loadTake {
	if len(shelves) == 0 {
		return nil
	}
	rng.Shuffle(len(shelves), func(i, j int) { shelves[i], shelves[j] = shelves[j], shelves[i] })
	shelves = shelves[:min(len(shelves), 1+rng.IntN(2))]
	type unit struct {
		shelf int
		sku   string
	}
	var left []unit // one entry per SKU with units left
	remain := map[unit]int{}
	for _, sh := range shelves {
		for _, sku := range slices.Sorted(maps.Keys(sh.items)) {
			u := unit{sh.shelf, sku}
			left = append(left, u)
			remain[u] = sh.items[sku]
		}
	}
	taken := map[unit]int{}
	for range 1 + rng.IntN(loadMaxUnits) {
		if len(left) == 0 {
			break
		}
		i := rng.IntN(len(left))
		u := left[i]
		taken[u]++
		if remain[u]--; remain[u] == 0 {
			left = slices.Delete(left, i, i+1)
		}
	}
	var out []loadTake
	for u, n := range taken {
		out = append(out, loadTake{shelf: u.shelf, sku: u.sku, qty: n})
	}
	slices.SortFunc(out, func(a, b loadTake) int {
		if a.shelf != b.shelf {
			return a.shelf - b.shelf
		}
		return strings.Compare(a.sku, b.sku)
	})
	return out
}

// LoadReport is GET /api/load: what the sale-load driver did and measured
// since it started.
type LoadReport struct {
	StartedAt          time.Time     `json:"started_at"`
	ElapsedS           float64       `json:"elapsed_s"`
	Cabinets           int           `json:"cabinets"`
	SaleEveryS         float64       `json:"sale_every_s"`
	Purchases          LoadPurchases `json:"purchases"`
	SalesReceived      int           `json:"sales_received"`
	SalesUnmatched     int           `json:"sales_unmatched"`
	SalesPerS          float64       `json:"sales_per_s"`
	HeartbeatsReceived int           `json:"heartbeats_received"`
	HeartbeatsPerS     float64       `json:"heartbeats_per_s"`
	LatencyMS          LoadLatency   `json:"latency_ms"`
	Pending            int           `json:"pending"`
	Lost               int           `json:"lost"`
}

// LoadPurchases counts the shoppers: every arrival was started, skipped
// or overflowed; every started purchase is completed, empty, failed or
// still in progress.
type LoadPurchases struct {
	Arrivals   int            `json:"arrivals"`
	Started    int            `json:"started"`
	Completed  int            `json:"completed"`
	Skipped    int            `json:"skipped"`
	Empty      int            `json:"empty"`
	Overflow   int            `json:"overflow"`
	InProgress int            `json:"in_progress"`
	Failed     map[string]int `json:"failed"`
}

// LoadLatency is close→platform latency in milliseconds over the sales
// matched (n), exact nearest-rank percentiles.
type LoadLatency struct {
	P50 int32 `json:"p50"`
	P90 int32 `json:"p90"`
	P99 int32 `json:"p99"`
	Max int32 `json:"max"`
	N   int   `json:"n"`
}

// LoadReport returns the sale-load driver's report; false when no driver
// runs (Options.SaleEvery 0).
func (s *Sim) LoadReport() (LoadReport, bool) {
	if s.load == nil {
		return LoadReport{}, false
	}
	return s.load.report(time.Now()), true
}

func (d *loadDriver) report(now time.Time) LoadReport {
	hbs := d.s.Platform.Heartbeats() // not under d.mu: the platform calls onSale
	d.mu.Lock()
	r := LoadReport{StartedAt: d.startedAt.UTC(), Cabinets: len(d.s.cabinets), SaleEveryS: d.every.Seconds(),
		SalesReceived: d.sales, SalesUnmatched: d.unmatched, HeartbeatsReceived: hbs - d.hb0}
	// Once stopped, the elapsed time and the heartbeats stand still (the
	// sales of the last purchases are still counted as they arrive).
	end := now
	switch {
	case !d.running:
		r.StartedAt, r.HeartbeatsReceived = time.Time{}, 0
	case !d.stoppedAt.IsZero():
		end, r.HeartbeatsReceived = d.stoppedAt, d.hb1-d.hb0
	}
	c := d.counts
	r.Purchases = LoadPurchases{Arrivals: c.arrivals, Started: c.started, Completed: c.completed, Skipped: c.skipped,
		Empty: c.empty, Overflow: c.overflow, Failed: maps.Clone(d.failed)}
	failed := 0
	for _, n := range d.failed {
		failed += n
	}
	r.Purchases.InProgress = c.started - c.completed - c.empty - failed
	for _, p := range d.sessions {
		switch {
		case p.closedAt.IsZero():
		case now.Sub(p.closedAt) > loadLostAge:
			r.Lost++
		default:
			r.Pending++
		}
	}
	lat := slices.Clone(d.lat)
	d.mu.Unlock()

	if !r.StartedAt.IsZero() {
		r.ElapsedS = round3(end.Sub(r.StartedAt).Seconds())
	}
	if r.ElapsedS > 0 {
		r.SalesPerS = round3(float64(r.SalesReceived) / r.ElapsedS)
		r.HeartbeatsPerS = round3(float64(r.HeartbeatsReceived) / r.ElapsedS)
	}
	slices.Sort(lat)
	r.LatencyMS = LoadLatency{N: len(lat), P50: rank(lat, 0.50), P90: rank(lat, 0.90), P99: rank(lat, 0.99)}
	if len(lat) > 0 {
		r.LatencyMS.Max = lat[len(lat)-1]
	}
	return r
}

// rank is the nearest-rank q-quantile of sorted v (0 for none).
func rank(v []int32, q float64) int32 {
	if len(v) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[min(max(i, 0), len(v)-1)]
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// summary is the report in one line.
func (r LoadReport) summary() string {
	p := r.Purchases
	var b strings.Builder
	fmt.Fprintf(&b, "%d cabinets, a sale every %v, %.0f s: shoppers %d (started %d, completed %d, skipped %d, empty %d, overflow %d, in progress %d",
		r.Cabinets, time.Duration(r.SaleEveryS*float64(time.Second)), r.ElapsedS, p.Arrivals, p.Started, p.Completed,
		p.Skipped, p.Empty, p.Overflow, p.InProgress)
	failed := 0
	for _, n := range p.Failed {
		failed += n
	}
	fmt.Fprintf(&b, ", failed %d", failed)
	for _, k := range slices.Sorted(maps.Keys(p.Failed)) {
		fmt.Fprintf(&b, " %s=%d", k, p.Failed[k])
	}
	fmt.Fprintf(&b, "); sales %d (%.2f/s); heartbeats %d (%.2f/s); close→platform p50 %d ms, p90 %d ms, p99 %d ms, max %d ms (n %d); pending %d, lost %d",
		r.SalesReceived, r.SalesPerS, r.HeartbeatsReceived, r.HeartbeatsPerS,
		r.LatencyMS.P50, r.LatencyMS.P90, r.LatencyMS.P99, r.LatencyMS.Max, r.LatencyMS.N, r.Pending, r.Lost)
	return b.String()
}
