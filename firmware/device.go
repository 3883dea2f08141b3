// Package firmware is the cabinet's brain: the session state machine, the
// wiring of hardware, ledger, catalog, payment checks and telemetry, and
// the recovery of an interrupted session at start-up.
//
// Serve (serve.go) is one power-up: it builds a Device with New, the
// composition root, runs it beside the hardware, and closes it. The device
// binary and the simulator's in-process cabinets both go through it.
//
// It sees hardware only through hal's interfaces, the platform only through
// telemetry, and money only through payment. Sub-packages: config (typed
// settings), ledger (the durable record), catalog (certified catalog and
// planogram cache), infer (basket inference). firmware/cmd/cabinet is the
// device binary.
package firmware

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bangfu/cabinet/firmware/catalog"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/firmware/ota"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/internal/clock"
	"github.com/bangfu/cabinet/internal/logx"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// FW is the firmware version reported in sales, state and heartbeats. A
// variable so that a release (and the update tests) can stamp another with
// -ldflags "-X github.com/bangfu/cabinet/firmware.FW=0.4.0".
var FW = "0.3.0"

// DrainSaleRate bounds how many sales a second the cabinet publishes from
// its outbox: a backlog queued during an outage goes out at this pace,
// behind replies and alarms, so a fleet reconnecting at once does not
// flood the platform.
const DrainSaleRate = 100

// ErrReboot is returned by Run after a platform `reboot` command; the
// supervisor (systemd, the simulator) starts the firmware again.
var ErrReboot = errors.New("firmware: reboot requested")

// Opts wires a Device.
type Opts struct {
	Config    config.Config
	Hardware  hal.Cabinet
	DeviceKey ed25519.PrivateKey // the cabinet's own signing key
	// Logger is rate-limited with logx (wrapped, on Now's clock, unless it
	// already is): a standing fault logs a line a minute, not a tick.
	Logger *slog.Logger
	// Clock is the device loop's time: its tick, heartbeat and prune
	// timers, the lock's feedback polling and, unless Now is set, every
	// timestamp (default clock.Real). Tests run Run on a fake one.
	Clock clock.Clock
	Now   func() time.Time // default Clock.Now
	Tick  time.Duration    // state machine poll period, default 50ms
	// SettleMin is the least time after the door closes before a reading
	// may count as the "after" weight (default 300ms).
	SettleMin time.Duration
	// Hooks for measurement; nil when unused. They run on the device loop.
	// OnUnlock gets when the unlock arrived, when the lock was energised
	// and when its feedback showed the bolt retracted.
	OnUnlock func(received, energised, retracted time.Time)
	OnSale   func(s msg.Sale)
	// OnTick, when set, is called on the device loop after every tick
	// the state machine completes: a loop stuck on hardware or storage
	// stops calling it (the service watchdog's keep-alive). On hardware
	// hushed while idle (hal.Quiet, a simulation) ticks come as little as
	// every 30 s; a real board is never hushed.
	OnTick func()
	// Dial, when set, opens the broker connections (telemetry.Opts.Dial):
	// the simulator's network switch for in-process cabinets.
	Dial func(ctx context.Context) (net.Conn, error)
	// Updater runs signed over-the-air updates (update.go, firmware/ota);
	// nil (in-process mode) refuses the update command.
	Updater *ota.Updater
	// LedgerMaxBytes caps the ledger file (default ledger.MaxFileBytes);
	// tests fill a small one to see a full disk.
	LedgerMaxBytes int
}

// Status is a snapshot of the device for the simulator and diagnostics.
type Status struct {
	Mode             string          `json:"mode"`
	Session          *ledger.Session `json:"session"`
	CatalogVersion   int64           `json:"catalog_version"`
	PlanogramVersion int64           `json:"planogram_version"`
	OutboxDepth      int             `json:"outbox_depth"`
	Counters         msg.Counters    `json:"counters"`
	Connected        bool            `json:"connected"`
	BadMessages      uint64          `json:"bad_messages"`
	Warnings         []string        `json:"warnings,omitempty"` // planogram lint
	Faults           []string        `json:"faults,omitempty"`
	// Stock is the known units per shelf and SKU; a pair absent is unknown.
	Stock ledger.Stock `json:"stock,omitempty"`
}

// Device is one cabinet's firmware: its parts, wired once by New (the
// composition root), the sensors' view its Run goroutine keeps, and the
// state of the cabinet's duties. The behaviour is in the methods: the
// session (machine.go, session.go), messages (inbound.go), restock,
// locks, revocation, temperature, display.
type Device struct {
	parts
	sensed

	// Owned by the Run goroutine.
	sess        *ledger.Session
	forced      map[int]bool // door_forced raised for the current opening
	faulted     map[int]bool // scale_fault raised and not cleared
	shown       hal.Screen
	disp        displayState // the receipt shown and the indicator's signal (display.go)
	started     time.Time
	warnings    []string
	pendingPlan *msg.Planogram   // a verified planogram that came before any catalog
	hbC         <-chan time.Time // the next heartbeat; a config command re-arms it
	depth       int              // outbox depth, refreshed by publishStatus
	depthAt     time.Time
	direct      chan directMsg
	locks       map[int]lockWatch
	temp        thermo

	cmd   commandGuard // what commands must be newer than (trust.go)
	hush  hushState    // the hardware's hush while idle (quiet.go)
	store storageWatch // the ledger's faults and failing writes (session.go)
	cold  coldChain    // the air out of its range (temperature.go)
	stk   stockState   // stock levels and revoked goods held (revoke.go)

	us    updateState    // a firmware update in progress (update.go)
	updWG sync.WaitGroup // its download

	mu     sync.Mutex
	status Status
	bad    uint64
}

// parts are what New wires from the config and the hardware, fixed for
// the Device's life: nothing but New assigns them, except cfg, which a
// platform config command replaces with its live settings applied.
type parts struct {
	cfg     config.Config // replaced only by a platform config command (live settings)
	hw      hal.Cabinet
	log     *slog.Logger
	now     func() time.Time
	clk     clock.Clock
	tick    time.Duration
	settle  time.Duration
	onUnl   func(received, energised, retracted time.Time)
	onSale  func(s msg.Sale)
	onTick  func()
	topics  msg.Topics
	keys    msg.KeyRing
	signer  msg.Signer
	devPub  ed25519.PublicKey
	ledger  *ledger.Ledger
	catalog *catalog.Store
	link    *telemetry.Link
	qr      *payment.QR
	auth    payment.Authorizer
	badLog  limitedLog
	upd     *ota.Updater
}

// sensed is what the doors and scales said at the last sample (Run
// goroutine only).
type sensed struct {
	readings     map[int]hal.Reading
	readErr      map[int]error
	right        map[int]hal.Reading // a two-cell shelf's right cell, when it reads
	rightSettled map[int]hal.Reading
	settled      map[int]hal.Reading // last settled reading per shelf
	baseline     map[int]float64     // idle weight per shelf, for the locked-weight alarm
	doorClosed   map[int]bool
	touch        *touchWatch // the running session's shelves, watched (touch.go)
}

// New opens the device's files in cfg.DataDir and wires its parts. It does
// not touch the hardware beyond what the hal constructors did.
func New(o Opts) (*Device, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if len(o.DeviceKey) != ed25519.PrivateKeySize {
		return nil, errors.New("firmware: no device key")
	}
	if len(o.Hardware.Doors) == 0 || len(o.Hardware.Shelves) == 0 || o.Hardware.Display == nil {
		return nil, errors.New("firmware: hardware needs at least one door, one shelf and a display")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	if o.Now == nil {
		o.Now = o.Clock.Now
	}
	if o.Tick == 0 {
		o.Tick = 50 * time.Millisecond
	}
	if o.SettleMin == 0 {
		o.SettleMin = 300 * time.Millisecond
	}
	cfg := o.Config
	log := logx.Wrap(o.Logger, logx.Options{Every: time.Minute, Now: o.Now}).With("cabinet", cfg.CabinetID)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("firmware: data dir: %w", err)
	}
	// A ledger that cannot be trusted is set aside, never replaced in
	// place; a catalog file beside a missing ledger means the ledger was
	// lost, not that this is the first start.
	_, catErr := os.Stat(filepath.Join(cfg.DataDir, "catalog.db"))
	led, err := ledger.OpenChecked(filepath.Join(cfg.DataDir, "ledger.db"), ledger.Opts{
		MaxBytes: o.LedgerMaxBytes, Existed: catErr == nil, Now: o.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("firmware: storage: %w", err)
	}
	trust, err := led.Trust()
	if err != nil {
		led.Close()
		return nil, err
	}
	keys, err := keyRing(cfg.PlatformKeys, trust)
	if err != nil {
		led.Close()
		return nil, err
	}
	cat, err := catalog.Open(filepath.Join(cfg.DataDir, "catalog.db"), log)
	if err != nil {
		led.Close()
		return nil, err
	}
	topics := msg.Topics{Prefix: cfg.TopicPrefix, Cabinet: cfg.CabinetID}
	link, err := telemetry.New(telemetry.Opts{
		Broker: cfg.Broker, TLS: cfg.TLS.Files(), ClientID: cfg.CabinetID, Topics: topics, FW: FW, Logger: log,
		Subscribe: []string{topics.Cmd(), topics.Ack(), topics.Planogram(), topics.Catalog()},
		Now:       o.Now, Dial: o.Dial,
	})
	if err != nil {
		led.Close()
		cat.Close()
		return nil, err
	}
	qr, err := payment.NewQR(cfg.CabinetID, o.DeviceKey, &payment.QROpts{Base: cfg.QRBase, Rotate: cfg.QRRotate()})
	if err != nil {
		led.Close()
		cat.Close()
		return nil, err
	}
	d := &Device{
		parts: parts{
			cfg: cfg, hw: o.Hardware, log: log, clk: o.Clock, now: o.Now, tick: o.Tick, settle: o.SettleMin,
			onUnl: o.OnUnlock, onSale: o.OnSale, onTick: o.OnTick,
			topics: topics, keys: keys,
			signer: msg.Signer{Kid: cfg.CabinetID, Key: o.DeviceKey},
			devPub: o.DeviceKey.Public().(ed25519.PublicKey),
			ledger: led, catalog: cat, link: link, qr: qr,
			auth:   payment.Authorizer{CabinetID: cfg.CabinetID},
			badLog: limitedLog{log}, upd: o.Updater,
		},
		sensed: sensed{
			readings: map[int]hal.Reading{}, readErr: map[int]error{}, settled: map[int]hal.Reading{},
			right: map[int]hal.Reading{}, rightSettled: map[int]hal.Reading{},
			baseline: map[int]float64{}, doorClosed: map[int]bool{},
		},
		cmd:    commandGuard{trust: trust, newestIssued: trust.NewestIssued},
		forced: map[int]bool{}, faulted: map[int]bool{},
		direct: make(chan directMsg, 16), locks: map[int]lockWatch{},
	}
	return d, nil
}

// limitedLog logs a repeated condition under a logx key: at most a line a
// minute per key, the next one counting what was suppressed.
type limitedLog struct{ log *slog.Logger }

// Warn logs msg under key.
func (l limitedLog) Warn(key, msg string, args ...any) {
	l.log.Warn(msg, append([]any{logx.Limit(key)}, args...)...)
}

// PublicKey is the cabinet's signing key, which the platform registers.
func (d *Device) PublicKey() ed25519.PublicKey { return d.devPub }

// Ledger exposes the ledger to tests and tools.
func (d *Device) Ledger() *ledger.Ledger { return d.ledger }

// Close closes the device's files. Call it after Run has returned.
func (d *Device) Close() error {
	return errors.Join(d.ledger.Close(), d.catalog.Close())
}

// Status returns the latest snapshot.
func (d *Device) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	s.BadMessages = d.bad
	s.Connected = d.link.Connected() // live: a hushed cabinet ticks rarely (quiet.go)
	return s
}

// Run drives the cabinet until ctx ends (returning nil) or the platform
// asks for a reboot (ErrReboot). It owns the link and the outbox drain and
// stops both before returning; on return every lock is at its safe level.
func (d *Device) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = d.link.Run(ctx) }() // Run returns nil on ctx end; errors are logged inside
	drain := &telemetry.Drainer{
		Outbox: d.ledger.Outbox, Link: d.link, Signer: d.signer,
		AckMode: d.cfg.AckMode, AckWait: d.cfg.AckWait(), Logger: d.log, SaleRate: DrainSaleRate, Clock: d.clk,
	}
	go func() { defer wg.Done(); _ = drain.Run(ctx) }()
	wg.Add(2)
	go func() { defer wg.Done(); d.runDirect(ctx) }()
	go func() { defer wg.Done(); d.runThermometer(ctx) }()
	defer func() {
		cancel()
		wg.Wait()
		d.updWG.Wait()
		d.halt()
	}()

	if err := d.recover(ctx); err != nil {
		return err
	}
	// One-shot timers on d.clk, re-armed as they fire: a fake clock moves
	// the loop as it moves the hardware.
	tickC := d.clk.After(d.tick)
	d.hbC = d.clk.After(d.cfg.Heartbeat())
	pruneC := d.clk.After(time.Hour)
	for {
		select {
		case <-ctx.Done():
			return nil
		case in := <-d.link.Inbound():
			if d.hush.ended != nil {
				// Sample again before acting: a hush vouches for the
				// readings only up to the moment it ends.
				d.wake()
				d.sample(ctx)
			}
			if d.hush.slow {
				tickC = d.clk.After(d.tick) // a message may start a session: tick again
				d.hush.slow = false
			}
			if err := d.handle(ctx, in); err != nil {
				return err
			}
		case <-d.hush.ended: // the world changed: back to ticking at once
			d.hush.ended = nil
			tickC = d.clk.After(0)
		case <-tickC:
			d.step(ctx)
			if d.onTick != nil {
				d.onTick()
			}
			if err := d.updateTick(ctx); err != nil {
				return err
			}
			next := d.pace(d.now())
			d.hush.slow = next > d.tick
			tickC = d.clk.After(next)
		case r := <-d.fetchDone():
			d.updateFetched(ctx, r)
		case <-d.hbC:
			d.heartbeat(ctx)
			d.hbC = d.clk.After(d.cfg.Heartbeat())
		case <-pruneC:
			now := d.now()
			if n, err := d.ledger.Prune(now.Add(-time.Hour), now.AddDate(0, 0, -d.cfg.LedgerDays)); err != nil {
				d.log.Error("ledger prune", "err", err)
			} else if n > 0 {
				d.log.Info("ledger pruned", "sales", n)
			}
			pruneC = d.clk.After(time.Hour)
		}
	}
}

// runDirect publishes what could not go through the outbox (see alarm).
func (d *Device) runDirect(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-d.direct:
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := d.link.Publish(pctx, m.topic, 1, false, m.body); err != nil {
				d.log.Warn("direct publish", "topic", m.topic, "err", err)
			}
			cancel()
		}
	}
}

// halt puts every lock at its safe level.
func (d *Device) halt() {
	for _, door := range d.hw.Doors {
		if err := door.Lock.Halt(); err != nil {
			d.log.Error("lock halt", "door", door.Number, "err", err)
		}
	}
}

// recover finishes whatever the last run left, before anything new starts.
func (d *Device) recover(ctx context.Context) error {
	// This run's start: uptime counts from it, and a session's settle
	// timeout from the later of its door closing and it.
	d.started = d.now()
	// Safe state first: a lock energised at a power cut must not stay so.
	for _, door := range d.hw.Doors {
		if err := door.Lock.Release(ctx); err != nil {
			d.log.Error("release lock at start-up", "door", door.Number, "err", err)
		}
	}
	if f, err := d.ledger.Fault(); err != nil || f != nil {
		d.store.fault = f
		detail := map[string]any{}
		if f != nil {
			detail = map[string]any{"kind": f.Kind, "aside": filepath.Base(f.Aside), "err": f.Err}
			d.log.Error("storage fault: shopping refused until a technician runs `cabinet storage clear`", "fault", f.String())
		} else {
			detail["err"] = err.Error()
		}
		d.alarm(msg.AlarmStorageFault, msg.SevCritical, detail)
	}
	s, err := d.ledger.Session()
	switch {
	case errors.Is(err, ledger.ErrNoSession):
		s = nil
	case err != nil:
		d.log.Error("ledger session unreadable", "err", err)
		d.alarm(msg.AlarmStorageFault, msg.SevCritical, map[string]any{"err": err.Error()})
		return nil
	}
	detail := map[string]any{"fw": FW}
	if s != nil {
		detail["session"] = s.ID
		detail["state"] = s.State
		d.log.Info("recovering session", "session", s.ID, "state", s.State)
	}
	d.alarm(msg.AlarmPowerRestored, msg.SevInfo, detail)
	d.sess = s
	d.checkRevoked() // revoked goods held, and products expired while we were down
	d.sample(ctx)
	if s == nil {
		return nil
	}
	// Recovery is the state machine fed a restart: a door opened while we
	// were down puts the shopper in; a closed one inside the unlock window
	// is unlocked again (answering an unlock the cut left unanswered); past
	// the window, the next tick judges it like a live session's expiry
	// (cancel, or weigh the goods that moved) once the scales read.
	d.feed(ctx, s, fsm.Event{Kind: fsm.Restarted, Facts: fsm.Facts{DoorClosed: d.doorClosed[s.Door]}}, d.now(), cause{})
	return nil
}

func (d *Device) lockFor(door int) hal.Lock {
	for _, dr := range d.hw.Doors {
		if dr.Number == door {
			return dr.Lock
		}
	}
	return nil
}

// sample reads every door and scale once.
func (d *Device) sample(ctx context.Context) {
	for _, door := range d.hw.Doors {
		closed, err := door.Sensor.Closed(ctx)
		if err != nil {
			d.badLog.Warn(fmt.Sprintf("door%d", door.Number), "door sensor", "door", door.Number, "err", err)
			continue
		}
		if l, ok := door.Sensor.(hal.DoorLatch); ok {
			// Read (and clear) the latch on every tick. A door that opened
			// and shut again since the last tick counts as open for this
			// one: the session sees the opening, and the next tick sees it
			// shut and judges the sale at once.
			if opened, err := l.Opened(ctx); err == nil && opened && closed {
				d.log.Debug("door opened and shut between two ticks", "door", door.Number)
				closed = false
			}
		}
		d.doorClosed[door.Number] = closed
	}
	for _, sh := range d.hw.Shelves {
		r, err := sh.Scale.Reading()
		d.readErr[sh.Number] = err
		if err != nil {
			continue
		}
		if r.Samples == 0 {
			// No sample yet (a scale just started): its zero grams are
			// not a weight.
			delete(d.readings, sh.Number)
			continue
		}
		d.readings[sh.Number] = r
		if r.Settled {
			d.settled[sh.Number] = r
		}
		d.sampleRight(sh)
	}
}

// sampleRight reads a two-cell shelf's right cell. It is evidence on top of
// the total: a right cell that fails or has no sample yet only leaves the
// shelf judged on its total.
func (d *Device) sampleRight(sh hal.Shelf) {
	if sh.Right == nil {
		return
	}
	r, err := sh.Right.Reading()
	if err != nil || r.Samples == 0 {
		delete(d.right, sh.Number)
		if err != nil {
			d.badLog.Warn(fmt.Sprintf("right%d", sh.Number), "right load cell", "shelf", sh.Number, "err", err)
		}
		return
	}
	d.right[sh.Number] = r
	if r.Settled {
		d.rightSettled[sh.Number] = r
	}
}

// step advances the state machine by one tick.
func (d *Device) step(ctx context.Context) {
	d.sample(ctx)
	d.sampleTouches()
	now := d.now()
	d.refreshRevoked()
	d.checkScales()
	d.checkStorage(now)
	if s := d.sess; s != nil {
		d.advance(ctx, s, now)
	}
	d.checkDoors()
	d.checkLocks(ctx, now)
	d.checkTemperature(now)
	d.checkIdleWeights()
	d.refreshDisplay(ctx, now)
	d.publishStatus()
}

// afterReady reports whether every shelf behind the session's door has a
// settled reading taken wholly after the door closed.
func (d *Device) afterReady(s *ledger.Session, now time.Time) (ready, timedOut bool) {
	if now.Sub(s.ClosedAt) < d.settle {
		return false, false
	}
	// After a restart the scales need their own time to fill a window:
	// the timeout runs from whichever came later, the close or the start.
	timedOut = now.Sub(later(s.ClosedAt, d.started)) > d.cfg.SettleTimeout()
	if d.readingsPending(s.Door) {
		// A scale that has not read yet is neither evidence nor a fault:
		// wait (a dead one turns into a fault after its no-data time).
		return false, false
	}
	for _, sh := range d.hw.Shelves {
		if sh.Door != s.Door {
			continue
		}
		r, ok := d.readings[sh.Number]
		if d.readErr[sh.Number] != nil || !ok || !r.Settled || r.Oldest.Before(s.ClosedAt) {
			return false, timedOut
		}
	}
	return true, false
}

func (d *Device) transition(s *ledger.Session, state fsm.State, mutate func(), items ...ledger.Item) {
	prev := *s
	if mutate != nil {
		mutate()
	}
	s.State = state
	if err := d.ledger.SaveSession(s, nil, items...); err != nil {
		*s = prev
		d.log.Error("persist session", logx.Limit("persist session"), "session", s.ID, "state", state, "err", err)
		return
	}
	d.log.Info("session", "session", s.ID, "state", state)
}

// heartbeat publishes the cabinet's health at QoS 0 (lost ones do not
// matter: the counters in the next one are cumulative).
func (d *Device) heartbeat(ctx context.Context) {
	if !d.link.Connected() {
		return
	}
	st := d.Status()
	hb := msg.Heartbeat{
		At: msg.At(d.now()), UptimeS: int64(d.now().Sub(d.started).Seconds()), FW: FW,
		Mode: st.Mode, Door: "closed", OutboxDepth: st.OutboxDepth,
		CatalogVersion: st.CatalogVersion, PlanogramVersion: st.PlanogramVersion, Counters: st.Counters,
	}
	for _, door := range d.hw.Doors {
		if !d.doorClosed[door.Number] {
			hb.Door = "open"
		}
	}
	for _, sh := range d.hw.Shelves {
		r := d.readings[sh.Number]
		hb.Shelves = append(hb.Shelves, msg.HeartbeatShelf{Shelf: sh.Number, OK: d.readErr[sh.Number] == nil, Grams: round1(r.Grams)})
	}
	hb.TempC = d.heartbeatTemp()
	body, err := d.signer.Seal(hb)
	if err != nil {
		d.log.Error("seal heartbeat", "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.link.Publish(pctx, d.topics.Heartbeat(), 0, false, body); err != nil {
		d.log.Debug("heartbeat", "err", err)
	}
}

func round1(v float64) float64 {
	if v < 0 {
		return -round1(-v)
	}
	return float64(int64(v*10+0.5)) / 10
}

// mode is what the heartbeat and display report.
func (d *Device) mode() string {
	if d.outOfService() != "" {
		if d.sess == nil {
			return msg.ModeOutOfService
		}
	}
	if d.sess != nil {
		if d.sess.Kind == ledger.KindRestock {
			return msg.ModeRestock
		}
		return msg.ModeShopping
	}
	return msg.ModeIdle
}

// outOfService says why the cabinet cannot take shoppers, or "". It is a
// query: it raises, clears and writes nothing.
func (d *Device) outOfService() string {
	if f := d.store.fault; f != nil {
		return "storage fault: " + f.String()
	}
	if err := d.ledger.WriteErr(); err != nil {
		return "storage fault: writes fail: " + err.Error()
	}
	if why := d.lockFaulty(); why != "" {
		return why
	}
	for _, sh := range d.hw.Shelves {
		if err := d.readErr[sh.Number]; err != nil {
			return fmt.Sprintf("shelf %d scale fault: %v", sh.Number, err)
		}
	}
	if _, ok := d.catalog.PlanogramVersion(); !ok {
		return "no planogram"
	}
	if ok, why := d.clockTrusted(d.now()); !ok {
		return why
	}
	return d.revokedReason() // last: restockOpen lets staff in for this one
}

func (d *Device) publishStatus() {
	// Depth walks the outbox bucket: once a second is plenty for a status.
	if now := d.now(); now.Sub(d.depthAt) >= time.Second {
		d.depth, _ = d.ledger.Outbox.Depth() // a read error shows as 0; the drain logs it
		d.depthAt = now
	}
	depth := d.depth
	counters, _ := d.ledger.Counters()
	st := Status{
		Mode: d.mode(), CatalogVersion: d.catalog.Version(),
		OutboxDepth: depth, Counters: counters, Connected: d.link.Connected(), Warnings: d.warnings,
		Stock: d.stockStatus(d.now()),
	}
	if p, ok := d.catalog.Planogram(); ok {
		st.PlanogramVersion = p.Version
	}
	if d.sess != nil {
		c := *d.sess
		st.Session = &c
	}
	if why := d.outOfService(); why != "" {
		st.Faults = append(st.Faults, why)
	}
	d.mu.Lock()
	d.status = st
	d.mu.Unlock()
}

// readingsPending reports whether a shelf behind door has neither a reading
// nor a fault yet, as just after start-up; a scale that never reads turns
// into a fault after its no-data time, so this does not last.
func (d *Device) readingsPending(door int) bool {
	for _, sh := range d.hw.Shelves {
		if sh.Door != door {
			continue
		}
		if _, ok := d.readings[sh.Number]; !ok && d.readErr[sh.Number] == nil {
			return true
		}
	}
	return false
}

// weightsMoved reports whether any shelf behind the session's door reads
// differently from its "before" weight by more than ForeignMinG.
func (d *Device) weightsMoved(s *ledger.Session) bool {
	for _, b := range s.Before {
		sh := d.shelf(b.Shelf)
		if sh == nil || sh.Door != s.Door {
			continue
		}
		r, ok := d.readings[b.Shelf]
		if ok && d.readErr[b.Shelf] == nil && math.Abs(r.Grams-b.Grams) > d.cfg.ForeignMinG {
			return true
		}
	}
	return false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
