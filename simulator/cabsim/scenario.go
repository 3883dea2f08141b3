package cabsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/simulator/stock"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Scenario is a scripted session, read from a JSON file. Steps run in
// order; expectations wait up to their `within` (default 5s).
type Scenario struct {
	Name    string  `json:"name"`
	Seed    int64   `json:"seed"`
	NoiseG  float64 `json:"noise_g"`
	Cabinet string  `json:"cabinet"` // default: the first cabinet
	// Stock names a stock file (docs/simulator.md) relative to the
	// scenario file; LoadScenario makes it a path usable as is. Empty:
	// the demo goods, or the -stock of the command line.
	Stock string `json:"stock"`
	// TwoCell stands the cabinet's shelves on two load cells each, as
	// -two-cell does (Options.TwoCell); false leaves the command line's.
	TwoCell bool   `json:"two_cell"`
	Steps   []Step `json:"steps"`
}

// Step is one action or expectation; exactly one field is set.
type Step struct {
	Scan *struct {
		Buyer    msg.Buyer `json:"buyer"`
		LimitFen int64     `json:"limit_fen"`
		// Door is the door the shopper asks for (0: door 1).
		Door int `json:"door"`
		// ExpectError is the reply code expected; empty expects success.
		ExpectError string `json:"expect_error"`
	} `json:"scan,omitempty"`
	Door *struct {
		Door   int    `json:"door"`
		Action string `json:"action"`
		Force  bool   `json:"force"`
		// ExpectFail expects the door not to move (a locked door).
		ExpectFail bool `json:"expect_fail"`
	} `json:"door,omitempty"`
	Take *struct {
		Shelf int    `json:"shelf"`
		SKU   string `json:"sku"`
		Qty   int    `json:"qty"`
	} `json:"take,omitempty"`
	Put *struct {
		Shelf   int     `json:"shelf"`
		SKU     string  `json:"sku"`
		Qty     int     `json:"qty"`
		ObjectG float64 `json:"object_g"`
	} `json:"put,omitempty"`
	// Lean has the shopper lean on a shelf with G grams of force; G 0
	// lets go (so does closing the door).
	// X, optional, is where along a two-cell shelf (0 left, 1 right;
	// default the middle).
	Lean *struct {
		Shelf int      `json:"shelf"`
		G     float64  `json:"g"`
		X     *float64 `json:"x"`
	} `json:"lean,omitempty"`
	Wait string `json:"wait,omitempty"` // a Go duration
	// Attack sends a bad unlock: replayed, expired, wrong_cabinet,
	// forged or stale_qr. ExpectError is the reply code expected ("" for
	// forged: a forged message gets no reply at all).
	Attack *struct {
		Kind        string `json:"kind"`
		ExpectError string `json:"expect_error"`
	} `json:"attack,omitempty"`
	ExpectSale *struct {
		Status   string `json:"status"`
		TotalFen *int64 `json:"total_fen"`
		Lines    []struct {
			SKU   string `json:"sku"`
			Qty   int    `json:"qty"`
			Shelf int    `json:"shelf"`
		} `json:"lines"`
		Within string `json:"within"`
	} `json:"expect_sale,omitempty"`
	ExpectAlarm *struct {
		Kind   string `json:"kind"`
		Within string `json:"within"`
	} `json:"expect_alarm,omitempty"`
	ExpectLocked *struct {
		Door int `json:"door"`
	} `json:"expect_locked,omitempty"`
	ExpectSales *struct {
		Count  int    `json:"count"`
		Within string `json:"within"`
	} `json:"expect_sales,omitempty"`
}

// LoadScenario reads a scenario file strictly.
func LoadScenario(path string) (Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	var sc Scenario
	if err := msg.DecodeStrict(data, &sc); err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	if len(sc.Steps) == 0 {
		return Scenario{}, fmt.Errorf("scenario %s: no steps", path)
	}
	if sc.Stock != "" {
		if !filepath.IsAbs(sc.Stock) {
			sc.Stock = filepath.Join(filepath.Dir(path), sc.Stock)
		}
		// Said now, with the scenario's name, rather than by Start.
		if _, err := stock.Load(sc.Stock, time.Now()); err != nil {
			return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
		}
	}
	return sc, nil
}

// Apply sets what the scenario fixes — seed, noise, stock file, two load
// cells — over the options given (the command line's), which keep the
// rest.
func (sc Scenario) Apply(o Options) Options {
	if sc.Seed != 0 {
		o.Seed = sc.Seed
	}
	if sc.NoiseG != 0 {
		o.NoiseG = sc.NoiseG
	}
	if sc.Stock != "" {
		o.StockFile = sc.Stock
	}
	if sc.TwoCell {
		o.TwoCell = true
	}
	return o
}

// RunScenario plays sc against the simulation, writing a line per step to
// out, and returns the failed expectations (nil if all held).
func (s *Sim) RunScenario(ctx context.Context, sc Scenario, out io.Writer) []error {
	if s.Platform == nil {
		return []error{errors.New("scenarios need the virtual platform (not -platform=external)")}
	}
	id := sc.Cabinet
	if id == "" {
		id = s.cabinets[0].ID
	}
	var fails []error
	r := &runner{s: s, id: id, out: out}
	// Let the firmware come up: catalog, planogram and steady scales.
	if err := r.waitReady(ctx, 20*time.Second); err != nil {
		return []error{err}
	}
	r.baseSales = len(r.sales())
	for i, st := range sc.Steps {
		if err := r.step(ctx, st); err != nil {
			err = fmt.Errorf("step %d: %w", i+1, err)
			fmt.Fprintf(out, "FAIL %v\n", err)
			fails = append(fails, err)
		}
	}
	r.summary()
	return fails
}

// summary prints what the platform received from the cabinet.
func (r *runner) summary() {
	sales := r.sales()
	fmt.Fprintf(r.out, "platform received %d sale(s):\n", len(sales))
	for _, s := range sales {
		fmt.Fprintf(r.out, "  seq %d %s %s total %d fen, %d line(s)\n", s.Seq, s.SaleID, s.Status, s.TotalFen, len(s.Lines))
	}
	var kinds []string
	for _, a := range r.s.Platform.Alarms() {
		if a.CabinetID == r.id {
			kinds = append(kinds, a.Kind)
		}
	}
	fmt.Fprintf(r.out, "platform received %d alarm(s): %v\n", len(kinds), kinds)
}

type runner struct {
	s         *Sim
	id        string
	out       io.Writer
	last      *msg.Command // last unlock the platform sent
	baseSales int
	seen      int // sales already matched by expect_sale
}

func (r *runner) sales() []msg.Sale {
	recs, _ := r.s.Platform.Sales()
	var out []msg.Sale
	for _, rec := range recs {
		if rec.Sale.CabinetID == r.id {
			out = append(out, rec.Sale)
		}
	}
	return out
}

func (r *runner) waitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		v, err := r.s.View(r.id)
		if err != nil {
			return err
		}
		if v.Mode == "idle" && v.Display["qr"] != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	v, _ := r.s.View(r.id)
	return fmt.Errorf("cabinet %s not ready for shoppers after %v (mode %q)", r.id, d, v.Mode)
}

func within(s string) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return 5 * time.Second
}

func (r *runner) step(ctx context.Context, st Step) error {
	switch {
	case st.Scan != nil:
		// A shopper scans only when the cabinet shows a code.
		if err := r.waitReady(ctx, 10*time.Second); err != nil && st.Scan.ExpectError == "" {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cmd, reply, err := r.s.Scan(sctx, r.id, st.Scan.Buyer, st.Scan.LimitFen, st.Scan.Door)
		if err != nil {
			return err
		}
		r.last = &cmd
		fmt.Fprintf(r.out, "scan: session %s reply ok=%v %s %s\n", cmd.SessionID, reply.OK, reply.Error, reply.Detail)
		if reply.Error != st.Scan.ExpectError {
			return fmt.Errorf("scan: reply %q (%s), want %q", reply.Error, reply.Detail, st.Scan.ExpectError)
		}
	case st.Door != nil:
		err := r.s.Door(r.id, st.Door.Door, st.Door.Action, st.Door.Force)
		fmt.Fprintf(r.out, "door %d %s: err=%v\n", max(st.Door.Door, 1), st.Door.Action, err)
		if st.Door.ExpectFail != (err != nil) {
			return fmt.Errorf("door %s: err=%v, expect_fail=%v", st.Door.Action, err, st.Door.ExpectFail)
		}
	case st.Take != nil:
		fmt.Fprintf(r.out, "take %d×%s from shelf %d\n", max(st.Take.Qty, 1), st.Take.SKU, st.Take.Shelf)
		return r.s.Take(r.id, st.Take.Shelf, st.Take.SKU, st.Take.Qty)
	case st.Put != nil:
		fmt.Fprintf(r.out, "put on shelf %d: %s×%d %gg\n", st.Put.Shelf, st.Put.SKU, max(st.Put.Qty, 1), st.Put.ObjectG)
		return r.s.Put(r.id, st.Put.Shelf, st.Put.SKU, st.Put.Qty, st.Put.ObjectG)
	case st.Lean != nil:
		if x := st.Lean.X; x != nil {
			fmt.Fprintf(r.out, "lean %g g on shelf %d at %g\n", st.Lean.G, st.Lean.Shelf, *x)
			return r.s.LeanAt(r.id, st.Lean.Shelf, st.Lean.G, *x)
		}
		fmt.Fprintf(r.out, "lean %g g on shelf %d\n", st.Lean.G, st.Lean.Shelf)
		return r.s.Lean(r.id, st.Lean.Shelf, st.Lean.G)
	case st.Wait != "":
		d, err := time.ParseDuration(st.Wait)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	case st.Attack != nil:
		return r.attack(ctx, st.Attack.Kind, st.Attack.ExpectError)
	case st.ExpectSale != nil:
		return r.expectSale(ctx, st)
	case st.ExpectSales != nil:
		want := r.baseSales + st.ExpectSales.Count
		wctx, cancel := context.WithTimeout(ctx, within(st.ExpectSales.Within))
		defer cancel()
		got, err := r.s.Platform.WaitSales(wctx, r.id, want)
		// Also make sure no extra sale arrives.
		if err == nil && len(got) != want {
			return fmt.Errorf("platform holds %d sales, want %d", len(got)-r.baseSales, st.ExpectSales.Count)
		}
		if err != nil {
			return fmt.Errorf("platform holds %d sales, want %d", len(r.sales())-r.baseSales, st.ExpectSales.Count)
		}
		_, gaps := r.s.Platform.Sales()
		if len(gaps) > 0 {
			return fmt.Errorf("sequence gaps: %+v", gaps)
		}
		fmt.Fprintf(r.out, "platform holds %d sales, no gaps\n", st.ExpectSales.Count)
	case st.ExpectAlarm != nil:
		wctx, cancel := context.WithTimeout(ctx, within(st.ExpectAlarm.Within))
		defer cancel()
		a, err := r.s.Platform.WaitAlarm(wctx, r.id, st.ExpectAlarm.Kind)
		if err != nil {
			return fmt.Errorf("no %s alarm: %w", st.ExpectAlarm.Kind, err)
		}
		fmt.Fprintf(r.out, "alarm %s %s %v\n", a.Kind, a.Severity, a.Detail)
	case st.ExpectLocked != nil:
		door := max(st.ExpectLocked.Door, 1)
		snap, ok := r.s.byID[r.id]
		if !ok {
			return ErrNotFound
		}
		for _, d := range snap.HW.Snapshot().Doors {
			if d.Door == door && (!d.Locked || d.Open) {
				return fmt.Errorf("door %d is not locked shut (open=%v locked=%v)", door, d.Open, d.Locked)
			}
		}
		if err := r.s.Door(r.id, door, "open", false); err == nil {
			r.s.Door(r.id, door, "close", false)
			return fmt.Errorf("door %d opened without force", door)
		}
		fmt.Fprintf(r.out, "door %d stays locked\n", door)
	default:
		return errors.New("empty step")
	}
	return nil
}

func (r *runner) expectSale(ctx context.Context, st Step) error {
	e := st.ExpectSale
	wctx, cancel := context.WithTimeout(ctx, within(e.Within))
	defer cancel()
	n := r.baseSales + r.seen + 1
	got, err := r.s.Platform.WaitSales(wctx, r.id, n)
	if err != nil {
		return fmt.Errorf("no sale arrived: %w", err)
	}
	r.seen++
	sale := got[n-1].Sale
	js, _ := json.Marshal(sale)
	fmt.Fprintf(r.out, "sale: %s\n", js)
	if e.Status != "" && sale.Status != e.Status {
		return fmt.Errorf("sale status %q, want %q", sale.Status, e.Status)
	}
	if e.TotalFen != nil && sale.TotalFen != *e.TotalFen {
		return fmt.Errorf("sale total %d fen, want %d", sale.TotalFen, *e.TotalFen)
	}
	if e.Lines != nil {
		want := map[string]int{}
		for _, l := range e.Lines {
			want[fmt.Sprintf("%d/%s", l.Shelf, l.SKU)] += l.Qty
		}
		have := map[string]int{}
		for _, l := range sale.Lines {
			have[fmt.Sprintf("%d/%s", l.Shelf, l.SKU)] += l.Qty
		}
		if fmt.Sprint(want) != fmt.Sprint(have) {
			return fmt.Errorf("sale lines %v, want %v", have, want)
		}
	}
	return nil
}

// attack sends a bad unlock and checks the reply.
func (r *runner) attack(ctx context.Context, kind, expect string) error {
	p := r.s.Platform
	c, ok := r.s.byID[r.id]
	if !ok {
		return ErrNotFound
	}
	cmd := p.NewCommand(msg.CmdUnlock, r.id)
	cmd.SessionID = "S-attack-" + msg.NewID(time.Now())
	cmd.Buyer = &msg.Buyer{Ref: "attacker", Kind: msg.BuyerPerson}
	cmd.Door = 1
	cmd.LimitFen = platform.DefaultLimitFen
	if parsed, err := parseShownQR(c); err == nil {
		cmd.QRNonce = parsed
	}
	signer := p.Signer()
	topicCab := r.id
	switch kind {
	case "replayed":
		if r.last == nil {
			return errors.New("attack replayed: no earlier unlock to replay")
		}
		cmd = *r.last
	case "expired":
		now := time.Now()
		cmd.IssuedAt = msg.At(now.Add(-2 * time.Minute))
		cmd.ExpiresAt = msg.At(now.Add(-time.Minute))
	case "wrong_cabinet":
		cmd.CabinetID = "NM-999999-0000"
	case "stale_qr":
		cmd.QRNonce = "AAAAAAAAAAAAAAAA"
	case "forged":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		signer.Key = k // the platform's kid, someone else's key
	default:
		return fmt.Errorf("attack %q: want replayed, expired, wrong_cabinet, stale_qr or forged", kind)
	}
	wait := 5 * time.Second
	if kind == "forged" {
		wait = 1500 * time.Millisecond
	}
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	reply, err := p.SendTo(sctx, topicCab, cmd, signer)
	if kind == "forged" {
		if err == nil {
			return fmt.Errorf("attack forged: the cabinet replied %+v; a forged command must be dropped", reply)
		}
		fmt.Fprintf(r.out, "attack forged: dropped without reply\n")
		return nil
	}
	if err != nil {
		return fmt.Errorf("attack %s: %w", kind, err)
	}
	fmt.Fprintf(r.out, "attack %s: reply ok=%v %s %s\n", kind, reply.OK, reply.Error, reply.Detail)
	if reply.OK || reply.Error != expect {
		return fmt.Errorf("attack %s: reply %q ok=%v, want %q", kind, reply.Error, reply.OK, expect)
	}
	return nil
}

func parseShownQR(c *Cabinet) (string, error) {
	qr := c.HW.Snapshot().Display.QR
	if qr == "" {
		return "", errors.New("no QR shown")
	}
	parsed, err := payment.ParseQR(qr)
	if err != nil {
		return "", err
	}
	return parsed.Nonce, nil
}
