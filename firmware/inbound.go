package firmware

import (
	"context"
	"errors"
	"fmt"
	"github.com/bangfu/cabinet/firmware/infer"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/bangfu/cabinet/firmware/catalog"
	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// handle acts on one inbound message. Nothing that fails verification
// changes state: it is dropped, counted and alarmed (rate-limited).
func (d *Device) handle(ctx context.Context, in telemetry.Inbound) error {
	switch in.Topic {
	case d.topics.Catalog():
		var c msg.Catalog
		if _, err := d.keys.OpenInto(in.Payload, &c); err != nil {
			d.badMessage(in.Topic, err)
			return nil
		}
		if err := d.acceptCatalog(c, d.now()); err != nil {
			if errors.Is(err, catalog.ErrStale) {
				d.log.Debug("catalog ignored", "err", err) // the retained copy comes on every connect
				return nil
			}
			d.log.Warn("catalog refused", "version", c.Version, "err", err)
			return nil
		}
		d.log.Info("catalog accepted", "version", c.Version, "products", len(c.Products))
		if p := d.pendingPlan; p != nil {
			d.pendingPlan = nil
			d.applyPlanogram(*p)
		}
		d.checkRevoked() // a product still on the shelves may just have been revoked
	case d.topics.Planogram():
		var p msg.Planogram
		if _, err := d.keys.OpenInto(in.Payload, &p); err != nil {
			d.badMessage(in.Topic, err)
			return nil
		}
		d.applyPlanogram(p)
	case d.topics.Ack():
		var a msg.Ack
		if _, err := d.keys.OpenInto(in.Payload, &a); err != nil {
			d.badMessage(in.Topic, err)
			return nil
		}
		switch {
		case a.CabinetID != "" && a.CabinetID != d.cfg.CabinetID:
			d.badMessage(in.Topic, fmt.Errorf("ack for cabinet %q", a.CabinetID))
			return nil
		case a.CabinetID == "" && d.cmd.ackBound:
			// The platform binds its acks to this cabinet: an unbound one
			// is an old ack replayed.
			d.badMessage(in.Topic, errors.New("ack without cabinet_id after a bound one"))
			return nil
		case a.CabinetID != "":
			d.cmd.ackBound = true
		}
		c, err := d.ledger.Counters()
		if err != nil {
			d.log.Error("ack: counters", "err", err)
			return nil
		}
		if a.SalesUptoSeq > c.LastSeq {
			d.log.Warn("ack beyond our last sale ignored", "upto", a.SalesUptoSeq, "last_seq", c.LastSeq)
			return nil
		}
		if n, err := d.ledger.Outbox.AckSales(a.SalesUptoSeq); err != nil {
			d.log.Error("ack", "err", err)
		} else if n > 0 {
			d.log.Info("sales acknowledged", "upto", a.SalesUptoSeq, "released", n)
		}
	case d.topics.Cmd():
		var cmd msg.Command
		if _, err := d.keys.OpenInto(in.Payload, &cmd); err != nil {
			d.badMessage(in.Topic, err)
			return nil
		}
		err := d.command(ctx, cmd, in.Received)
		// An accepted command may have moved the trust state (keys,
		// newest issued_at): keep the copy the checks use in step.
		if t, terr := d.ledger.Trust(); terr == nil {
			d.cmd.trust, d.cmd.newestIssued = t, t.NewestIssued
		}
		return err
	default:
		d.log.Debug("message on unexpected topic", "topic", in.Topic)
	}
	return nil
}

func (d *Device) applyPlanogram(p msg.Planogram) {
	shelves := map[int]int{}
	for _, sh := range d.hw.Shelves {
		shelves[sh.Number] = sh.Door
	}
	if d.catalog.Version() == 0 {
		// Retained catalog and planogram arrive in any order: hold the
		// planogram (signature already checked) until a catalog is here.
		d.pendingPlan = &p
		return
	}
	warns, err := d.catalog.ApplyPlanogram(p, d.cfg.CabinetID, shelves)
	id := fmt.Sprintf("planogram/%d", p.Version)
	if err != nil {
		if errors.Is(err, catalog.ErrStale) {
			return
		}
		d.log.Warn("planogram refused", "version", p.Version, "err", err)
		d.reply(nil, id, msg.ErrBadRequest, err.Error(), nil)
		return
	}
	var texts []string
	for _, w := range warns {
		texts = append(texts, w.Text)
		d.log.Warn("planogram lint", "version", p.Version, "shelf", w.Shelf, "skus", strings.Join(w.SKUs, ","), "warning", w.Text)
	}
	report := d.predictPlanogram()
	if report.Pass {
		d.log.Info("planogram lint", "version", p.Version, "predicted_exact_pct", report.PredictedExactPct)
	} else {
		d.log.Warn("planogram lint: too many sales will need review", "version", p.Version,
			"predicted_exact_pct", report.PredictedExactPct, "pass_pct", infer.PassExactPct)
	}
	for _, c := range report.Confusions {
		d.log.Info("planogram lint confusion", "version", p.Version, "taken", c.Taken, "confused_with", c.ConfusedWith, "pct", c.Pct)
	}
	d.warnings = texts
	d.log.Info("planogram accepted", "version", p.Version, "warnings", len(texts))
	r := d.replyItem(id, "", "planogram accepted", texts)
	body := r.Body.(msg.Reply)
	body.Lint = &report
	r.Body = body
	if err := d.ledger.Enqueue(nil, r); err != nil {
		d.log.Error("queue reply", "cmd", id, "err", err)
	}
}

// predictPlanogram runs the planogram lint's simulation on the planogram
// held, at the stock the books hold (see infer.Predict).
func (d *Device) predictPlanogram() msg.LintReport {
	plan := d.catalog.PlanShelves()
	if stock, err := d.ledger.Stock(); err == nil {
		for i := range plan {
			for _, k := range plan[i].SKUs {
				if n, ok := stock.Get(plan[i].Shelf, k.SKU); ok {
					if plan[i].Stock == nil {
						plan[i].Stock = map[string]int{}
					}
					plan[i].Stock[k.SKU] = n
				}
			}
		}
	}
	opt := d.inferOptions()
	key := fmt.Sprintf("%v|%+v", plan, *opt)
	lintMemo.Lock()
	defer lintMemo.Unlock()
	if r, ok := lintMemo.m[key]; ok {
		return r
	}
	r := LintReport(infer.Predict(plan, infer.PredictSessions, lintNoiseG, 1, opt))
	if len(lintMemo.m) >= 32 {
		clear(lintMemo.m) // a handful of planograms per process; never grows
	}
	lintMemo.m[key] = r
	return r
}

// lintMemo keeps the lint's predictions by planogram, stock and options:
// the simulation is deterministic, takes a while on a cabinet board, and
// the same planogram comes back after every restart (and, in the
// simulator, for every cabinet).
var lintMemo = struct {
	sync.Mutex
	m map[string]msg.LintReport
}{m: map[string]msg.LintReport{}}

// lintNoiseG is the load-cell noise the lint assumes: a good cell's σ.
const lintNoiseG = 0.5

// LintReport turns a prediction into the planogram reply's lint report.
func LintReport(p infer.Prediction) msg.LintReport {
	r := msg.LintReport{PredictedExactPct: round1(p.ExactPct), Sessions: p.Sessions, Pass: p.Pass,
		Confusions: []msg.LintConfusion{}}
	for _, c := range p.Confusions {
		r.Confusions = append(r.Confusions, msg.LintConfusion{Taken: c.Taken, ConfusedWith: c.ConfusedWith, Pct: round1(c.Pct)})
	}
	return r
}

// badMessage counts and alarms an envelope that did not verify.
func (d *Device) badMessage(topic string, err error) {
	d.mu.Lock()
	d.bad++
	n := d.bad
	d.mu.Unlock()
	d.badLog.Warn("bad_message", "message refused", "topic", topic, "err", err)
	if now := d.now(); now.Sub(d.cmd.lastBadAt) >= time.Minute {
		d.cmd.lastBadAt = now
		d.alarm(msg.AlarmBadMessage, msg.SevWarning, map[string]any{"topic": topic, "err": err.Error(), "count": n})
	}
}

// replyItem is a reply ready to commit; code "" means ok.
func (d *Device) replyItem(id, code, detail string, warnings []string) ledger.Item {
	if len(id) > msg.MaxIDBytes {
		// A refused over-long id is not echoed whole: the reply would be as
		// big as the attack. The platform never sends ids this long.
		id = id[:msg.MaxIDBytes]
	}
	r := msg.Reply{CmdID: id, OK: code == "", Error: code, Detail: detail, At: msg.At(d.now()), Warnings: warnings}
	return ledger.Item{Kind: outbox.KindReply, Topic: d.topics.Reply(), Body: r}
}

// reply queues a reply; code "" means ok. cmd, when set, enters the replay
// cache in the same transaction.
func (d *Device) reply(cmd *msg.Command, id, code, detail string, warnings []string) {
	if err := d.ledger.Enqueue(cmd, d.replyItem(id, code, detail, warnings)); err != nil {
		d.log.Error("queue reply", "cmd", id, "err", err)
	}
}

func (d *Device) refuse(cmd msg.Command, r *payment.Refusal) {
	d.log.Warn("command refused", "cmd", cmd.ID, "type", cmd.Type, "code", r.Code, "detail", r.Detail)
	d.reply(nil, cmd.ID, r.Code, r.Detail, nil)
}

// command acts on a verified command.
func (d *Device) command(ctx context.Context, cmd msg.Command, received time.Time) error {
	now := d.now()
	// A clock that cannot be trusted cannot judge expiry: refuse before
	// anything reads it. Then refuse what is older than the newest
	// accepted command by more than any command may live.
	if ok, why := d.clockTrusted(now); !ok {
		d.refuse(cmd, &payment.Refusal{Code: msg.ErrOutOfService, Detail: "clock not trusted: " + why})
		return nil
	}
	if why := d.tooOld(cmd); why != "" {
		d.refuse(cmd, &payment.Refusal{Code: msg.ErrExpired, Detail: why})
		return nil
	}
	if cmd.Type == msg.CmdUnlock {
		d.unlock(ctx, cmd, received, now)
		return nil
	}
	if r := d.auth.CheckCommand(cmd, now, d.ledger); r != nil {
		d.refuse(cmd, r)
		return nil
	}
	switch cmd.Type {
	case msg.CmdCancel:
		if s := d.sess; s != nil {
			// Judge the door as it is now, not as the last tick saw it: a
			// shopper who has just opened it must not walk off with the
			// goods on a cancelled session.
			d.sample(ctx)
			d.advance(ctx, s, now)
		}
		s := d.sess
		if s != nil && s.ID != cmd.SessionID {
			s = nil // another session: this one is unknown
		}
		d.feed(ctx, s, fsm.Event{Kind: fsm.Cancel}, now, cause{cmd: &cmd})
	case msg.CmdResend:
		if cmd.FromSeq == 0 || cmd.ToSeq < cmd.FromSeq {
			d.reply(nil, cmd.ID, msg.ErrBadRequest, "want 1 ≤ from_seq ≤ to_seq", nil)
			return nil
		}
		n, err := d.ledger.ResendSales(d.topics.Sale(), cmd.FromSeq, cmd.ToSeq)
		if err != nil {
			d.reply(nil, cmd.ID, msg.ErrBadRequest, err.Error(), nil)
			return nil
		}
		d.reply(&cmd, cmd.ID, "", fmt.Sprintf("%d sales queued", n), nil)
	case msg.CmdConfig:
		rest, add, retire, keysToo, err := splitKeySettings(cmd.Settings)
		switch {
		case err != nil:
			d.reply(nil, cmd.ID, msg.ErrBadRequest, err.Error(), nil)
			return nil
		case keysToo && len(rest) > 0:
			d.reply(nil, cmd.ID, msg.ErrBadRequest, "key rotation goes in a config command of its own", nil)
			return nil
		case keysToo:
			d.rotateKeys(cmd, add, retire, now)
			return nil
		}
		c, err := d.cfg.Apply(cmd.Settings)
		if err != nil {
			d.reply(nil, cmd.ID, msg.ErrBadRequest, err.Error(), nil)
			return nil
		}
		d.cfg = c
		if d.hbC != nil {
			d.hbC = d.clk.After(c.Heartbeat()) // the new period from now
		}
		d.reply(&cmd, cmd.ID, "", "settings applied until restart", nil)
	case msg.CmdReboot:
		if d.sess != nil {
			d.reply(nil, cmd.ID, msg.ErrBusy, "a session is in progress", nil)
			return nil
		}
		d.reply(&cmd, cmd.ID, "", "rebooting", nil)
		return ErrReboot
	case msg.CmdRestockOpen:
		d.restockOpen(ctx, cmd, received, now)
	case msg.CmdUpdate:
		d.updateCommand(ctx, cmd)
	default:
		d.reply(nil, cmd.ID, msg.ErrBadRequest, fmt.Sprintf("unknown command type %q", cmd.Type), nil)
	}
	return nil
}

// unlock opens a shopping session: checks, then the session and its
// "before" weights are committed, then the lock is energised.
func (d *Device) unlock(ctx context.Context, cmd msg.Command, received, now time.Time) {
	// Checks that spend nothing come first: a refused unlock must leave
	// the QR nonce unspent so the shopper can simply try again.
	if r := d.auth.CheckCommand(cmd, now, d.ledger); r != nil {
		d.refuse(cmd, r)
		return
	}
	door := payment.UnlockDoor(cmd)
	if d.lockFor(door) == nil {
		d.refuse(cmd, &payment.Refusal{Code: msg.ErrBadRequest, Detail: fmt.Sprintf("no door %d", door)})
		return
	}
	// limit_fen ≤ 0 means no limit (payment.Limit), which is over any cap.
	if d.cfg.MaxLimitFen > 0 && (cmd.LimitFen <= 0 || cmd.LimitFen > d.cfg.MaxLimitFen) {
		d.refuse(cmd, &payment.Refusal{Code: msg.ErrBadRequest,
			Detail: fmt.Sprintf("limit_fen %d (0: no limit) over this cabinet's cap %d", cmd.LimitFen, d.cfg.MaxLimitFen)})
		return
	}
	// An open door or a moving shelf counts as busy: the "before" weights
	// must be the cabinet as it stands, shut and still.
	before, werr := d.beforeWeights(now)
	st := payment.CabinetState{Busy: d.sess != nil || werr != nil, HasCatalog: d.catalog.Version() > 0}
	d.refreshRevoked() // a product may have expired since the last tick
	why := d.outOfService()
	st.OutOfService = why != ""
	if r := d.auth.CheckUnlock(cmd, now, d.ledger, d.qr, st); r != nil {
		switch {
		case r.Code == msg.ErrOutOfService:
			r.Detail = why
		case r.Code == msg.ErrBusy && d.sess == nil && werr != nil:
			r.Detail = werr.Error()
		}
		d.refuse(cmd, r)
		return
	}
	s := &ledger.Session{
		ID: cmd.SessionID, CmdID: cmd.ID, Kind: "shopping", Buyer: *cmd.Buyer, LimitFen: cmd.LimitFen,
		Door: door, State: fsm.Authorised, Received: received.UTC(),
		Deadline: now.Add(d.cfg.UnlockWindow()).UTC(), Before: before, Goods: d.goodsSnapshot(),
		CatalogVersion: d.catalog.Version(),
	}
	if err := d.ledger.SaveSession(s, &cmd); err != nil {
		d.log.Error("persist session", "err", err)
		d.reply(nil, cmd.ID, msg.ErrOutOfService, "storage fault", nil)
		d.alarm(msg.AlarmStorageFault, msg.SevCritical, map[string]any{"err": err.Error()})
		return
	}
	d.sess = s
	d.watchTouches(s)
	failpoint.Hit(failpoint.SessionSaved)
	energised, err := d.energise(ctx, door)
	if err != nil {
		d.feed(ctx, s, fsm.Event{Kind: fsm.LockFailed}, now, cause{err: err})
		return
	}
	failpoint.Hit(failpoint.LockEnergised)
	retracted := d.clk.Now()
	d.feed(ctx, s, fsm.Event{Kind: fsm.Energised}, now, cause{})
	d.log.Info("unlocked", "session", s.ID, "door", door, "buyer_kind", s.Buyer.Kind)
	if d.onUnl != nil {
		d.onUnl(received, energised, retracted)
	}
}

// Freshness of the "before" weights.
const (
	settledMaxAge  = 1500 * time.Millisecond // the newest settled reading is at most this old
	settledDriftG  = 2.0                     // and the live reading is within this (or 3σ) of it
	settledDriftSD = 3.0
)

// beforeWeights returns every shelf's settled weight, refusing while a
// door is open or a shelf is moving (someone is at the cabinet). The
// same test decides whether the QR is shown.
func (d *Device) beforeWeights(now time.Time) ([]ledger.ShelfWeight, error) {
	for _, door := range d.hw.Doors {
		if !d.doorClosed[door.Number] {
			return nil, fmt.Errorf("door %d is open", door.Number)
		}
	}
	var out []ledger.ShelfWeight
	for _, sh := range d.hw.Shelves {
		r, ok := d.settled[sh.Number]
		live, lok := d.readings[sh.Number]
		if !ok || !lok || now.Sub(r.At) > settledMaxAge ||
			math.Abs(live.Grams-r.Grams) > max(settledDriftG, settledDriftSD*r.NoiseG) {
			return nil, fmt.Errorf("shelf %d is not steady; try again in a moment", sh.Number)
		}
		w := ledger.ShelfWeight{Shelf: sh.Number, Grams: r.Grams, NoiseG: r.NoiseG, Samples: r.Samples, At: r.At.UTC()}
		if rr, ok := d.rightSettled[sh.Number]; ok && sh.Right != nil && now.Sub(rr.At) <= settledMaxAge {
			if live, ok := d.right[sh.Number]; ok && math.Abs(live.Grams-rr.Grams) <= max(settledDriftG, settledDriftSD*rr.NoiseG) {
				g := rr.Grams
				w.RightG = &g
			}
		}
		out = append(out, w)
	}
	return out, nil
}

// LockTimeout is how long a lock may take to report its bolt retracted.
const LockTimeout = 2 * time.Second

// energise pulls the door's bolt and waits for the lock's feedback to say
// it is open, so "unlocked" is only ever reported for a door that opens. A
// bolt that does not move is a lock fault.
// It returns when the lock was energised.
func (d *Device) energise(ctx context.Context, door int) (time.Time, error) {
	l := d.lockFor(door)
	if err := l.Energise(ctx); err != nil {
		return time.Time{}, err
	}
	energised := d.clk.Now()
	deadline := d.clk.Now().Add(LockTimeout)
	for {
		locked, err := l.Locked(ctx)
		if err != nil {
			return energised, err
		}
		if !locked {
			return energised, nil
		}
		if d.clk.Now().After(deadline) {
			return energised, fmt.Errorf("firmware: door %d still locked %v after energising", door, LockTimeout)
		}
		if err := d.clk.Sleep(ctx, 10*time.Millisecond); err != nil {
			return energised, err
		}
	}
}
