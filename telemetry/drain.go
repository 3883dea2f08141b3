package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"time"

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
	Up() <-chan struct{}
	Epoch() uint64
}

// Drainer moves outbox entries onto the wire in commit (and so seq) order.
type Drainer struct {
	Outbox  *outbox.Outbox
	Link    Publisher
	Signer  msg.Signer
	AckMode string        // AckPlatform (default) or AckBroker
	AckWait time.Duration // republish an unacked sale after this (default 60s)
	Batch   int           // entries per pass (default 64): bounds the rate after an outage
	Tick    time.Duration // pass interval when nothing wakes it (default 1s)
	Logger  *slog.Logger
	// Published, if set, is called after each successful publish.
	Published func(e outbox.Entry, at time.Time)

	sent map[uint64]uint64 // entry id → link epoch of its last PUBACK
}

// Run drains until ctx ends.
func (d *Drainer) Run(ctx context.Context) error {
	if d.AckMode == "" {
		d.AckMode = AckPlatform
	}
	if d.AckWait == 0 {
		d.AckWait = 60 * time.Second
	}
	if d.Batch == 0 {
		d.Batch = 64
	}
	if d.Tick == 0 {
		d.Tick = time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.sent = map[uint64]uint64{}
	t := time.NewTicker(d.Tick)
	defer t.Stop()
	for {
		more := d.pass(ctx)
		if more {
			// A full batch went out: go on at once but let other work run.
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
		case <-d.Link.Up():
			// Up is closed while connected; avoid spinning on it.
			select {
			case <-ctx.Done():
				return nil
			case <-d.Outbox.Wake():
			case <-t.C:
			}
		case <-t.C:
		}
	}
}

// pass publishes what is due; it reports whether it stopped at the batch
// limit with more waiting.
func (d *Drainer) pass(ctx context.Context) bool {
	if !d.Link.Connected() {
		return false
	}
	entries, err := d.Outbox.Pending(0)
	if err != nil {
		d.Logger.Error("outbox read", "err", err)
		return false
	}
	epoch := d.Link.Epoch()
	now := time.Now()
	sentNow := 0
	live := make(map[uint64]bool, len(entries))
	for _, e := range entries {
		live[e.ID] = true
	}
	for id := range d.sent {
		if !live[id] {
			delete(d.sent, id)
		}
	}
	for _, e := range entries {
		if e.Kind == outbox.KindSale && d.AckMode == AckPlatform && !e.PublishedAt.IsZero() {
			// Published and PUBACKed on this connection: wait for the
			// platform's ack. After a reconnect the proof is gone, so go again.
			if d.sent[e.ID] == epoch && now.Sub(e.PublishedAt) < d.AckWait {
				continue
			}
		}
		if sentNow >= d.Batch {
			return true
		}
		body, err := d.Signer.SealBytes(e.Payload)
		if err != nil {
			d.Logger.Error("seal outbox entry", "id", e.ID, "err", err)
			return false
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = d.Link.Publish(pctx, e.Topic, 1, false, body)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrNotConnected) && ctx.Err() == nil {
				d.Logger.Warn("publish", "kind", e.Kind, "seq", e.SaleSeq, "err", err)
			}
			return false
		}
		sentNow++
		at := time.Now()
		if e.Kind == outbox.KindSale && d.AckMode == AckPlatform {
			if err := d.Outbox.MarkPublished(e.ID, at); err != nil {
				d.Logger.Error("outbox mark", "id", e.ID, "err", err)
				return false
			}
			d.sent[e.ID] = epoch
		} else if err := d.Outbox.Remove(e.ID); err != nil {
			d.Logger.Error("outbox remove", "id", e.ID, "err", err)
			return false
		}
		if d.Published != nil {
			d.Published(e, at)
		}
	}
	return false
}
