package ledger

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// filledLedger makes a ledger file holding n sales and returns its bytes.
func filledLedger(t *testing.T, n int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := l.CommitSale("t", func(seq uint64) msg.Sale { return sale(seq, 100) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenCheckedSetsACorruptFileAside(t *testing.T) {
	good := filledLedger(t, 300)
	garbage := func(from, to int) []byte {
		b := bytes.Clone(good)
		for i := from; i < to && i < len(b); i++ {
			b[i] = 0xAB
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"a few bytes", good[:100]},
		{"one page", good[:4096]},
		{"meta pages only", good[:8192]},
		{"truncated to half", good[:len(good)/2]},
		{"garbage over the data pages", garbage(4*4096, 8*4096)},
		{"garbage over both meta pages", garbage(0, 8192)},
	}
	at := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := OpenChecked(path, Opts{Now: func() time.Time { return at }})
			if err != nil {
				t.Fatalf("OpenChecked: %v", err)
			}
			defer l.Close()
			f, err := l.Fault()
			if err != nil || f == nil {
				t.Fatalf("fault %v, %v; want one recorded", f, err)
			}
			wantAside := path + ".corrupt-20261126T093000Z"
			if f.Kind != "corrupt" || f.Aside != wantAside {
				t.Fatalf("fault %+v", f)
			}
			kept, err := os.ReadFile(wantAside)
			if err != nil || !bytes.Equal(kept, tc.data) {
				t.Fatalf("the corrupt file was not kept byte for byte (err %v)", err)
			}
			if c, _ := l.Counters(); c.LastSeq != 0 {
				t.Fatalf("new ledger counters %+v", c)
			}
			// Clearing it is the technician's act.
			if err := l.ClearFault(); err != nil {
				t.Fatal(err)
			}
			if f, _ := l.Fault(); f != nil {
				t.Fatalf("fault still there: %+v", f)
			}
		})
	}

	t.Run("a healthy file is opened as it is", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		if err := os.WriteFile(path, good, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := OpenChecked(path, Opts{Existed: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if f, _ := l.Fault(); f != nil {
			t.Fatalf("fault on a healthy file: %+v", f)
		}
		if c, _ := l.Counters(); c.LastSeq != 300 {
			t.Fatalf("counters %+v, want 300 sales", c)
		}
	})

	t.Run("a missing file on a cabinet that has run", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		l, err := OpenChecked(path, Opts{Existed: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if f, _ := l.Fault(); f == nil || f.Kind != "missing" {
			t.Fatalf("fault %+v, want missing", f)
		}
	})

	t.Run("a missing file on a first start", func(t *testing.T) {
		l, err := OpenChecked(filepath.Join(t.TempDir(), "ledger.db"), Opts{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if f, _ := l.Fault(); f != nil {
			t.Fatalf("fault on a first start: %+v", f)
		}
	})

	t.Run("a directory where the file should be", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenChecked(path, Opts{}); err == nil {
			t.Fatal("opened a directory as a ledger")
		}
		if st, err := os.Stat(path); err != nil || !st.IsDir() {
			t.Fatal("the directory was moved or removed")
		}
	})
}

// A full disk: bbolt refuses to grow the file past MaxBytes, exactly the
// commit failure a full filesystem gives. Nothing half-written stays, the
// failure is remembered until a write succeeds, and every sale committed
// before it is intact.
func TestFullStorage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := OpenChecked(path, Opts{MaxBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	var werr error
	for i := 0; i < 10000; i++ {
		_, werr = l.CommitSale("t", func(seq uint64) msg.Sale {
			s := sale(seq, 100)
			s.SessionID = strings.Repeat("s", 400)
			return s
		})
		if werr != nil {
			break
		}
		committed++
	}
	if werr == nil || !errors.Is(werr, berrors.ErrMaxSizeReached) {
		t.Fatalf("after %d sales: err %v, want the size limit", committed, werr)
	}
	if !errors.Is(l.WriteErr(), berrors.ErrMaxSizeReached) {
		t.Fatalf("WriteErr = %v", l.WriteErr())
	}
	if err := l.Check(time.Now()); err == nil {
		t.Fatal("a full ledger checks healthy")
	}
	if c, _ := l.Counters(); c.LastSeq != uint64(committed) {
		t.Fatalf("counters %+v after %d commits", c, committed)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Room again (a bigger cap stands in for freed disk space).
	l, err = OpenChecked(path, Opts{MaxBytes: 4 << 20, Existed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Check(time.Now()); err != nil || l.WriteErr() != nil {
		t.Fatalf("check %v, WriteErr %v", err, l.WriteErr())
	}
	sales, err := l.Sales(1, uint64(committed))
	if err != nil || len(sales) != committed {
		t.Fatalf("%d sales readable of %d (err %v)", len(sales), committed, err)
	}
}
