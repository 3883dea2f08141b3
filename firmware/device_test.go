package firmware

// These tests drive the session state machine directly: a Device on a
// virtual cabinet (hal/sim) whose scales sample in the background, its
// files in a temp dir, and no MQTT link (Run is never called, so the link
// never starts). The test goroutine owns the Device, as Run's goroutine
// would: it calls step, command and recover itself, and reads the ledger to
// see what was persisted and queued.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/internal/clocktest"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/scale"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testCabinet = "NM-150102-0007"
	// noDataAfter is the scale filters' no-data time in these tests.
	noDataAfter = 500 * time.Millisecond
)

// rig is one virtual cabinet and the Device driving it.
type rig struct {
	t    testing.TB
	ctx  context.Context
	hw   *sim.Cabinet
	clk  *clocktest.Clock // the virtual cabinet's and the Device's time
	cfg  config.Config
	key  ed25519.PrivateKey // the cabinet's key
	d    *Device
	open bool // d not yet closed
	// The demo data the cabinet was built and stocked from. Tests derive
	// SKUs, weights and prices from it rather than repeat them.
	cat   msg.Catalog
	plan  msg.Planogram
	stock map[int]map[string]int
	// wrap, when set, changes the hardware the next Device sees.
	wrap func(hal.Cabinet) hal.Cabinet
	// now, when set, is the next Device's clock.
	now func() time.Time
	// ledgerMax, when set, caps the next Device's ledger file.
	ledgerMax int
}

type rigOpt func(*config.Config)

// newRig builds a virtual cabinet with the demo planogram's shelves (four
// behind door 1) stocked as the demo says, starts its scales, builds a
// Device on it with the demo catalog and planogram applied, and steps it
// until every shelf is steady.
func newRig(t testing.TB, opts ...rigOpt) *rig {
	t.Helper()
	return newRigWith(t, demo.Planogram(testCabinet), demo.Stock(), opts...)
}

// confusableShelf is the shelf newConfusableRig stocks with the 250 g and
// 500 g packs of one 花椒 (CQ-0303, CQ-0304), which weights cannot tell
// apart: 2 × 250 g weighs what 1 × 500 g does.
const confusableShelf = 3

// newConfusableRig is newRig with confusableShelf holding CQ-0303 and
// CQ-0304: the planogram the lint warns on, for the tests of what the
// cabinet does when the weights leave two baskets.
func newConfusableRig(t testing.TB, opts ...rigOpt) *rig {
	t.Helper()
	plan := demo.Planogram(testCabinet)
	stock := demo.Stock()
	for i := range plan.Shelves {
		if plan.Shelves[i].Shelf == confusableShelf {
			plan.Shelves[i].SKUs = []string{"CQ-0303", "CQ-0304"}
		}
	}
	stock[confusableShelf] = map[string]int{"CQ-0303": 10, "CQ-0304": 8}
	return newRigWith(t, plan, stock, opts...)
}

// newRigWith builds the rig on the given planogram and stock.
func newRigWith(t testing.TB, plan msg.Planogram, stock map[int]map[string]int, opts ...rigOpt) *rig {
	t.Helper()
	cat := demo.Catalog(time.Now())
	byCode := map[string]msg.Product{}
	for _, p := range cat.Products {
		byCode[p.SKU] = p
	}
	clk := clocktest.At(time.Now().UTC().Truncate(time.Second))
	hw := demoHardware(t, "test", clk, func(hw *sim.Cabinet) {
		for _, sh := range plan.Shelves {
			shelf := sh.Shelf
			skus := make([]string, 0, len(stock[shelf]))
			for sku := range stock[shelf] {
				skus = append(skus, sku)
			}
			sort.Strings(skus) // the same true weights on every run
			for _, sku := range skus {
				p := byCode[sku]
				if err := hw.Load(shelf, sku, p.UnitWeightG, p.WeightTolG, stock[shelf][sku]); err != nil {
					t.Fatal(err)
				}
			}
		}
	})

	cfg, key := offlineConfig(t)
	cfg.UnlockWindowS = 2
	cfg.SettleTimeoutS = 5
	cfg.HeartbeatS = 1
	for _, o := range opts {
		o(&cfg)
	}
	r := &rig{t: t, ctx: t.Context(), hw: hw, clk: clk, cfg: cfg, key: key, cat: cat, plan: plan, stock: stock}
	t.Cleanup(r.close)
	r.start()
	if err := r.d.catalog.ApplyCatalog(cat, cfg.Region); err != nil {
		t.Fatal(err)
	}
	r.d.applyPlanogram(plan)
	if _, ok := r.d.catalog.Planogram(); !ok {
		t.Fatal("demo planogram not applied")
	}
	r.waitIdle()
	return r
}

// offlineConfig is a valid config for testCabinet in a fresh data dir,
// trusting a fresh platform key, with a broker nobody listens on, and a
// fresh device key.
func offlineConfig(t testing.TB) (config.Config, ed25519.PrivateKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.CabinetID = testCabinet
	cfg.Region = demo.Region
	cfg.DataDir = t.TempDir()
	cfg.Broker = "tcp://127.0.0.1:1" // nobody listens; the link keeps trying, harmlessly
	cfg.PlatformKeys = map[string]string{"plat-test": msg.EncodeKey(pub)}
	return cfg, key
}

// demoHardware builds a virtual cabinet with the demo planogram's doors
// and shelves, lets load stock it, and runs its scales until the test ends,
// on clk (nil: the wall clock).
func demoHardware(t testing.TB, name string, clk *clocktest.Clock, load func(*sim.Cabinet)) *sim.Cabinet {
	t.Helper()
	var shelves []sim.ShelfConfig
	doors := 1
	for _, sh := range demo.Planogram(testCabinet).Shelves {
		shelves = append(shelves, sim.ShelfConfig{Shelf: sh.Shelf, Door: sh.Door})
		doors = max(doors, sh.Door)
	}
	sc := sim.Config{
		Name: name, Seed: 7, SampleRate: 100, Doors: doors, Shelves: shelves,
		Scale: scale.Opts{NoDataAfter: noDataAfter},
	}
	if clk != nil {
		sc.Clock, sc.After = clk.Now, clk.After
	}
	hw, err := sim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	if load != nil {
		load(hw)
	}
	hwCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hw.Run(hwCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sim run: %v", err)
		}
	})
	return hw
}

// start builds a Device on the rig's hardware and data dir.
func (r *rig) start() {
	r.t.Helper()
	log := slog.New(slog.NewTextHandler(r.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	hw := r.hw.Hardware()
	if r.wrap != nil {
		hw = r.wrap(hw)
	}
	d, err := New(Opts{Config: r.cfg, Hardware: hw, DeviceKey: r.key, Logger: log, Tick: 5 * time.Millisecond, Clock: r.clk, Now: r.now, LedgerMaxBytes: r.ledgerMax})
	if err != nil {
		r.t.Fatal(err)
	}
	r.d, r.open = d, true
}

// use makes t the test the rig's helpers report to, until the returned
// func puts the previous one back (for subtests).
func (r *rig) use(t *testing.T) (restore func()) {
	prev := r.t
	r.t = t
	return func() { r.t = prev }
}

func (r *rig) close() {
	if r.open {
		r.open = false
		if err := r.d.Close(); err != nil {
			r.t.Errorf("close device: %v", err)
		}
	}
}

// restart closes the Device, as a crash would leave it (no halt: the
// hardware keeps whatever state it had), and builds a new one on the same
// files and hardware. It does not recover: the test calls recover.
func (r *rig) restart() {
	r.t.Helper()
	r.close()
	r.start()
}

// waitIdle steps until every shelf has a steady reading for the unlock's
// "before" weights and the idle-weight watch has its baselines.
func (r *rig) waitIdle() {
	r.t.Helper()
	stepUntil(r.t, r.d, func() bool {
		_, err := r.d.beforeWeights(r.d.now())
		return err == nil && len(r.d.baseline) == len(r.d.hw.Shelves) && r.d.Status().Mode == msg.ModeIdle
	}, 10*time.Second)
}

// stepUntil steps d until cond holds; the timeout (of d's time) only stops
// a hang.
func stepUntil(t testing.TB, d *Device, cond func() bool, timeout time.Duration) {
	t.Helper()
	for elapsed := time.Duration(0); ; elapsed += stepEvery {
		d.step(t.Context())
		if cond() {
			return
		}
		if elapsed > timeout {
			t.Fatalf("condition not met after %v; device status %+v", timeout, d.Status())
		}
		pass(t, d, stepEvery)
	}
}

// stepFor steps d for a while of its time, for "nothing more happens"
// checks.
func stepFor(t testing.TB, d *Device, dur time.Duration) {
	t.Helper()
	for elapsed := time.Duration(0); elapsed < dur; elapsed += stepEvery {
		d.step(t.Context())
		pass(t, d, stepEvery)
	}
}

// stepEvery is the time between two steps: one sample period of the
// rig's load cells (100 samples a second).
const stepEvery = 10 * time.Millisecond

// pass lets dur go by for d, whose clock must be a rig's virtual one: it
// moves the clock and waits until every load cell's goroutine is waiting on
// it again, so each sample due has been taken, whatever the machine's load.
func pass(t testing.TB, d *Device, dur time.Duration) {
	t.Helper()
	clk, ok := d.clk.(*clocktest.Clock)
	if !ok {
		t.Fatal("pass needs the Device on a virtual clock (the rig's)")
	}
	clk.Advance(dur)
	cells := 0
	for _, sh := range d.hw.Shelves {
		cells++
		if sh.Right != nil {
			cells++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wallGuard)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, cells); err != nil {
		t.Fatalf("the load cells did not come back to the clock in %v of wall time", wallGuard)
	}
}

// unlockCmd is an unlock as the platform sends it after a scan of the code
// the cabinet shows now.
func (r *rig) unlockCmd() msg.Command {
	r.t.Helper()
	now := r.d.now()
	qr, err := payment.ParseQR(r.d.qr.Current(now))
	if err != nil {
		r.t.Fatal(err)
	}
	return msg.Command{
		ID: "cmd-" + msg.NewID(now), Type: msg.CmdUnlock, CabinetID: testCabinet,
		IssuedAt: msg.At(now), ExpiresAt: msg.At(now.Add(time.Minute)),
		SessionID: "S-" + msg.NewID(now), QRNonce: qr.Nonce,
		Buyer:    &msg.Buyer{Ref: "wx-buyer-1", Kind: msg.BuyerUnion, Org: "呼和浩特市总工会"},
		LimitFen: 50_000, Door: 1,
	}
}

func (r *rig) cmd(typ string) msg.Command {
	now := r.d.now()
	return msg.Command{ID: "cmd-" + msg.NewID(now), Type: typ, CabinetID: testCabinet,
		IssuedAt: msg.At(now), ExpiresAt: msg.At(now.Add(time.Minute))}
}

func (r *rig) send(cmd msg.Command) {
	r.t.Helper()
	if err := r.d.command(r.ctx, cmd, r.d.now()); err != nil {
		r.t.Fatalf("command %s: %v", cmd.Type, err)
	}
}

// session is the persisted session, or nil.
func (r *rig) session() *ledger.Session {
	r.t.Helper()
	s, err := r.d.ledger.Session()
	if errors.Is(err, ledger.ErrNoSession) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) noSession() {
	r.t.Helper()
	if s := r.session(); s != nil {
		r.t.Fatalf("session %s persisted in state %s, want none", s.ID, s.State)
	}
	if r.d.sess != nil {
		r.t.Fatalf("session %s in memory, want none", r.d.sess.ID)
	}
}

func (r *rig) door() sim.DoorState { return r.hw.Snapshot().Doors[0] }

// locked fails unless the door is shut, its bolt out and the lock not
// energised.
func (r *rig) locked() {
	r.t.Helper()
	if d := r.door(); d.Open || !d.Locked || d.Energised {
		r.t.Fatalf("door not shut and locked: %+v", d)
	}
}

func (r *rig) sales() []msg.Sale {
	r.t.Helper()
	s, err := r.d.ledger.Sales(1, 100)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) counters() msg.Counters {
	r.t.Helper()
	c, err := r.d.ledger.Counters()
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *rig) pending() []outbox.Entry {
	r.t.Helper()
	es, err := r.d.ledger.Outbox.Pending(0)
	if err != nil {
		r.t.Fatal(err)
	}
	return es
}

// replies returns the queued replies to command id.
func (r *rig) replies(id string) []msg.Reply {
	r.t.Helper()
	var out []msg.Reply
	for _, e := range r.pending() {
		if e.Kind != outbox.KindReply {
			continue
		}
		if e.Topic != r.d.topics.Reply() {
			r.t.Fatalf("reply on topic %q", e.Topic)
		}
		var rep msg.Reply
		if err := json.Unmarshal(e.Payload, &rep); err != nil {
			r.t.Fatal(err)
		}
		if rep.CmdID == id {
			out = append(out, rep)
		}
	}
	return out
}

// reply fails unless exactly one reply to id is queued with the given code
// ("" for ok), and returns it.
func (r *rig) reply(id, code string) msg.Reply {
	r.t.Helper()
	reps := r.replies(id)
	if len(reps) != 1 {
		r.t.Fatalf("%d replies to %s, want 1: %+v", len(reps), id, reps)
	}
	rep := reps[0]
	if rep.Error != code || rep.OK != (code == "") {
		r.t.Fatalf("reply to %s: ok=%v error=%q detail=%q; want error %q", id, rep.OK, rep.Error, rep.Detail, code)
	}
	return rep
}

// alarms returns the queued alarms of a kind.
func (r *rig) alarms(kind string) []msg.Alarm {
	r.t.Helper()
	var out []msg.Alarm
	for _, e := range r.pending() {
		if e.Kind != outbox.KindAlarm {
			continue
		}
		var a msg.Alarm
		if err := json.Unmarshal(e.Payload, &a); err != nil {
			r.t.Fatal(err)
		}
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// outboxSales returns the sales queued in the outbox.
func (r *rig) outboxSales() []msg.Sale {
	r.t.Helper()
	var out []msg.Sale
	for _, e := range r.pending() {
		if e.Kind != outbox.KindSale {
			continue
		}
		var s msg.Sale
		if err := json.Unmarshal(e.Payload, &s); err != nil {
			r.t.Fatal(err)
		}
		if s.Seq != e.SaleSeq || e.Topic != r.d.topics.Sale() {
			r.t.Fatalf("outbox sale entry seq %d topic %q holds sale seq %d", e.SaleSeq, e.Topic, s.Seq)
		}
		out = append(out, s)
	}
	return out
}

// unlock sends a valid unlock and checks that it opened a session.
func (r *rig) unlock() msg.Command {
	r.t.Helper()
	cmd := r.unlockCmd()
	r.send(cmd)
	r.reply(cmd.ID, "")
	if s := r.session(); s == nil || s.ID != cmd.SessionID || s.State != fsm.Unlocked {
		r.t.Fatalf("after unlock: persisted session %+v, want %s unlocked", s, cmd.SessionID)
	}
	return cmd
}

// stepToState steps until the in-memory session is in state (or gone, for
// ""), then checks the persisted one agrees.
func (r *rig) stepToState(state fsm.State) {
	r.t.Helper()
	stepUntil(r.t, r.d, func() bool {
		if state == "" {
			return r.d.sess == nil
		}
		return r.d.sess != nil && r.d.sess.State == state
	}, 10*time.Second)
	if state == "" {
		r.noSession()
		return
	}
	if s := r.session(); s == nil || s.State != state {
		r.t.Fatalf("persisted session %+v, want state %s", s, state)
	}
}

// wantLine is an expected sale line.
type wantLine struct {
	shelf int
	sku   string
	qty   int
}

// checkSale checks a committed sale's lines against the catalog.
func (r *rig) checkSale(s msg.Sale, seq uint64, sessionID, status string, want []wantLine) {
	r.t.Helper()
	if s.Seq != seq || s.SessionID != sessionID || s.Status != status || s.CabinetID != testCabinet {
		r.t.Fatalf("sale seq %d session %s status %s cabinet %s; want seq %d session %s status %s",
			s.Seq, s.SessionID, s.Status, s.CabinetID, seq, sessionID, status)
	}
	if s.SaleID == "" || s.FW != FW || s.CatalogVersion != r.cat.Version {
		r.t.Fatalf("sale header %+v", s)
	}
	if len(s.Lines) != len(want) {
		r.t.Fatalf("sale lines %+v, want %+v", s.Lines, want)
	}
	var total int64
	for i, w := range want {
		l := s.Lines[i]
		p, ok := r.d.catalog.Product(w.sku)
		if !ok {
			r.t.Fatalf("no product %s", w.sku)
		}
		if l.Shelf != w.shelf || l.SKU != w.sku || l.Qty != w.qty {
			r.t.Fatalf("line %d: %d × %s from shelf %d, want %d × %s from shelf %d", i, l.Qty, l.SKU, l.Shelf, w.qty, w.sku, w.shelf)
		}
		if l.UnitPriceFen != p.PriceFen || l.AmountFen != int64(w.qty)*p.PriceFen {
			r.t.Fatalf("line %d priced %d × %d = %d, catalog price %d", i, l.Qty, l.UnitPriceFen, l.AmountFen, p.PriceFen)
		}
		if l.CertNo != p.CertNo || l.Name != p.Name || l.SupplierID != p.SupplierID || l.Supplier != p.Supplier || l.OriginCode != p.OriginCode {
			r.t.Fatalf("line %d traceability %+v does not match catalog %+v", i, l, p)
		}
		total += l.AmountFen
	}
	if s.TotalFen != total {
		r.t.Fatalf("total %d, lines sum to %d", s.TotalFen, total)
	}
	if s.Lines == nil || s.Evidence == nil {
		r.t.Fatal("sale lines or evidence encode as null")
	}
	if s.OpenedAt.IsZero() || s.OpenedAt.After(s.ClosedAt.Time) || s.ClosedAt.After(s.SettledAt.Time) {
		r.t.Fatalf("sale times out of order: opened %v closed %v settled %v", s.OpenedAt, s.ClosedAt, s.SettledAt)
	}
}

// checkOnlySale checks that the ledger and the outbox hold exactly one
// sale, the same one, with the counters to match, and returns it.
func (r *rig) checkOnlySale() msg.Sale {
	r.t.Helper()
	sales := r.sales()
	if len(sales) != 1 {
		r.t.Fatalf("%d sales in the ledger, want 1: %+v", len(sales), sales)
	}
	queued := r.outboxSales()
	if len(queued) != 1 {
		r.t.Fatalf("%d sales in the outbox, want 1", len(queued))
	}
	a, _ := json.Marshal(sales[0])
	b, _ := json.Marshal(queued[0])
	if string(a) != string(b) {
		r.t.Fatalf("outbox sale differs from ledger sale:\n%s\n%s", b, a)
	}
	if c := r.counters(); c.Sales != 1 || c.LastSeq != 1 || c.AmountFen != sales[0].TotalFen {
		r.t.Fatalf("counters %+v after one sale of %d fen", c, sales[0].TotalFen)
	}
	return sales[0]
}

func (r *rig) product(sku string) msg.Product {
	r.t.Helper()
	for _, p := range r.cat.Products {
		if p.SKU == sku {
			return p
		}
	}
	r.t.Fatalf("no product %s in the demo catalog", sku)
	return msg.Product{}
}

// basket picks what a shopper takes: for each qty, a SKU with that much
// stock from the next shelf the planogram lint does not flag (so the
// weights tell every basket of a few units apart and the sale is exact),
// varying which of the shelf's SKUs is picked. Lines come in shelf order,
// as a sale lists them.
func (r *rig) basket(qtys ...int) []wantLine {
	r.t.Helper()
	var plain []msg.PlanogramShelf
	for _, sh := range r.plan.Shelves {
		if sh.Shelf != confusableShelf && sh.Door == 1 {
			plain = append(plain, sh)
		}
	}
	sort.Slice(plain, func(i, j int) bool { return plain[i].Shelf < plain[j].Shelf })
	if len(qtys) > len(plain) {
		r.t.Fatalf("demo planogram has %d plain shelves, test wants %d", len(plain), len(qtys))
	}
	var out []wantLine
	for i, q := range qtys {
		sh := plain[i]
		var pick string
		for k := range sh.SKUs {
			if sku := sh.SKUs[(i+k)%len(sh.SKUs)]; r.stock[sh.Shelf][sku] >= q {
				pick = sku
				break
			}
		}
		if pick == "" {
			r.t.Fatalf("no SKU on shelf %d with %d units in the demo stock", sh.Shelf, q)
		}
		out = append(out, wantLine{sh.Shelf, pick, q})
	}
	return out
}

// take takes a basket from the open door's shelves.
func (r *rig) take(b []wantLine) {
	r.t.Helper()
	for _, l := range b {
		if err := r.hw.Take(l.shelf, l.sku, l.qty); err != nil {
			r.t.Fatal(err)
		}
	}
}

// price is what a basket costs by the catalog.
func (r *rig) price(b []wantLine) int64 {
	r.t.Helper()
	var total int64
	for _, l := range b {
		total += int64(l.qty) * r.product(l.sku).PriceFen
	}
	return total
}

// grams is a basket's nominal weight per shelf.
func (r *rig) grams(b []wantLine) map[int]float64 {
	r.t.Helper()
	out := map[int]float64{}
	for _, l := range b {
		out[l.shelf] += float64(l.qty) * r.product(l.sku).UnitWeightG
	}
	return out
}

func trueGrams(r *rig) map[int]float64 {
	out := map[int]float64{}
	for _, s := range r.hw.Snapshot().Shelves {
		out[s.Shelf] = s.TrueG
	}
	return out
}

func TestShoppingSession(t *testing.T) {
	r := newRig(t)
	r.locked()
	qrBefore := r.d.qr.Current(r.d.now())
	before := trueGrams(r)

	// unlock: session and "before" weights persisted, lock energised, id
	// in the replay cache, ok reply queued.
	cmd := r.unlockCmd()
	r.send(cmd)
	s := r.session()
	if s == nil || s.State != fsm.Unlocked || s.ID != cmd.SessionID || s.CmdID != cmd.ID || s.Door != 1 {
		t.Fatalf("persisted session %+v", s)
	}
	if s.Buyer != *cmd.Buyer || s.LimitFen != cmd.LimitFen || s.CatalogVersion != r.cat.Version {
		t.Fatalf("session lost the command's buyer, limit or catalog version: %+v", s)
	}
	if w := r.cfg.UnlockWindow(); s.Deadline.Before(s.Received.Add(w)) || s.Deadline.After(r.d.now().Add(w)) {
		t.Fatalf("deadline %v for an unlock received %v, want the %v unlock window after it", s.Deadline, s.Received, w)
	}
	if len(s.Before) != len(r.plan.Shelves) {
		t.Fatalf("before weights %+v, want every shelf", s.Before)
	}
	for i, b := range s.Before {
		if b.Shelf != r.d.hw.Shelves[i].Number || math.Abs(b.Grams-before[b.Shelf]) > 3 || b.Samples == 0 || b.At.IsZero() {
			t.Fatalf("before weight %+v, true load %.1f g", b, before[b.Shelf])
		}
	}
	if d := r.door(); !d.Energised || d.Locked || d.Open {
		t.Fatalf("after unlock the lock is %+v, want energised and the bolt in", d)
	}
	if !r.d.ledger.Seen(cmd.ID) {
		t.Fatal("unlock id not in the replay cache")
	}
	if rep := r.reply(cmd.ID, ""); rep.Detail != "unlocked" {
		t.Fatalf("reply %+v", rep)
	}

	// The shopper opens the door: door_open, lock released.
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	if s := r.session(); s.OpenedAt.IsZero() {
		t.Fatal("opened_at not persisted")
	}
	if d := r.door(); d.Energised {
		t.Fatalf("lock still energised with the door open: %+v", d)
	}
	if st := r.d.Status(); st.Mode != msg.ModeShopping || st.Session == nil || st.Session.ID != cmd.SessionID {
		t.Fatalf("status %+v, want shopping", st)
	}

	// Takes two units from one shelf and one from each of two others, and
	// closes the door: settling, then the sale.
	basket := r.basket(2, 1, 1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.Settling)
	if s := r.session(); s.ClosedAt.IsZero() || s.ClosedAt.Before(s.OpenedAt) {
		t.Fatalf("closed_at %v, opened_at %v", s.ClosedAt, s.OpenedAt)
	}
	r.stepToState("")

	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleExact, basket)
	if want := r.price(basket); sale.TotalFen != want || want <= 0 {
		t.Fatalf("total %d fen, want %d", sale.TotalFen, want)
	}
	if sale.Buyer != *cmd.Buyer {
		t.Fatalf("sale buyer %+v, want %+v", sale.Buyer, *cmd.Buyer)
	}
	if len(sale.Evidence) != len(r.plan.Shelves) {
		t.Fatalf("evidence %+v, want every shelf", sale.Evidence)
	}
	taken := r.grams(basket)
	for _, ev := range sale.Evidence {
		want := -taken[ev.Shelf]
		if math.Abs(ev.DeltaG-want) > 8 {
			t.Errorf("shelf %d delta %.1f g, want about %.0f", ev.Shelf, ev.DeltaG, want)
		}
	}
	r.reply(cmd.ID, "") // still exactly one reply
	r.locked()
	if r.d.qr.Current(r.d.now()) == qrBefore {
		t.Fatal("QR not rotated after the session")
	}
	if st := r.d.Status(); st.Mode != msg.ModeIdle || st.Counters.LastSeq != 1 {
		t.Fatalf("status after the sale %+v", st)
	}

	// A normal session raises no alarm, and the goods that left are not
	// an idle weight change.
	stepFor(t, r.d, 500*time.Millisecond)
	for _, kind := range []string{msg.AlarmDoorForced, msg.AlarmWeightWhileLocked, msg.AlarmUnknownObject, msg.AlarmLockFault} {
		if a := r.alarms(kind); len(a) != 0 {
			t.Errorf("alarm %s raised during a normal session: %+v", kind, a)
		}
	}
	if n := len(r.sales()); n != 1 {
		t.Fatalf("%d sales after idling, want 1", n)
	}
}

func TestSessionWithNothingTakenIsEmpty(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleEmpty, nil)
}

func TestUnlockWindowExpires(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	if d := r.door(); !d.Energised {
		t.Fatalf("lock %+v, want energised", d)
	}
	// Nobody opens the door.
	r.stepToState("")
	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleCancelled, nil)
	if sale.TotalFen != 0 || len(sale.Lines) != 0 {
		t.Fatalf("cancelled sale charged %d fen: %+v", sale.TotalFen, sale.Lines)
	}
	r.locked()
}

func TestUnlockRefusals(t *testing.T) {
	r := newRig(t)
	good := r.unlockCmd() // its nonce must survive every refusal below

	// refused checks a refusal: the code, no session, door still locked,
	// the id not taken into the replay cache.
	refused := func(t *testing.T, cmd msg.Command, code string) {
		t.Helper()
		defer r.use(t)()
		r.send(cmd)
		r.reply(cmd.ID, code)
		r.noSession()
		r.locked()
		if r.d.ledger.Seen(cmd.ID) {
			t.Fatal("refused command entered the replay cache")
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*msg.Command)
		code   string
	}{
		{"missing buyer", func(c *msg.Command) { c.Buyer = nil }, msg.ErrBadRequest},
		{"buyer without ref", func(c *msg.Command) { c.Buyer = &msg.Buyer{Kind: msg.BuyerPerson} }, msg.ErrBadRequest},
		{"missing session id", func(c *msg.Command) { c.SessionID = "" }, msg.ErrBadRequest},
		{"wrong cabinet", func(c *msg.Command) { c.CabinetID = "NM-150102-0008" }, msg.ErrWrongCabinet},
		{"expired", func(c *msg.Command) {
			now := r.d.now()
			c.IssuedAt, c.ExpiresAt = msg.At(now.Add(-2*time.Minute)), msg.At(now.Add(-time.Minute))
		}, msg.ErrExpired},
		{"stale qr nonce", func(c *msg.Command) { c.QRNonce = "AAAAAAAAAAAAAAAA" }, msg.ErrStaleQR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := good
			cmd.ID = "cmd-" + msg.NewID(r.d.now())
			tc.mutate(&cmd)
			refused(t, cmd, tc.code)
		})
	}

	// None of them spent the nonce: the good unlock still opens.
	r.send(good)
	r.reply(good.ID, "")
	if s := r.session(); s == nil || s.ID != good.SessionID {
		t.Fatalf("good unlock after refusals: session %+v", s)
	}

	t.Run("busy", func(t *testing.T) {
		defer r.use(t)()
		cmd := r.unlockCmd() // a fresh code, scanned by someone else
		r.send(cmd)
		r.reply(cmd.ID, msg.ErrBusy)
		if s := r.session(); s == nil || s.ID != good.SessionID || s.State != fsm.Unlocked {
			t.Fatalf("session after busy refusal %+v, want %s unchanged", s, good.SessionID)
		}
		if r.d.ledger.Seen(cmd.ID) {
			t.Fatal("refused command entered the replay cache")
		}
	})

	// End the session by a cancel, then the same unlock again is a replay.
	cancel := r.cmd(msg.CmdCancel)
	cancel.SessionID = good.SessionID
	r.send(cancel)
	r.reply(cancel.ID, "")
	r.noSession()
	r.locked()

	t.Run("replayed", func(t *testing.T) {
		defer r.use(t)()
		r.send(good)
		reps := r.replies(good.ID)
		if len(reps) != 2 || !reps[0].OK || reps[1].Error != msg.ErrReplayed {
			t.Fatalf("replies to the replayed id %+v, want ok then replayed", reps)
		}
		r.noSession()
		r.locked()
	})

	t.Run("used nonce under a new id", func(t *testing.T) {
		cmd := good
		cmd.ID = "cmd-" + msg.NewID(r.d.now())
		cmd.SessionID = "S-again"
		refused(t, cmd, msg.ErrStaleQR)
	})

	if n := len(r.sales()); n != 1 {
		t.Fatalf("%d sales, want only the cancelled one", n)
	}
}

func TestCancelCommand(t *testing.T) {
	r := newRig(t)

	unknown := r.cmd(msg.CmdCancel)
	unknown.SessionID = "S-nobody"
	r.send(unknown)
	r.reply(unknown.ID, msg.ErrUnknownSession)

	cmd := r.unlock()
	other := r.cmd(msg.CmdCancel)
	other.SessionID = "S-someone-else"
	r.send(other)
	r.reply(other.ID, msg.ErrUnknownSession)
	if s := r.session(); s == nil || s.ID != cmd.SessionID {
		t.Fatal("a cancel for another session touched ours")
	}

	cancel := r.cmd(msg.CmdCancel)
	cancel.SessionID = cmd.SessionID
	r.send(cancel)
	r.reply(cancel.ID, "")
	r.noSession()
	r.locked()
	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleCancelled, nil)
	if !r.d.ledger.Seen(cancel.ID) {
		t.Fatal("cancel id not in the replay cache")
	}
	stepFor(t, r.d, 200*time.Millisecond)
	if n := len(r.sales()); n != 1 {
		t.Fatalf("%d sales, want 1", n)
	}
}

func TestCancelAfterDoorOpenedIsBusy(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	cancel := r.cmd(msg.CmdCancel)
	cancel.SessionID = cmd.SessionID
	r.send(cancel)
	r.reply(cancel.ID, msg.ErrBusy)
	if s := r.session(); s == nil || s.State != fsm.DoorOpen {
		t.Fatalf("session after refused cancel %+v", s)
	}
	if len(r.sales()) != 0 {
		t.Fatal("a sale was committed with the shopper at the shelves")
	}
}

// The door opened a moment before the cancel arrived, before the next
// tick saw it: the shopper is at the shelves and must not get a cancelled
// (free) session.
func TestCancelRacingTheDoorOpening(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	// Past the reed switch's debounce (2 × 30 ms), without a step.
	pass(t, r.d, 150*time.Millisecond)
	cancel := r.cmd(msg.CmdCancel)
	cancel.SessionID = cmd.SessionID
	r.send(cancel)
	r.reply(cancel.ID, msg.ErrBusy)
	if s := r.session(); s == nil || s.State != fsm.DoorOpen {
		t.Fatalf("session after cancel with the door open: %+v, want door_open", s)
	}
	basket := r.basket(1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	r.checkSale(r.checkOnlySale(), 1, cmd.SessionID, msg.SaleExact, basket)
}

func TestJammedLock(t *testing.T) {
	r := newRig(t)
	if err := r.hw.JamLock(1, true); err != nil {
		t.Fatal(err)
	}
	cmd := r.unlockCmd()
	r.send(cmd) // waits LockTimeout for the bolt
	r.reply(cmd.ID, msg.ErrLockFault)
	r.noSession()
	if d := r.door(); d.Energised || d.Open {
		t.Fatalf("lock after a fault %+v, want released", d)
	}
	alarms := r.alarms(msg.AlarmLockFault)
	if len(alarms) != 1 || alarms[0].Severity != msg.SevCritical || alarms[0].Detail["session"] != cmd.SessionID {
		t.Fatalf("lock_fault alarms %+v", alarms)
	}
	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleCancelled, nil)
	if !r.d.ledger.Seen(cmd.ID) {
		t.Fatal("the unlock that faulted can be replayed")
	}
}

func TestDoorForcedWhileIdle(t *testing.T) {
	r := newRig(t)
	if err := r.hw.OpenDoor(1, true); err != nil {
		t.Fatal(err)
	}
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmDoorForced)) > 0 }, 5*time.Second)
	stepFor(t, r.d, 200*time.Millisecond)
	a := r.alarms(msg.AlarmDoorForced)
	if len(a) != 1 || a[0].Severity != msg.SevCritical || a[0].Detail["door"] != float64(1) {
		t.Fatalf("door_forced alarms %+v, want one for door 1", a)
	}
	// The intruder takes a pack and shuts the door: the weight change is
	// reported once the shelf is steady again.
	basket := r.basket(1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmWeightWhileLocked)) > 0 }, 5*time.Second)
	w := r.alarms(msg.AlarmWeightWhileLocked)[0]
	shelf, grams := basket[0].shelf, r.grams(basket)[basket[0].shelf]
	if w.Detail["shelf"] != float64(shelf) || math.Abs(w.Detail["delta_g"].(float64)+grams) > 8 {
		t.Fatalf("weight alarm %+v, want shelf %d about %.0f g", w, shelf, -grams)
	}
	if len(r.sales()) != 0 {
		t.Fatal("a forced opening made a sale")
	}
}

func TestWeightChangedWhileLocked(t *testing.T) {
	r := newRig(t)
	// A unit lands on a shelf with every door shut and no session.
	l := r.basket(1)[0]
	p := r.product(l.sku)
	if err := r.hw.Load(l.shelf, l.sku, p.UnitWeightG, p.WeightTolG, 1); err != nil {
		t.Fatal(err)
	}
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmWeightWhileLocked)) > 0 }, 5*time.Second)
	stepFor(t, r.d, 300*time.Millisecond)
	a := r.alarms(msg.AlarmWeightWhileLocked)
	if len(a) != 1 {
		t.Fatalf("%d weight alarms for one change, want 1: %+v", len(a), a)
	}
	if a[0].Detail["shelf"] != float64(l.shelf) || math.Abs(a[0].Detail["delta_g"].(float64)-p.UnitWeightG) > 8 {
		t.Fatalf("weight alarm %+v, want shelf %d about +%.0f g", a[0], l.shelf, p.UnitWeightG)
	}
	if len(r.alarms(msg.AlarmDoorForced)) != 0 {
		t.Fatal("door_forced without an opening")
	}
}

func TestDoorOpenTooLong(t *testing.T) {
	r := newRig(t, func(c *config.Config) { c.DoorOpenAlarmS = 1 })
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	stepUntil(t, r.d, func() bool { return len(r.alarms(msg.AlarmDoorOpenTooLong)) > 0 }, 5*time.Second)
	stepFor(t, r.d, 200*time.Millisecond)
	if a := r.alarms(msg.AlarmDoorOpenTooLong); len(a) != 1 || a[0].Detail["session"] != cmd.SessionID {
		t.Fatalf("door_open_too_long alarms %+v, want one", a)
	}
	if s := r.session(); !s.Alarmed {
		t.Fatal("alarm not persisted with the session: it would repeat after a restart")
	}
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	r.checkSale(r.checkOnlySale(), 1, cmd.SessionID, msg.SaleEmpty, nil)
}

func TestRecoverDoorOpenSession(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)

	// The firmware dies with the shopper at the shelves; the shopper goes
	// on, shuts the door, and the firmware comes back.
	r.restart()
	basket := r.basket(3, 1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	if r.d.sess == nil || r.d.sess.ID != cmd.SessionID {
		t.Fatalf("recovered session %+v", r.d.sess)
	}
	pr := r.alarms(msg.AlarmPowerRestored)
	if len(pr) != 1 || pr[0].Detail["session"] != cmd.SessionID {
		t.Fatalf("power_restored alarms %+v", pr)
	}
	r.stepToState("")
	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleExact, basket)
	r.locked()

	// Another restart finds nothing to finish: the sale stays the only one.
	r.restart()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.noSession()
	stepFor(t, r.d, 300*time.Millisecond)
	if got := r.checkOnlySale(); got.SaleID != sale.SaleID {
		t.Fatalf("sale changed across a restart: %+v", got)
	}
}

// persistUnlockedExpired leaves the ledger as a crash would right after an
// unlock whose window has since passed: session unlocked, lock energised.
func persistUnlockedExpired(r *rig) msg.Command {
	r.t.Helper()
	cmd := r.unlock()
	s := *r.d.sess
	s.Deadline = r.d.now().Add(-time.Second).UTC()
	if err := r.d.ledger.SaveSession(&s, nil); err != nil {
		r.t.Fatal(err)
	}
	r.restart()
	if d := r.door(); !d.Energised {
		r.t.Fatalf("lock %+v, want still energised as the crash left it", d)
	}
	return cmd
}

func TestRecoverExpiredUnlockedSession(t *testing.T) {
	r := newRig(t)
	cmd := persistUnlockedExpired(r)
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	if d := r.door(); d.Energised {
		t.Fatalf("lock %+v after recovery, want released", d)
	}
	r.stepToState("")
	r.locked()
	sale := r.checkOnlySale()
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleCancelled, nil)
}

// The firmware died with the lock energised; the shopper opened the door,
// took goods and shut it while it was down, after the unlock window. The
// goods must be charged, not waved through on a "cancelled" sale.
func TestRecoverExpiredUnlockedSessionWithGoodsTaken(t *testing.T) {
	r := newRig(t)
	cmd := persistUnlockedExpired(r)
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	basket := r.basket(1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	// Let the slam and the creep of the take die down, as a restart would.
	pass(t, r.d, 800*time.Millisecond)
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	r.locked()
	sale := r.checkOnlySale()
	if sale.Status == msg.SaleCancelled {
		t.Fatalf("goods taken during the outage left on a cancelled sale: %+v", sale)
	}
	r.checkSale(sale, 1, cmd.SessionID, msg.SaleExact, basket)
}

// coldScale reads as a scale filter does before its first sample (no
// samples, no error) until warm is set, as at a real start-up where the
// firmware recovers before the HX711s have produced anything.
type coldScale struct {
	hal.Scale
	warm *atomic.Bool
}

func (c coldScale) Reading() (hal.Reading, error) {
	if !c.warm.Load() {
		return hal.Reading{}, nil
	}
	return c.Scale.Reading()
}

// The same expiry as above, recovered before the scales have read: the
// decision waits for the first readings instead of taking "no sample" for
// zero grams (a phantom "goods moved") or for "nothing moved".
func TestRecoverExpiredSessionWaitsForFirstReadings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		take   bool
		status string
	}{
		{"nothing taken", false, msg.SaleCancelled},
		{"goods taken", true, msg.SaleExact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			var warm atomic.Bool
			warm.Store(true)
			r.wrap = func(hw hal.Cabinet) hal.Cabinet {
				for i := range hw.Shelves {
					hw.Shelves[i].Scale = coldScale{hw.Shelves[i].Scale, &warm}
				}
				return hw
			}
			cmd := persistUnlockedExpired(r)
			var basket []wantLine
			if tc.take {
				basket = r.basket(1)
				if err := r.hw.OpenDoor(1, false); err != nil {
					t.Fatal(err)
				}
				r.take(basket)
				if err := r.hw.CloseDoor(1); err != nil {
					t.Fatal(err)
				}
			}
			pass(t, r.d, 800*time.Millisecond)
			warm.Store(false)
			if err := r.d.recover(r.ctx); err != nil {
				t.Fatal(err)
			}
			stepFor(t, r.d, 100*time.Millisecond)
			if n := len(r.sales()); n != 0 {
				t.Fatalf("%d sales judged before any scale had read: %+v", n, r.sales())
			}
			if d := r.door(); d.Energised {
				t.Fatalf("lock %+v after recovery, want released", d)
			}
			warm.Store(true)
			r.stepToState("")
			r.locked()
			sale := r.checkOnlySale()
			r.checkSale(sale, 1, cmd.SessionID, tc.status, basket)
		})
	}
}

func TestDeadScaleTakesCabinetOutOfService(t *testing.T) {
	r := newRig(t)
	dead := r.plan.Shelves[1].Shelf
	if err := r.hw.FaultScale(dead, "dead"); err != nil {
		t.Fatal(err)
	}
	pass(t, r.d, noDataAfter+100*time.Millisecond)
	stepUntil(t, r.d, func() bool { return r.d.Status().Mode == msg.ModeOutOfService }, 5*time.Second)
	st := r.d.Status()
	if len(st.Faults) == 0 {
		t.Fatalf("out of service without a fault: %+v", st)
	}
	a := r.alarms(msg.AlarmScaleFault)
	if len(a) != 1 || a[0].Detail["shelf"] != float64(dead) || a[0].Cleared || a[0].Severity != msg.SevCritical {
		t.Fatalf("scale_fault alarms %+v, want one for shelf %d", a, dead)
	}

	cmd := r.unlockCmd()
	r.send(cmd)
	r.reply(cmd.ID, msg.ErrOutOfService)
	r.noSession()
	r.locked()
	stepFor(t, r.d, 200*time.Millisecond)
	if n := len(r.alarms(msg.AlarmScaleFault)); n != 1 {
		t.Fatalf("%d scale_fault alarms for one fault, want 1", n)
	}

	// Repaired: the alarm clears and the same code opens the door.
	if err := r.hw.FaultScale(dead, ""); err != nil {
		t.Fatal(err)
	}
	r.waitIdle()
	a = r.alarms(msg.AlarmScaleFault)
	if len(a) != 2 || !a[1].Cleared || a[1].Detail["shelf"] != float64(dead) {
		t.Fatalf("scale_fault alarms after repair %+v, want the fault then its clearing", a)
	}
	again := cmd
	again.ID = "cmd-" + msg.NewID(r.d.now())
	r.send(again)
	r.reply(again.ID, "")
}

func TestUnlockLimitOverCap(t *testing.T) {
	r := newRig(t, func(c *config.Config) { c.MaxLimitFen = 20_000 })
	for _, tc := range []struct {
		name  string
		limit int64
		code  string
	}{
		{"over the cap", 20_001, msg.ErrBadRequest},
		{"unlimited", 0, msg.ErrBadRequest}, // limit_fen 0 means no limit: more than any cap
		{"at the cap", 20_000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer r.use(t)()
			cmd := r.unlockCmd()
			cmd.LimitFen = tc.limit
			r.send(cmd)
			r.reply(cmd.ID, tc.code)
			if tc.code != "" {
				r.noSession()
				r.locked()
			} else if s := r.session(); s == nil || s.LimitFen != tc.limit {
				t.Fatalf("session %+v", s)
			}
		})
	}
}

// The planogram's lint reaches the platform in the planogram's reply.
func TestPlanogramLintReplied(t *testing.T) {
	r := newRig(t)
	rep := r.reply(fmt.Sprintf("planogram/%d", r.plan.Version), "")
	if !slices.Equal(r.d.warnings, rep.Warnings) {
		t.Fatalf("planogram reply warnings %q, device warnings %q", rep.Warnings, r.d.warnings)
	}
	// The demo cabinet a newcomer first buys from passes the lint.
	if rep.Lint == nil || rep.Lint.Sessions != infer.PredictSessions || !rep.Lint.Pass || len(rep.Warnings) != 0 {
		t.Fatalf("demo planogram reply: warnings %q lint %+v", rep.Warnings, rep.Lint)
	}
	t.Logf("demo planogram: predicted exact %.1f %%", rep.Lint.PredictedExactPct)
	// A shelf of 250 g and 500 g packs of one product: warned, predicted
	// to need review often, and the confusion named.
	conf := demo.Planogram(testCabinet)
	conf.Version = r.plan.Version + 1
	conf.Shelves[2].SKUs = []string{"CQ-0303", "CQ-0304"}
	r.d.applyPlanogram(conf)
	rep = r.reply(fmt.Sprintf("planogram/%d", conf.Version), "")
	if len(rep.Warnings) == 0 || rep.Lint == nil || rep.Lint.Pass || len(rep.Lint.Confusions) == 0 {
		t.Fatalf("confusable planogram: warnings %q lint %+v", rep.Warnings, rep.Lint)
	}
	if c := rep.Lint.Confusions[0]; !strings.Contains(c.Taken+c.ConfusedWith, "CQ-030") {
		t.Errorf("worst confusion %+v, want the 花椒 packs", c)
	}
	r.plan = conf
	// An older planogram is ignored without a reply; a bad one is refused
	// and the one held stays.
	r.d.applyPlanogram(r.plan)
	if n := len(r.replies(fmt.Sprintf("planogram/%d", r.plan.Version))); n != 1 {
		t.Fatalf("%d replies to the planogram after a stale copy, want 1", n)
	}
	bad := demo.Planogram(testCabinet)
	bad.Version = r.plan.Version + 1
	bad.Shelves[0].SKUs = []string{"XX-0000"}
	r.d.applyPlanogram(bad)
	r.reply(fmt.Sprintf("planogram/%d", bad.Version), msg.ErrBadRequest)
	if p, _ := r.d.catalog.Planogram(); p.Version != r.plan.Version {
		t.Fatalf("planogram %d held after a refused one, want %d", p.Version, r.plan.Version)
	}
}

// A ledger holding the state "door_closed" (declared by earlier firmware,
// never entered by it) is read as settling: after a restart the sale is
// judged from the weights, not left hanging.
func TestRecoverLegacyDoorClosedState(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.stepToState(fsm.DoorOpen)
	basket := r.basket(2, 1)
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	s := *r.d.sess
	s.State, s.ClosedAt = fsm.DoorClosed, r.d.now().UTC()
	if err := r.d.ledger.SaveSession(&s, nil); err != nil {
		t.Fatal(err)
	}
	r.restart()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.stepToState("")
	r.checkSale(r.checkOnlySale(), 1, cmd.SessionID, msg.SaleExact, basket)
}

// latchOnce is a door switch whose latch reports one opening: the door
// opened and shut again between two ticks, quicker than the firmware polls.
type latchOnce struct {
	hal.DoorSensor
	opened bool
}

func (l *latchOnce) Opened(context.Context) (bool, error) {
	v := l.opened
	l.opened = false
	return v, nil
}

// An opening shorter than one poll is still an opening: the session goes
// to door_open on the next tick, though the switch reads closed, and the
// sale is judged as soon as the scales settle, not at the end of the
// unlock window.
func TestQuickDoorIsSeen(t *testing.T) {
	r := newRig(t)
	cmd := r.unlock()
	basket := r.basket(1, 1)
	if err := r.hw.OpenDoor(1, false); err != nil {
		t.Fatal(err)
	}
	r.take(basket)
	if err := r.hw.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	r.d.hw.Doors[0].Sensor = &latchOnce{DoorSensor: r.d.hw.Doors[0].Sensor, opened: true}
	r.d.step(r.ctx)
	if r.d.sess == nil || r.d.sess.State != fsm.DoorOpen {
		t.Fatalf("after the tick that read the latch: %+v, want door_open", r.d.sess)
	}
	r.stepToState("")
	r.checkSale(r.checkOnlySale(), 1, cmd.SessionID, msg.SaleExact, basket)
}
