package firmware

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/internal/clocktest"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/simulator/broker"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// virtualCabinet is a Device running Run on one fake clock together with
// its virtual cabinet (the load cells' sampling and the scale filters),
// behind a real MQTT broker (the embedded one) where the test plays the
// platform. The test moves the clock a tick at a time and waits for the
// device loop to finish that tick, so what happens is fixed by virtual
// time, not by how loaded the machine is.
type virtualCabinet struct {
	t      *testing.T
	clk    *clocktest.Clock
	hw     *sim.Cabinet
	d      *Device
	b      *broker.Broker
	plat   platformKey
	tick   time.Duration
	timers int // timers waiting on clk while everything idles
	mu     sync.Mutex
	sales  []msg.Sale
	alarms []msg.Alarm
	// unlocked and published are signalled when the device has answered an
	// unlock and when a sale reached the broker: the steps that cross MQTT
	// in wall time, which the test waits for rather than moving the clock.
	unlocked, published chan struct{}
	report              func(string, ...any)
}

func newVirtualCabinet(t *testing.T) *virtualCabinet {
	t.Helper()
	// After TimeFloor, so the clock is trusted; whole seconds keep logs
	// readable.
	clk := clocktest.At(time.Now().UTC().Truncate(time.Second))
	plan, stock := demo.Planogram(testCabinet), demo.Stock()
	cat := demo.Catalog(clk.Now())
	byCode := map[string]msg.Product{}
	for _, p := range cat.Products {
		byCode[p.SKU] = p
	}
	var shelves []sim.ShelfConfig
	for _, sh := range plan.Shelves {
		shelves = append(shelves, sim.ShelfConfig{Shelf: sh.Shelf, Door: sh.Door})
	}
	hw, err := sim.New(sim.Config{Name: "virtual", Seed: 7, SampleRate: 100, Doors: 1, Shelves: shelves,
		Clock: clk.Now, After: clk.After})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range plan.Shelves {
		skus := make([]string, 0, len(stock[sh.Shelf]))
		for sku := range stock[sh.Shelf] {
			skus = append(skus, sku)
		}
		sort.Strings(skus)
		for _, sku := range skus {
			p := byCode[sku]
			if err := hw.Load(sh.Shelf, sku, p.UnitWeightG, p.WeightTolG, stock[sh.Shelf][sku]); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	v := &virtualCabinet{t: t, clk: clk, hw: hw, b: b, plat: newPlatformKey(t, "plat-test"),
		tick: 50 * time.Millisecond, timers: 4 + len(shelves),
		unlocked: make(chan struct{}, 1), published: make(chan struct{}, 1)}
	if hw.Hardware().Thermometer != nil {
		v.timers++ // the thermometer's reading interval
	}
	devPub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	topics := msg.Topics{Prefix: config.Default().TopicPrefix, Cabinet: testCabinet}
	err = b.Server().Subscribe(topics.Sale(), 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		var s msg.Sale
		if _, err := (msg.KeyRing{testCabinet: devPub}).OpenInto(pk.Payload, &s); err == nil {
			v.mu.Lock()
			v.sales = append(v.sales, s)
			v.mu.Unlock()
			signal(v.published)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Server().Subscribe(topics.Alarm(), 2, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		var a msg.Alarm
		if _, err := (msg.KeyRing{testCabinet: devPub}).OpenInto(pk.Payload, &a); err == nil {
			v.mu.Lock()
			v.alarms = append(v.alarms, a)
			v.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.CabinetID, cfg.Region, cfg.DataDir, cfg.Broker = testCabinet, demo.Region, t.TempDir(), b.URL()
	cfg.PlatformKeys = map[string]string{v.plat.kid: msg.EncodeKey(v.plat.pub)}
	cfg.ReceiptS = 0
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The virtual cabinet counts the goroutines waiting on its clock
	// exactly; a hush takes the load cells off the clock, so it runs
	// unhushed (TestHush* cover the hush).
	unhushed := hw.Hardware()
	unhushed.Quiet = nil
	v.d, err = New(Opts{Config: cfg, Hardware: unhushed, DeviceKey: key, Logger: log, Clock: clk, Tick: v.tick,
		OnUnlock: func(_, _, _ time.Time) { signal(v.unlocked) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.d.catalog.ApplyCatalog(cat, cfg.Region); err != nil {
		t.Fatal(err)
	}
	v.d.applyPlanogram(plan)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hw.Run(ctx); err != nil {
			t.Errorf("virtual cabinet: %v", err)
		}
	})
	wg.Go(func() {
		if err := v.d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
		if err := v.d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return v
}

// wallGuard bounds the wall time the goroutines may take to come back to
// their timers after the clock moved. It is not a speed limit (that takes
// microseconds); it turns a hung device loop into a failure.
const wallGuard = 30 * time.Second

// advanceUntil moves the clock a tick at a time until cond holds, failing
// the test when it does not hold within virtual time max. After each move
// it waits until every goroutine on the clock is waiting for it again —
// the device loop's tick, heartbeat and prune timers, the outbox drain's
// pass interval and each load cell's next sample — so each tick is finished, and each sample taken, before
// time moves on: the run is the same on an idle machine and a loaded one.
func (v *virtualCabinet) advanceUntil(what string, max time.Duration, cond func() bool) {
	v.t.Helper()
	for elapsed := time.Duration(0); elapsed <= max; elapsed += v.tick {
		if cond() {
			return
		}
		v.clk.Advance(v.tick)
		ctx, cancel := context.WithTimeout(context.Background(), wallGuard)
		err := v.clk.BlockUntilContext(ctx, v.timers)
		cancel()
		if err != nil {
			v.t.Fatalf("%s: the goroutines did not come back to the clock in %v of wall time", what, wallGuard)
		}
	}
	v.t.Fatalf("%s: not within %v of virtual time", what, max)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// await waits in wall time for a step that crosses MQTT, within wallGuard.
func (v *virtualCabinet) await(what string, c <-chan struct{}) {
	v.t.Helper()
	select {
	case <-c:
	case <-time.After(wallGuard):
		v.t.Fatalf("%s: not within %v of wall time", what, wallGuard)
	}
}

// publish sends a platform message to the cabinet through the broker.
func (v *virtualCabinet) publish(topic string, body any) {
	v.t.Helper()
	if err := v.b.Server().Publish(topic, v.plat.seal(v.t, body), false, 1); err != nil {
		v.t.Fatal(err)
	}
}

// advanceFor moves the clock by d a tick at a time: the load cells sample
// as it goes, as they do in real time.
func (v *virtualCabinet) advanceFor(d time.Duration) {
	v.t.Helper()
	end := v.clk.Now().Add(d)
	v.advanceUntil("time to pass", d+v.tick, func() bool { return !v.clk.Now().Before(end) })
}

func (v *virtualCabinet) salesSeen() []msg.Sale {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]msg.Sale(nil), v.sales...)
}

// TestPurchaseInVirtualTime drives Run itself: the device loop, the
// virtual load cells and the scale filters share one fake clock. A
// shopper scans the QR the display shows, the platform's unlock arrives
// over MQTT, the door opens, goods are taken, the door shuts, and the sale
// is published — in virtual seconds and little wall time.
func TestPurchaseInVirtualTime(t *testing.T) {
	start := time.Now()
	v := newVirtualCabinet(t)
	v.advanceUntil("the QR code on the display", 10*time.Second, func() bool { return v.hw.Snapshot().Display.QR != "" })
	qr, err := payment.ParseQR(v.hw.Snapshot().Display.QR)
	if err != nil {
		t.Fatal(err)
	}
	now := v.clk.Now()
	cmd := msg.Command{ID: "cmd-" + msg.NewID(now), Type: msg.CmdUnlock, CabinetID: testCabinet,
		IssuedAt: msg.At(now), ExpiresAt: msg.At(now.Add(time.Minute)),
		SessionID: "S-" + msg.NewID(now), QRNonce: qr.Nonce,
		Buyer: &msg.Buyer{Ref: "wx-buyer-1", Kind: msg.BuyerPerson}, LimitFen: 50_000, Door: 1}
	topics := msg.Topics{Prefix: config.Default().TopicPrefix, Cabinet: testCabinet}
	// The link connects, and the unlock travels, over loopback in wall
	// time: the test waits for them instead of moving the clock.
	v.await("the link up", v.d.link.Up())
	v.publish(topics.Cmd(), cmd)
	v.await("the unlock answered", v.unlocked)
	v.advanceUntil("the lock retracted", 10*time.Second, func() bool { return !v.hw.Snapshot().Doors[0].Locked })
	if err := v.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	v.advanceUntil("the door seen open", 5*time.Second, func() bool {
		s, err := v.d.ledger.Session()
		return err == nil && s != nil && s.State == fsm.DoorOpen
	})
	p := demo.Catalog(now)
	var price int64
	for _, pr := range p.Products {
		if pr.SKU == "QH-0201" {
			price = pr.PriceFen
		}
	}
	if err := v.hw.Take(2, "QH-0201", 2); err != nil {
		t.Fatal(err)
	}
	v.advanceFor(2 * time.Second) // the shopper looks around
	if err := v.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	v.advanceUntil("the sale committed", 30*time.Second, func() bool {
		c, err := v.d.ledger.Counters()
		return err == nil && c.Sales == 1
	})
	v.await("the sale published", v.published)
	sales := v.salesSeen()
	if len(sales) != 1 {
		t.Fatalf("%d sales published, want 1", len(sales))
	}
	s := sales[0]
	if s.Status != msg.SaleExact || s.TotalFen != 2*price || len(s.Lines) != 1 || s.Lines[0].SKU != "QH-0201" || s.Lines[0].Qty != 2 {
		b, _ := json.Marshal(s)
		t.Fatalf("sale %s, want 2 × QH-0201 exact", b)
	}
	v.mu.Lock()
	for _, a := range v.alarms {
		if a.Severity == msg.SevCritical || a.Severity == msg.SevWarning {
			t.Errorf("alarm %s (%s) during an ordinary purchase: %+v", a.Kind, a.Severity, a.Detail)
		}
	}
	v.mu.Unlock()
	virtual := v.clk.Now().Sub(now)
	t.Logf("purchase: %v of virtual time, %v of wall time", virtual.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
