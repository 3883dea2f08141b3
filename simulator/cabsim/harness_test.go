package cabsim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// startProcessSim starts a simulation whose firmware runs as `cabinet`
// processes, with its data in the test's temp dir (kept for checks after
// Close).
func startProcessSim(t testing.TB, o Options) *Sim {
	t.Helper()
	o.Firmware = Process
	o.CabinetBin = cabinetBin
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	return startSim(t, o)
}

// cutConfig is fastConfig with room to finish a session after a restart.
func cutConfig(c *config.Config) {
	fastConfig(c)
	c.UnlockWindowS = 8
}

// harness drives one cabinet as a shopper and an electrician would.
type harness struct {
	t   testing.TB
	s   *Sim
	id  string
	c   *Cabinet
	ctx context.Context
}

func newHarness(t testing.TB, s *Sim, id string, d time.Duration) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	c, ok := s.Cabinet(id)
	if !ok {
		t.Fatalf("no cabinet %s", id)
	}
	return &harness{t: t, s: s, id: id, c: c, ctx: ctx}
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// until polls cond every 50ms for at most d.
func (h *harness) until(d time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || h.ctx.Err() != nil {
			v, _ := h.s.View(h.id)
			h.t.Fatalf("%s: not within %v (mode %s, power %s, network %s, session %+v)", what, d, v.Mode, v.Power, v.Network, v.Session)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until the cabinet shows its QR code to shoppers.
func (h *harness) waitReady() {
	h.t.Helper()
	r := &runner{s: h.s, id: h.id}
	h.must(r.waitReady(h.ctx, 30*time.Second))
}

// unlock sends, like a scan of the QR shown now, a signed unlock; the
// reply (if any comes) arrives on the channel. The session id is known
// before anything reaches the cabinet.
func (h *harness) unlock() (msg.Command, <-chan error) {
	h.t.Helper()
	p := h.s.Platform
	qr := h.c.HW.Snapshot().Display.QR
	parsed, err := payment.ParseQR(qr)
	if err != nil {
		h.t.Fatalf("QR %q: %v", qr, err)
	}
	cmd := p.NewCommand(msg.CmdUnlock, h.id)
	cmd.SessionID = "S-" + msg.NewID(time.Now())
	cmd.QRNonce = parsed.Nonce
	cmd.Buyer = &msg.Buyer{Ref: "u-" + cmd.SessionID[len(cmd.SessionID)-6:], Kind: msg.BuyerPerson}
	cmd.LimitFen = platform.DefaultLimitFen
	cmd.Door = 1
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
		defer cancel()
		r, err := p.Send(ctx, cmd, p.Signer())
		if err == nil && !r.OK {
			err = fmt.Errorf("unlock refused: %s %s", r.Error, r.Detail)
		}
		done <- err
	}()
	return cmd, done
}

// openDoor pulls the door until the lock lets it open, for at most d.
func (h *harness) openDoor(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		err := h.s.Door(h.id, 1, "open", false)
		if err == nil {
			return true
		}
		if time.Now().After(deadline) || h.ctx.Err() != nil {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (h *harness) door(action string) { h.t.Helper(); h.must(h.s.Door(h.id, 1, action, false)) }
func (h *harness) power(action string) {
	h.t.Helper()
	h.must(h.s.Power(h.id, action))
}

// waitCut waits until an armed failpoint has killed the firmware and the
// simulator has cut the power.
func (h *harness) waitCut() {
	h.t.Helper()
	h.until(30*time.Second, "the failpoint to fire", func() bool { return !h.c.Powered() })
}

// arm restarts the firmware with failpoints armed (process mode).
func (h *harness) arm(names ...string) {
	h.t.Helper()
	h.power("cut")
	h.must(h.s.SetFailpoints(h.id, names...))
	h.power("restore")
}

// stock is the units on each shelf, by "shelf/sku".
func (h *harness) stock() map[string]int {
	out := map[string]int{}
	for _, sh := range h.c.HW.Snapshot().Shelves {
		for sku, n := range sh.Items {
			out[fmt.Sprintf("%d/%s", sh.Shelf, sku)] = n
		}
	}
	return out
}

// taken is what left the shelves between two stock counts.
func taken(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range before {
		if d := n - after[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// settle waits until the firmware runs idle with no session, its outbox
// is empty and the platform holds every sale it has committed — and has
// done so for a while: the status lags the firmware by a tick (and a
// report, in process mode), so a session the shopper has only just
// finished may not show yet.
func (h *harness) settle(d time.Duration) {
	h.t.Helper()
	const stableFor = 600 * time.Millisecond
	var since time.Time
	h.until(d, "the cabinet to settle", func() bool {
		st, ok := h.c.Status()
		if !ok || st.Session != nil || st.OutboxDepth != 0 || !st.Connected || len(h.sales()) < int(st.Counters.LastSeq) {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= stableFor
	})
}

// sales are the cabinet's sales at the platform, de-duplicated.
func (h *harness) sales() []platform.SaleRecord {
	recs, _ := h.s.Platform.Sales()
	return slices.DeleteFunc(recs, func(r platform.SaleRecord) bool { return r.Sale.CabinetID != h.id })
}

// saleIDs counts the distinct sale ids on the wire for each session, over
// every copy the platform received (before de-duplication).
func (h *harness) saleIDs() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, r := range h.s.Platform.Received() {
		if r.CabinetID != h.id || r.Leaf != "sale" {
			continue
		}
		var s msg.Sale
		if err := msg.DecodeStrict(r.Payload, &s); err != nil {
			h.t.Fatalf("sale on the wire: %v", err)
		}
		if out[s.SessionID] == nil {
			out[s.SessionID] = map[string]bool{}
		}
		out[s.SessionID][s.SaleID] = true
	}
	return out
}

// checkBooks checks the platform's books for the cabinet: sequence numbers
// 1…n without gaps, one sale per session and one sale id per session on
// the wire.
func (h *harness) checkBooks() error {
	recs := h.sales()
	_, gaps := h.s.Platform.Sales()
	for _, g := range gaps {
		if g.CabinetID == h.id {
			return fmt.Errorf("sequence gap %d…%d", g.FromSeq, g.ToSeq)
		}
	}
	var seqs []uint64
	sessions := map[string]int{}
	for _, r := range recs {
		seqs = append(seqs, r.Sale.Seq)
		sessions[r.Sale.SessionID]++
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			return fmt.Errorf("sequence numbers %v, want 1…%d", seqs, len(seqs))
		}
	}
	for sid, n := range sessions {
		if n > 1 {
			return fmt.Errorf("session %s has %d sales", sid, n)
		}
	}
	for sid, ids := range h.saleIDs() {
		if len(ids) > 1 {
			return fmt.Errorf("session %s went out under %d sale ids: %v", sid, len(ids), slices.Collect(maps.Keys(ids)))
		}
	}
	return nil
}

// saleOf returns the session's sale at the platform.
func (h *harness) saleOf(sid string) (msg.Sale, bool) {
	for _, r := range h.sales() {
		if r.Sale.SessionID == sid {
			return r.Sale, true
		}
	}
	return msg.Sale{}, false
}

// lines is a sale's charged units by "shelf/sku".
func lines(s msg.Sale) map[string]int {
	out := map[string]int{}
	for _, l := range s.Lines {
		out[fmt.Sprintf("%d/%s", l.Shelf, l.SKU)] += l.Qty
	}
	return out
}

// lockedShut checks the door is shut with its bolt out and the lock not
// energised.
func (h *harness) lockedShut() error {
	for _, d := range h.c.HW.Snapshot().Doors {
		if d.Open || !d.Locked || d.Energised {
			return fmt.Errorf("door %d open=%v locked=%v energised=%v", d.Door, d.Open, d.Locked, d.Energised)
		}
	}
	return nil
}

// checkLedger opens the cabinet's ledger after the simulation closed: the
// bbolt file must be consistent and hold at most one sale per session.
func checkLedger(t testing.TB, dir string) []msg.Sale {
	t.Helper()
	led, err := ledger.Open(filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatalf("reopen the ledger: %v", err)
	}
	defer led.Close()
	err = led.DB().View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("ledger file inconsistent: %v", err)
	}
	sales, err := led.Sales(1, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, s := range sales {
		if prev, ok := seen[s.SessionID]; ok {
			t.Fatalf("ledger: session %s has sales %s and %s", s.SessionID, prev, s.SaleID)
		}
		seen[s.SessionID] = s.SaleID
	}
	return sales
}
