// Package outbox is the cabinet's durable store-and-forward queue: messages
// that must reach the platform (sales, alarms, replies, restocks) wait here,
// in a bbolt bucket of the ledger file, until their delivery is proved.
//
// Entries are appended inside the caller's transaction, so a sale, its
// outbox entry and the counters commit together. Keys are big-endian
// NextSequence numbers, which makes the bucket a FIFO in commit order. A
// sale leaves only when the platform's cumulative ack covers its seq (or on
// PUBACK with ack_mode broker); other kinds leave on PUBACK.
//
// outbox owns only its bucket; it knows nothing of sessions or MQTT.
package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucket = []byte("outbox")
	// live indexes the entries that are not sales (replies, alarms,
	// restocks): the drain sends them ahead of a sale backlog, so the
	// reply to a shopper's unlock never waits behind thousands of sales
	// queued during an outage.
	live = []byte("outbox_live")
)

// Kinds of entry.
const (
	KindSale    = "sale"
	KindAlarm   = "alarm"
	KindReply   = "reply"
	KindRestock = "restock"
)

// Entry is one message waiting for delivery.
type Entry struct {
	ID          uint64    `json:"-"`
	Kind        string    `json:"kind"`
	Topic       string    `json:"topic"`
	SaleSeq     uint64    `json:"sale_seq,omitempty"`
	Payload     []byte    `json:"payload"` // the document to sign at publish time
	CreatedAt   time.Time `json:"created_at"`
	PublishedAt time.Time `json:"published_at,omitzero"`
	Attempts    int       `json:"attempts"`
}

// Init creates the bucket; call it once in the ledger's set-up transaction.
func Init(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucket, live} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("outbox: create bucket %s: %w", name, err)
		}
	}
	return nil
}

// Append adds e inside tx and returns its id.
func Append(tx *bolt.Tx, e Entry) (uint64, error) {
	b, err := bkt(tx)
	if err != nil {
		return 0, err
	}
	if e.Kind == "" || e.Topic == "" {
		return 0, errors.New("outbox: entry needs kind and topic")
	}
	id, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("outbox: sequence: %w", err)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("outbox: encode: %w", err)
	}
	if err := b.Put(key(id), v); err != nil {
		return 0, fmt.Errorf("outbox: put: %w", err)
	}
	if e.Kind != KindSale {
		if lb := tx.Bucket(live); lb != nil {
			if err := lb.Put(key(id), nil); err != nil {
				return 0, fmt.Errorf("outbox: put live: %w", err)
			}
		}
	}
	return id, nil
}

// errNoBucket is returned when the outbox bucket does not exist (Init was
// never run on this file); the drain logs it instead of panicking.
var errNoBucket = errors.New("outbox: bucket missing (Init not called)")

func bkt(tx *bolt.Tx) (*bolt.Bucket, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil, errNoBucket
	}
	return b, nil
}

func key(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

// Outbox reads and trims the queue. Its methods open their own
// transactions; never call them from inside another transaction.
type Outbox struct {
	db     *bolt.DB
	notify chan struct{}
}

// New wraps the ledger's database. The bucket must exist (Init).
func New(db *bolt.DB) *Outbox {
	return &Outbox{db: db, notify: make(chan struct{}, 1)}
}

// Notify wakes the drain; call it after committing an Append.
func (o *Outbox) Notify() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// Wake yields one token after any number of Notify calls (it is never
// closed): the drain selects on it to learn of new entries.
func (o *Outbox) Wake() <-chan struct{} { return o.notify }

// Pending returns up to limit entries in commit order (limit ≤ 0: all).
func (o *Outbox) Pending(limit int) ([]Entry, error) { return o.PendingAfter(0, limit) }

// PendingAfter returns up to limit entries (limit ≤ 0: all) whose id is
// greater than after, in commit order: a page of the queue, so a long
// backlog is read a page at a time rather than whole on every pass.
func (o *Outbox) PendingAfter(after uint64, limit int) ([]Entry, error) {
	var out []Entry
	err := o.db.View(func(tx *bolt.Tx) error {
		b, err := bkt(tx)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(key(after + 1)); k != nil; k, v = c.Next() {
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// decodeEntry reads the entry stored as v under key k, with its ID.
func decodeEntry(k, v []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return Entry{}, fmt.Errorf("outbox: entry %x: %w", k, err)
	}
	e.ID = binary.BigEndian.Uint64(k)
	return e, nil
}

// PendingLive returns up to limit entries that are not sales, in commit
// order: the ones the drain sends first.
func (o *Outbox) PendingLive(limit int) ([]Entry, error) {
	var out []Entry
	err := o.db.View(func(tx *bolt.Tx) error {
		b, err := bkt(tx)
		if err != nil {
			return err
		}
		lb := tx.Bucket(live)
		if lb == nil {
			return nil
		}
		c := lb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			v := b.Get(k)
			if v == nil {
				continue // removed meanwhile; Remove clears the index too
			}
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// Depth counts the entries waiting.
func (o *Outbox) Depth() (int, error) {
	n := 0
	err := o.db.View(func(tx *bolt.Tx) error {
		b, err := bkt(tx)
		if err != nil {
			return err
		}
		n = b.Stats().KeyN
		return nil
	})
	return n, err
}

// MarkPublished records a publish attempt of entry id at time at.
func (o *Outbox) MarkPublished(id uint64, at time.Time) error {
	return o.db.Update(func(tx *bolt.Tx) error {
		b, err := bkt(tx)
		if err != nil {
			return err
		}
		v := b.Get(key(id))
		if v == nil {
			return nil // acked meanwhile
		}
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("outbox: entry %d: %w", id, err)
		}
		e.PublishedAt = at.UTC()
		e.Attempts++
		nv, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(key(id), nv)
	})
}

// Remove deletes entry id (delivered by PUBACK).
func (o *Outbox) Remove(id uint64) error {
	return o.db.Update(func(tx *bolt.Tx) error {
		b, err := bkt(tx)
		if err != nil {
			return err
		}
		if lb := tx.Bucket(live); lb != nil {
			if err := lb.Delete(key(id)); err != nil {
				return err
			}
		}
		return b.Delete(key(id))
	})
}

// AckSales removes every sale entry whose seq ≤ upto and returns how many
// it removed. Other kinds are untouched.
func (o *Outbox) AckSales(upto uint64) (int, error) {
	n := 0
	err := o.db.Update(func(tx *bolt.Tx) error {
		b, err := bkt(tx)
		if err != nil {
			return err
		}
		var del [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			if e.Kind == KindSale && e.SaleSeq <= upto {
				del = append(del, append([]byte(nil), k...))
			}
		}
		// Deleting after the walk: bbolt cursors skip keys when the bucket
		// changes under them.
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return nil
	})
	return n, err
}
