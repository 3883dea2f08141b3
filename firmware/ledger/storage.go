package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Storage faults: what the ledger found wrong with its own file, and the
// last write's failure.
//
// A ledger file that bbolt cannot open or whose pages do not check out is
// never repaired in place nor deleted: it may hold sales the platform has
// not yet acknowledged. OpenChecked moves it aside (ledger.db.corrupt-TIME)
// and starts a new ledger that remembers the fault (Fault) until a
// technician clears it; the firmware refuses shoppers meanwhile, because a
// new ledger restarts the sale seq at 1 and the sales in the old file still
// have to be recovered from it.

var kFault = []byte("storage_fault")

// Fault is a storage fault the ledger recorded about its predecessor.
type Fault struct {
	Kind  string    `json:"kind"`            // "corrupt" or "missing"
	Aside string    `json:"aside,omitempty"` // where the old file was moved
	Err   string    `json:"err"`
	At    time.Time `json:"at"`
}

func (f Fault) String() string {
	if f.Aside != "" {
		return fmt.Sprintf("ledger %s (%s); the old file is kept at %s for recovery", f.Kind, f.Err, f.Aside)
	}
	return fmt.Sprintf("ledger %s (%s)", f.Kind, f.Err)
}

// Opts tunes Open. Zero fields take the defaults.
type Opts struct {
	// MaxBytes caps the file (default MaxFileBytes). Writes that would
	// grow it further fail, as they would on a full disk.
	MaxBytes int
	// Existed says the ledger should already exist (the cabinet has run
	// before): a missing file is then a storage fault, not a first start.
	Existed bool
	// Now stamps faults and aside names; default time.Now.
	Now func() time.Time
}

// OpenChecked opens the ledger at path after checking the file page by
// page. A corrupt file is moved aside and a new ledger started with a
// Fault recorded; a missing file that o.Existed says should be there is
// recorded the same way. Errors that are not the file's own (permissions,
// a read-only filesystem, another process holding it) are returned: there
// is nothing to set aside, and the caller must say so and stop.
func OpenChecked(path string, o Opts) (*Ledger, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	var fault *Fault
	switch _, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		if o.Existed {
			fault = &Fault{Kind: "missing", Err: "ledger.db was not there although the cabinet has run before", At: o.Now().UTC()}
		}
	case err != nil:
		return nil, fmt.Errorf("ledger: %s: %w", path, err)
	default:
		if cerr := Verify(path); cerr != nil {
			if !errors.Is(cerr, errCorrupt) {
				return nil, cerr
			}
			aside := fmt.Sprintf("%s.corrupt-%s", path, o.Now().UTC().Format("20060102T150405Z"))
			if err := os.Rename(path, aside); err != nil {
				return nil, fmt.Errorf("ledger: cannot move the corrupt %s aside: %w (original error: %v)", path, err, cerr)
			}
			fault = &Fault{Kind: "corrupt", Aside: aside, Err: cerr.Error(), At: o.Now().UTC()}
		}
	}
	l, err := openFile(path, o)
	if err != nil {
		return nil, err
	}
	if fault != nil {
		if err := l.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bMeta), kFault, fault) }); err != nil {
			l.Close()
			return nil, fmt.Errorf("ledger: record storage fault: %w", err)
		}
	}
	return l, nil
}

// errCorrupt marks errors that are the file's own content.
var errCorrupt = errors.New("corrupt")

// Verify opens the file read-only and checks every page. A panic inside
// bbolt (it trusts its own pages) or a fault reading a page past the end
// of a truncated file is reported as corruption, not a crash.
func Verify(path string) (err error) {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("ledger: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	if st.Size() == 0 {
		return nil // an empty file is a ledger never initialised: bbolt formats it
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ledger: %s: %w: %v", path, errCorrupt, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	switch {
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, bolt.ErrTimeout):
		return fmt.Errorf("ledger: open %s: %w", path, err)
	case err != nil:
		return fmt.Errorf("ledger: %s: %w: %v", path, errCorrupt, err)
	}
	defer db.Close()
	// Walk every bucket and every key and value on this goroutine, so a
	// bad page panics (or faults) where the recover above catches it.
	// bbolt's own tx.Check walks on a goroutine of its own, where a
	// panic on a garbage page would take the whole process down.
	return db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bMeta, bSales, bSession, bCmds} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("ledger: %s: %w: bucket %s missing", path, errCorrupt, b)
			}
		}
		if err := walk(tx.Cursor()); err != nil {
			return fmt.Errorf("ledger: %s: %w: %v", path, errCorrupt, err)
		}
		return nil
	})
}

// walk reads every key and value under c, descending into buckets.
func walk(c *bolt.Cursor) error {
	var sum byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		for _, x := range k {
			sum ^= x
		}
		if v == nil { // a nested bucket
			b := c.Bucket().Bucket(k)
			if b == nil {
				return fmt.Errorf("key %q has no value and is not a bucket", k)
			}
			if err := walk(b.Cursor()); err != nil {
				return err
			}
			continue
		}
		for _, x := range v {
			sum ^= x
		}
	}
	_ = sum // touching the bytes is the point: a page past the file's end faults here
	return nil
}

// Fault returns the storage fault recorded, or nil.
func (l *Ledger) Fault() (*Fault, error) {
	var f Fault
	var found bool
	err := l.db.View(func(tx *bolt.Tx) (err error) {
		found, err = getJSON(tx.Bucket(bMeta), kFault, &f)
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	return &f, nil
}

// ClearFault forgets the recorded storage fault: a technician has
// recovered (or given up on) the old file.
func (l *Ledger) ClearFault() error {
	return l.update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kFault) })
}

// writeHealth remembers the last write's failure.
type writeHealth struct {
	mu    sync.Mutex
	err   error // the last commit's failure; cleared by a successful one
	space error // too little headroom at the last Check
}

// update runs a write transaction and remembers whether it failed for a
// reason of the storage (full, read-only, I/O), not of the caller's check.
func (l *Ledger) update(fn func(*bolt.Tx) error) error {
	var own bool
	err := l.db.Update(func(tx *bolt.Tx) error {
		err := fn(tx)
		own = err != nil
		return err
	})
	l.health.mu.Lock()
	defer l.health.mu.Unlock()
	switch {
	case err == nil:
		l.health.err = nil
	case !own: // the commit itself failed
		l.health.err = err
	case errors.Is(err, berrors.ErrMaxSizeReached) || errors.Is(err, bolt.ErrDatabaseReadOnly):
		l.health.err = err
	}
	return err
}

// WriteErr is the last write failure of the storage itself (a full disk,
// a read-only filesystem; nil once a write has succeeded since), else the
// shortage of headroom the last Check found, else nil.
func (l *Ledger) WriteErr() error {
	l.health.mu.Lock()
	defer l.health.mu.Unlock()
	if l.health.err != nil {
		return l.health.err
	}
	return l.health.space
}

var kProbe = []byte("probe")

// MinHeadroom is the room the ledger wants left: a session, its sale and
// a few alarms, many times over. With less the cabinet should not start a
// session it may not be able to finish recording.
const MinHeadroom = 256 << 10

// Headroom is how many more bytes the ledger can take: the room left under
// its cap and on its filesystem, plus the free pages inside the file.
func (l *Ledger) Headroom() (int64, error) {
	var size int64
	if err := l.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		return 0, err
	}
	st := l.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(l.db.Info().PageSize)
	room := int64(l.maxBytes) - size
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(l.db.Path()), &fs); err == nil {
		room = min(room, int64(fs.Bavail)*int64(fs.Bsize))
	}
	return max(room, 0) + free, nil
}

// Check tells whether the ledger can take writes: the headroom it needs is
// there and, when a write failed before, a small write now succeeds. The
// result becomes WriteErr. It writes nothing while writes have not failed,
// to spare the SD card.
func (l *Ledger) Check(now time.Time) error {
	l.health.mu.Lock()
	failed := l.health.err != nil
	l.health.mu.Unlock()
	if failed {
		err := l.update(func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Put(kProbe, []byte(now.UTC().Format(time.RFC3339Nano)))
		})
		if err != nil {
			return err
		}
	}
	room, err := l.Headroom()
	if err == nil && room < MinHeadroom {
		err = fmt.Errorf("ledger: only %d KiB left (want %d KiB): %w", room>>10, MinHeadroom>>10, berrors.ErrMaxSizeReached)
	}
	l.health.mu.Lock()
	defer l.health.mu.Unlock()
	l.health.space = err
	return err
}
