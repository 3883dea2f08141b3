package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/bangfu/cabinet/internal/clock"
	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/internal/logx"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// Ack modes: who releases a sale from the outbox.
const (
	AckPlatform = "platform" // the platform's cumulative ack
	AckBroker   = "broker"   // the broker's PUBACK, for platforms that send no acks
)

// Publisher is what the drain needs of a Link.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
	Connected() bool
	// Changed is closed at the next up or down transition (see Link.Changed).
	Changed() <-chan struct{}
	Epoch() uint64
}

// Drainer moves outbox entries onto the wire in commit (and so seq) order.
type Drainer struct {
	Outbox  *outbox.Outbox
	Link    Publisher
	Signer  msg.Signer
	AckMode string        // AckPlatform (default, and for any unknown value) or AckBroker
	AckWait time.Duration // republish an unacked sale after this (default 60s, checked every Tick)
	Batch   int           // publishes per pass (default 64): ctx is checked between passes
	Tick    time.Duration // pass interval when nothing wakes it (default 1s; idleTick while the outbox is empty)
	// Logger is rate-limited with logx (wrapped unless it already is): a
	// storage or link fault that stands fails every pass alike.
	Logger *slog.Logger
	// Published, if set, is called after each successful publish.
	Published func(e outbox.Entry, at time.Time)
	// SaleRate bounds sale publishes per second (0: unbounded), so that a
	// backlog queued during an outage goes out at a pace the platform can
	// take when a whole fleet reconnects at once. Replies, alarms and
	// restocks are not bounded and go ahead of the sales.
	SaleRate float64
	// Clock runs the pass interval and AckWait and stamps Published
	// (default clock.Real): the device's clock, so that a test moving a
	// fake one sees an unacked sale go again after AckWait of virtual time.
	Clock clock.Clock

	tokens   float64   // sale publishes allowed now
	tokensAt time.Time // when tokens was last topped up

	empty       bool              // the last pass read the whole outbox and found it empty
	sent        map[uint64]uint64 // entry id → link epoch of its last PUBACK
	cursor      uint64            // resume after this entry id (0: from the head)
	cursorEpoch uint64            // the link epoch the cursor belongs to
}

// Run drains until ctx ends.
func (d *Drainer) Run(ctx context.Context) error {
	d.init()
	// One timer at a time, re-armed when it fires: the pass interval of
	// a ticker, and a fake clock sees one waiter, not one per wake.
	tick := d.Clock.After(d.Tick)
	for {
		// Taken before the pass: a reconnect during or after the pass
		// closes it and brings the next pass at once (a new epoch makes
		// every unacked sale due). Changed, unlike Up, stays open while
		// the link is steadily up, so waiting on it cannot spin.
		changed := d.Link.Changed()
		if d.pass(ctx) {
			// A full batch went out: go on at once unless ctx ended.
			select {
			case <-ctx.Done():
				return nil
			default:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.Outbox.Wake():
		case <-changed:
		case <-tick:
			tick = d.Clock.After(d.interval())
		}
	}
}

// idleTick is the pass interval while the outbox is empty: nothing can
// fall due then, and every entry added wakes the drain (Outbox.Notify), so
// an idle cabinet reads its outbox once a minute, not once a second.
const idleTick = time.Minute

// interval is the time to the next pass when nothing wakes the drain.
func (d *Drainer) interval() time.Duration {
	if d.empty {
		return max(d.Tick, idleTick)
	}
	return d.Tick
}

// init fills in the defaults. Non-positive values get them too: a
// negative Batch would make every pass report "more" without publishing
// (a busy loop), a negative Tick would fire at once (a busy loop too), a negative AckWait
// republishes on every pass.
func (d *Drainer) init() {
	d.Logger = logx.Wrap(d.Logger, logx.Options{})
	if d.Clock == nil {
		d.Clock = clock.Real
	}
	if d.AckMode != AckBroker {
		// Fail safe: only an explicit broker mode may release a sale
		// before the platform has acknowledged it.
		if d.AckMode != "" && d.AckMode != AckPlatform {
			d.Logger.Error("unknown ack mode, using platform acks", "ack_mode", d.AckMode)
		}
		d.AckMode = AckPlatform
	}
	if d.AckWait <= 0 {
		d.AckWait = 60 * time.Second
	}
	if d.Batch <= 0 {
		d.Batch = 64
	}
	if d.Tick <= 0 {
		d.Tick = time.Second
	}
	d.sent = map[uint64]uint64{}
}

// refill tops up the sale tokens for the time passed, up to one second's
// worth.
func (d *Drainer) refill(now time.Time) {
	if d.SaleRate <= 0 {
		return
	}
	burst := max(d.SaleRate, 1)
	if d.tokensAt.IsZero() {
		d.tokens = burst
	} else {
		d.tokens = min(burst, d.tokens+now.Sub(d.tokensAt).Seconds()*d.SaleRate)
	}
	d.tokensAt = now
}

// pageSize is how many outbox entries a pass reads at a time.
const pageSize = 256

// pass publishes what is due; it reports whether it stopped at the batch
// limit with more waiting. The queue is read a page at a time; a pass that
// stops at the batch limit leaves a cursor so the next one goes on from
// there instead of re-reading what it has just sent (a long backlog costs
// O(N), not O(N²/Batch)). A new link epoch starts again from the head:
// every unacknowledged sale is due then.
func (d *Drainer) pass(ctx context.Context) bool {
	d.empty = false
	if !d.Link.Connected() {
		return false
	}
	epoch := d.Link.Epoch()
	if epoch != d.cursorEpoch {
		d.cursor, d.cursorEpoch = 0, epoch
	}
	fromHead := d.cursor == 0
	now := d.Clock.Now()
	d.refill(now)
	sentNow := 0
	seen := map[uint64]bool{}
	// Live lane first: replies and alarms never wait behind sales.
	liveDone := map[uint64]bool{}
	lives, err := d.Outbox.PendingLive(d.Batch)
	if err != nil {
		d.Logger.Error("outbox read", logx.Limit("outbox read"), "err", err)
		return false
	}
	for _, e := range lives {
		full, ok := d.publishIfDue(ctx, e, epoch, now, &sentNow)
		if !ok {
			return false
		}
		if full {
			return true
		}
		liveDone[e.ID] = true
	}
	for {
		page, err := d.Outbox.PendingAfter(d.cursor, pageSize)
		if err != nil {
			d.Logger.Error("outbox read", logx.Limit("outbox read"), "err", err)
			return false
		}
		for _, e := range page {
			seen[e.ID] = true
			if liveDone[e.ID] {
				d.cursor = e.ID
				continue
			}
			full, ok := d.publishIfDue(ctx, e, epoch, now, &sentNow)
			if !ok {
				return false
			}
			if full {
				return true // d.cursor stays before e: the next pass starts with it
			}
			d.cursor = e.ID
		}
		if len(page) < pageSize {
			break
		}
	}
	d.cursor = 0
	d.empty = fromHead && len(seen) == 0 && len(liveDone) == 0
	if fromHead {
		// A whole-queue pass: forget entries that have left the outbox.
		for id := range d.sent {
			if !seen[id] {
				delete(d.sent, id)
			}
		}
	}
	return false
}

// publishIfDue publishes e when it is due. It reports whether the batch
// was already full (e not handled), and false in ok when the pass must stop
// (link down, storage error) with e not done.
func (d *Drainer) publishIfDue(ctx context.Context, e outbox.Entry, epoch uint64, now time.Time, sentNow *int) (full, ok bool) {
	if e.Kind == outbox.KindSale && d.AckMode == AckPlatform && !e.PublishedAt.IsZero() {
		// Published and PUBACKed on this connection: wait for the
		// platform's ack. After a reconnect the proof is gone, so go again.
		if d.sent[e.ID] == epoch && now.Sub(e.PublishedAt) < d.AckWait {
			return false, true
		}
	}
	if *sentNow >= d.Batch {
		return true, true
	}
	if e.Kind == outbox.KindSale && d.SaleRate > 0 {
		if d.tokens < 1 {
			return false, false // over the rate: the next tick goes on
		}
		d.tokens--
	}
	body, err := d.Signer.SealBytes(e.Payload)
	if err != nil {
		d.Logger.Error("seal outbox entry", logx.Limit("seal"), "id", e.ID, "err", err)
		return false, false
	}
	if e.Kind == outbox.KindSale {
		failpoint.Hit(failpoint.SalePublishing)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second) // the network's time, not Clock's
	err = d.Link.Publish(pctx, e.Topic, 1, false, body)
	cancel()
	if err != nil {
		if !errors.Is(err, ErrNotConnected) && ctx.Err() == nil {
			d.Logger.Warn("publish", logx.Limit("publish"), "kind", e.Kind, "seq", e.SaleSeq, "err", err)
		}
		return false, false
	}
	*sentNow++
	if e.Kind == outbox.KindSale {
		failpoint.Hit(failpoint.SalePublished)
	}
	at := d.Clock.Now()
	if e.Kind == outbox.KindSale && d.AckMode == AckPlatform {
		if err := d.Outbox.MarkPublished(e.ID, at); err != nil {
			d.Logger.Error("outbox mark", logx.Limit("outbox write"), "id", e.ID, "err", err)
			return false, false
		}
		d.sent[e.ID] = epoch
	} else if err := d.Outbox.Remove(e.ID); err != nil {
		d.Logger.Error("outbox remove", logx.Limit("outbox write"), "id", e.ID, "err", err)
		return false, false
	}
	if d.Published != nil {
		d.Published(e, at)
	}
	return false, true
}
