// Package ledger is the cabinet's durable record, one bbolt file: the
// session in progress, every sale (kept ledger_days for audit and resend),
// the outbox, the cumulative counters and the command replay cache.
//
// What cannot be rebuilt lives here and nowhere else; the rebuildable
// catalog and planogram live in their own file (firmware/catalog) so a
// corrupt catalog never takes the sales with it. A sale, its outbox entry,
// the counters and the session's end commit in one transaction.
//
// ledger owns the file and its buckets; it decides nothing about sessions.
package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

var (
	bMeta    = []byte("meta")
	bSales   = []byte("sales")
	bSession = []byte("session")
	bCmds    = []byte("cmds")

	kCounters = []byte("counters")
	kCurrent  = []byte("current")
)

// ErrNoSession means no session is in progress.
var ErrNoSession = errors.New("ledger: no session")

// MaxFileBytes caps the file: on 32-bit ARM the mmap address space is small.
const MaxFileBytes = 256 << 20

// Ledger is the open ledger file.
type Ledger struct {
	db       *bolt.DB
	Outbox   *outbox.Outbox
	health   writeHealth
	maxBytes int

	// The counters as last read or committed: only CommitSale changes
	// them, so the device loop's status (every tick) costs no read
	// transaction.
	countersMu sync.Mutex
	counters   *msg.Counters
}

// Open opens or creates the ledger at path. It never replaces an existing
// file: a file bbolt cannot open is an error for the caller to handle
// (OpenChecked sets a corrupt one aside).
func Open(path string) (*Ledger, error) { return openFile(path, Opts{}) }

func openFile(path string, o Opts) (*Ledger, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = MaxFileBytes
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second, // a second opener must not wait forever
		InitialMmapSize: min(1<<20, o.MaxBytes),
		MaxSize:         o.MaxBytes, // writes fail cleanly instead of exhausting a 32-bit address space
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bMeta, bSales, bSession, bCmds} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return outbox.Init(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: init %s: %w", path, err)
	}
	return &Ledger{db: db, Outbox: outbox.New(db), maxBytes: o.MaxBytes}, nil
}

// Close closes the file.
func (l *Ledger) Close() error { return l.db.Close() }

// DB exposes the database to tests and tools (bbolt's Check).
func (l *Ledger) DB() *bolt.DB { return l.db }

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

func getJSON(b *bolt.Bucket, k []byte, v any) (bool, error) {
	raw := b.Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("ledger: decode %s: %w", k, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ledger: encode %s: %w", k, err)
	}
	return b.Put(k, raw)
}

// Counters returns the cumulative counters.
func (l *Ledger) Counters() (msg.Counters, error) {
	l.countersMu.Lock()
	defer l.countersMu.Unlock()
	if l.counters != nil {
		return *l.counters, nil
	}
	var c msg.Counters
	err := l.db.View(func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bMeta), kCounters, &c)
		return err
	})
	if err == nil {
		l.counters = &c
	}
	return c, err
}

// Session returns the session in progress, or ErrNoSession.
func (l *Ledger) Session() (*Session, error) {
	var s Session
	var found bool
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(tx.Bucket(bSession), kCurrent, &s)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNoSession
	}
	return &s, nil
}

// SaveSession stores the session in progress. When cmd is set, its id
// enters the replay cache in the same transaction, so an accepted command
// can never be accepted twice, even across a power cut; items (a reply)
// join the outbox in it too.
func (l *Ledger) SaveSession(s *Session, cmd *msg.Command, items ...Item) error {
	err := l.update(func(tx *bolt.Tx) error {
		if err := accept(tx, cmd, items); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bSession), kCurrent, s)
	})
	if err == nil && len(items) > 0 {
		l.Outbox.Notify()
	}
	return err
}

// Item is one outbox message to enqueue with a commit.
type Item struct {
	Kind  string
	Topic string
	Body  any
}

// CommitSale ends the session in progress with its sale, atomically: the
// next seq is assigned, the sale stored, its outbox entry and any extra
// items (alarms; a StockItem decrementing what was sold) applied, the
// counters advanced and the session removed.
// build receives the seq and returns the finished sale.
func (l *Ledger) CommitSale(topic string, build func(seq uint64) msg.Sale, extra ...Item) (msg.Sale, error) {
	var sale msg.Sale
	var c msg.Counters
	err := l.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		c = msg.Counters{}
		if _, err := getJSON(meta, kCounters, &c); err != nil {
			return err
		}
		sale = build(c.LastSeq + 1)
		if sale.Seq != c.LastSeq+1 {
			return fmt.Errorf("ledger: sale seq %d, want %d", sale.Seq, c.LastSeq+1)
		}
		payload, err := json.Marshal(sale)
		if err != nil {
			return fmt.Errorf("ledger: encode sale: %w", err)
		}
		if err := tx.Bucket(bSales).Put(seqKey(sale.Seq), payload); err != nil {
			return err
		}
		if _, err := outbox.Append(tx, outbox.Entry{Kind: outbox.KindSale, Topic: topic,
			SaleSeq: sale.Seq, Payload: payload, CreatedAt: time.Now().UTC()}); err != nil {
			return err
		}
		for _, it := range extra {
			if err := appendItem(tx, it); err != nil {
				return err
			}
		}
		c.Sales++
		c.LastSeq = sale.Seq
		c.AmountFen += sale.TotalFen
		if err := putJSON(meta, kCounters, c); err != nil {
			return err
		}
		return tx.Bucket(bSession).Delete(kCurrent)
	})
	if err != nil {
		return msg.Sale{}, fmt.Errorf("ledger: commit sale: %w", err)
	}
	l.countersMu.Lock()
	l.counters = &c
	l.countersMu.Unlock()
	l.Outbox.Notify()
	return sale, nil
}

func appendItem(tx *bolt.Tx, it Item) error {
	if local, err := applyLocal(tx, it); local { // a stock change, not a message (stock.go)
		return err
	}
	payload, err := json.Marshal(it.Body)
	if err != nil {
		return fmt.Errorf("ledger: encode %s: %w", it.Kind, err)
	}
	_, err = outbox.Append(tx, outbox.Entry{Kind: it.Kind, Topic: it.Topic, Payload: payload, CreatedAt: time.Now().UTC()})
	return err
}

// accept records cmd (if any) in the replay cache and appends items to the
// outbox, inside tx.
func accept(tx *bolt.Tx, cmd *msg.Command, items []Item) error {
	if cmd != nil {
		if err := recordCmd(tx, cmd.ID, cmd.ExpiresAt.Time); err != nil {
			return err
		}
		if err := noteIssued(tx, cmd.IssuedAt.Time); err != nil {
			return err
		}
	}
	for _, it := range items {
		if err := appendItem(tx, it); err != nil {
			return err
		}
	}
	return nil
}

// Enqueue appends messages (alarms, replies) to the outbox in one
// transaction; cmd, when set, enters the replay cache with them.
func (l *Ledger) Enqueue(cmd *msg.Command, items ...Item) error {
	err := l.update(func(tx *bolt.Tx) error { return accept(tx, cmd, items) })
	if err != nil {
		return fmt.Errorf("ledger: enqueue: %w", err)
	}
	l.Outbox.Notify()
	return nil
}

// Sales returns the stored sales with from ≤ seq ≤ to, in order.
func (l *Ledger) Sales(from, to uint64) ([]msg.Sale, error) {
	var out []msg.Sale
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSales).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && binary.BigEndian.Uint64(k) <= to; k, v = c.Next() {
			var s msg.Sale
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("ledger: sale %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// ResendSales queues the stored sales from..to again (the platform's
// `resend`); it returns how many were queued.
func (l *Ledger) ResendSales(topic string, from, to uint64) (int, error) {
	n := 0
	err := l.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSales).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && binary.BigEndian.Uint64(k) <= to; k, v = c.Next() {
			if _, err := outbox.Append(tx, outbox.Entry{Kind: outbox.KindSale, Topic: topic,
				SaleSeq: binary.BigEndian.Uint64(k), Payload: append([]byte(nil), v...), CreatedAt: time.Now().UTC()}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err == nil && n > 0 {
		l.Outbox.Notify()
	}
	return n, err
}

// Seen reports whether a command id was accepted before.
func (l *Ledger) Seen(id string) bool {
	seen := false
	_ = l.db.View(func(tx *bolt.Tx) error { // a read error means "not seen"; the checks after it still hold
		seen = tx.Bucket(bCmds).Get([]byte(id)) != nil
		return nil
	})
	return seen
}

// RecordCmd puts a command id into the replay cache on its own.
func (l *Ledger) RecordCmd(id string, expires time.Time) error {
	return l.update(func(tx *bolt.Tx) error { return recordCmd(tx, id, expires) })
}

func recordCmd(tx *bolt.Tx, id string, expires time.Time) error {
	if id == "" {
		return errors.New("ledger: empty command id")
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(expires.Unix()))
	return tx.Bucket(bCmds).Put([]byte(id), v[:])
}

// Prune drops replay-cache ids that expired before `before` (a command that
// has expired is refused as expired anyway) and sales older than keepSince
// that no outbox entry still needs. It returns how many sales it dropped.
func (l *Ledger) Prune(before, keepSince time.Time) (int, error) {
	n := 0
	err := l.update(func(tx *bolt.Tx) error {
		var del [][]byte
		cc := tx.Bucket(bCmds).Cursor()
		for k, v := cc.First(); k != nil; k, v = cc.Next() {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < before.Unix() {
				del = append(del, append([]byte(nil), k...))
			}
		}
		for _, k := range del {
			if err := tx.Bucket(bCmds).Delete(k); err != nil {
				return err
			}
		}
		del = del[:0]
		sc := tx.Bucket(bSales).Cursor()
		for k, v := sc.First(); k != nil; k, v = sc.Next() {
			var s msg.Sale
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if !s.SettledAt.Before(keepSince) {
				break // seq order is time order
			}
			if inOutbox(tx, s.Seq) {
				break // not yet delivered: keep it and everything after
			}
			del = append(del, append([]byte(nil), k...))
		}
		for _, k := range del {
			if err := tx.Bucket(bSales).Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return nil
	})
	return n, err
}

func inOutbox(tx *bolt.Tx, seq uint64) bool {
	found := false
	c := tx.Bucket([]byte("outbox")).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e outbox.Entry
		if json.Unmarshal(v, &e) == nil && e.Kind == outbox.KindSale && e.SaleSeq == seq {
			found = true
			break
		}
	}
	return found
}
