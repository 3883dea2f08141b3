package platform

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// The platform's books: everything it must not forget across a restart,
// in one bbolt file, BooksFile in Opts.StateDir.
//
//	meta      "version" → booksVersion (decimal text)
//	sales     8-byte big-endian arrival number (from 1) → SaleRecord JSON
//	sale_ids  sale_id → its arrival number
//	alarms    8-byte big-endian arrival number → AlarmRecord JSON
//	cabinets  cabinet id → cabinetBooks JSON (latest claimed counters, acks)
//
// Sequence numbers are not stored apart: they are rebuilt from the sales
// when the books are opened. A file that cannot be opened or read is an
// error, never a reason to start empty books over it.

// KeyFile is the platform's signing key (its Ed25519 seed) in the state
// directory: the cabinets keep trusting a restarted platform.
const KeyFile = "platform.key"

// stateKey loads the platform key from dir, or makes and keeps one.
func stateKey(dir string) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("platform: state directory: %w", err)
	}
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(b) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case err == nil:
		return nil, fmt.Errorf("platform: %s: not an Ed25519 seed (%d bytes); the file is left as it is", path, len(b))
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("platform: %w", err)
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, k.Seed(), 0o600); err != nil {
		return nil, fmt.Errorf("platform: %w", err)
	}
	return k, nil
}

// BooksFile is the name of the books' database in the state directory.
const BooksFile = "books.db"

const booksVersion = "1"

var (
	bucketMeta     = []byte("meta")
	bucketSales    = []byte("sales")
	bucketSaleIDs  = []byte("sale_ids")
	bucketAlarms   = []byte("alarms")
	bucketCabinets = []byte("cabinets")
)

// cabinetBooks is what the books keep of a cabinet besides its sales.
type cabinetBooks struct {
	// Counters are the newest heartbeat's counters, At its time.
	Counters   *msg.Counters `json:"counters,omitempty"`
	CountersAt time.Time     `json:"counters_at,omitzero"`
	// AckedUpto is the highest sales_upto_seq the platform has sent.
	AckedUpto uint64 `json:"acked_upto"`
}

type books struct {
	db   *bolt.DB
	path string
}

// openBooks opens (or creates) the books in dir. A file that is not a
// bbolt database of this version, or that another process holds open, is
// refused with an error naming it.
func openBooks(dir string) (*books, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("platform: state directory: %w", err)
	}
	path := filepath.Join(dir, BooksFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("platform: books %s: held open by another process (another cabsim on this -state?)", path)
		}
		return nil, fmt.Errorf("platform: books %s: cannot open: %w (the file is left as it is; move it aside to start with empty books)", path, err)
	}
	// Check before writing anything: a file that is not the books is
	// left exactly as it was.
	fresh := false
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			fresh = true
			return tx.ForEach(func([]byte, *bolt.Bucket) error {
				return errors.New("it has no version: not the platform's books")
			})
		}
		if v := string(meta.Get([]byte("version"))); v != booksVersion {
			return fmt.Errorf("books version %q, this platform reads %q", v, booksVersion)
		}
		for _, b := range [][]byte{bucketSales, bucketSaleIDs, bucketAlarms, bucketCabinets} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err == nil && fresh {
		err = db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if err := meta.Put([]byte("version"), []byte(booksVersion)); err != nil {
				return err
			}
			for _, b := range [][]byte{bucketSales, bucketSaleIDs, bucketAlarms, bucketCabinets} {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("platform: books %s: %w (the file is left as it is)", path, err)
	}
	return &books{db: db, path: path}, nil
}

func (b *books) close() error { return b.db.Close() }

func key8(n uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, n)
	return k
}

// load reads the whole books: sales and alarms in arrival order and the
// cabinets' records.
func (b *books) load() (sales []SaleRecord, alarms []AlarmRecord, cabs map[string]cabinetBooks, err error) {
	cabs = map[string]cabinetBooks{}
	err = b.db.View(func(tx *bolt.Tx) error {
		want := uint64(1)
		err := tx.Bucket(bucketSales).ForEach(func(k, v []byte) error {
			if len(k) != 8 || binary.BigEndian.Uint64(k) != want {
				return fmt.Errorf("sales: record %x out of order (want %d)", k, want)
			}
			want++
			var rec SaleRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("sales: record %d: %w", want-1, err)
			}
			sales = append(sales, rec)
			return nil
		})
		if err != nil {
			return err
		}
		ids := tx.Bucket(bucketSaleIDs)
		for i, rec := range sales {
			if got := ids.Get([]byte(rec.Sale.SaleID)); len(got) != 8 || binary.BigEndian.Uint64(got) != uint64(i+1) {
				return fmt.Errorf("sale_ids: %q does not point at its record %d", rec.Sale.SaleID, i+1)
			}
		}
		if n := ids.Stats().KeyN; n != len(sales) {
			return fmt.Errorf("sale_ids holds %d ids for %d sales", n, len(sales))
		}
		err = tx.Bucket(bucketAlarms).ForEach(func(k, v []byte) error {
			var a AlarmRecord
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alarms: record %x: %w", k, err)
			}
			alarms = append(alarms, a)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCabinets).ForEach(func(k, v []byte) error {
			var cb cabinetBooks
			if err := json.Unmarshal(v, &cb); err != nil {
				return fmt.Errorf("cabinets: %q: %w", k, err)
			}
			cabs[string(k)] = cb
			return nil
		})
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("platform: books %s: unreadable: %w (the file is left as it is)", b.path, err)
	}
	return sales, alarms, cabs, nil
}

// putSale writes the sale record with arrival number n (from 1); a new
// one gets its sale_id indexed in the same transaction.
func (b *books) putSale(n int, rec SaleRecord, isNew bool) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		k := key8(uint64(n))
		if isNew {
			if err := tx.Bucket(bucketSaleIDs).Put([]byte(rec.Sale.SaleID), k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketSales).Put(k, v)
	})
}

func (b *books) putAlarm(n int, a AlarmRecord) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAlarms).Put(key8(uint64(n)), v)
	})
}

func (b *books) putCabinet(id string, cb cabinetBooks) error {
	v, err := json.Marshal(cb)
	if err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCabinets).Put([]byte(id), v)
	})
}
