package ledger

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/hal/scale"
)

func TestCalibrationSurvivesReopenAndCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Calibrations()
	if err != nil || len(got) != 0 {
		t.Fatalf("fresh ledger: %v, %v", got, err)
	}
	shanghai := time.FixedZone("CST", 8*3600)
	first := StoredCalibration{
		Calibration:   scale.Calibration{Offset: 84213, CountsPerGram: 100.02},
		At:            time.Date(2025, 3, 1, 16, 0, 0, 0, shanghai),
		Points:        []CalPoint{{Grams: 500, MeanRaw: 134223, ResidualG: 0.04}, {Grams: 1000, MeanRaw: 184233, ResidualG: -0.02}},
		TareStdCounts: 48.5,
	}
	for i, shelf := range []int{2, 2, 7} {
		n, err := l.SaveCalibration(shelf, first)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 2, 1}[i]; n != want {
			t.Fatalf("save %d (shelf %d): counter %d, want %d", i+1, shelf, n, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = open(t, path)
	second := first
	second.Calibration.CountsPerGram = -99.5 // an inverted cell is fine
	second.At = time.Time{}
	second.Points = nil
	before := time.Now().UTC()
	n, err := l.SaveCalibration(2, second)
	if err != nil || n != 3 {
		t.Fatalf("save after reopen: counter %d, %v; want 3", n, err)
	}
	got, err = l.Calibrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("calibrations for shelves %v, want 2 and 7", got)
	}
	want7 := first
	want7.At = first.At.UTC()
	want7.Counter = 1
	if !reflect.DeepEqual(got[7], want7) {
		t.Fatalf("shelf 7:\n got %+v\nwant %+v", got[7], want7)
	}
	if got[7].At.Location() != time.UTC {
		t.Fatalf("stored time not UTC: %v", got[7].At)
	}
	s2 := got[2]
	if s2.Counter != 3 || s2.Calibration != second.Calibration || s2.Points != nil || s2.At.Before(before.Truncate(time.Second)) {
		t.Fatalf("shelf 2 after recalibration: %+v", s2)
	}
}

func TestSaveCalibrationRefuses(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	good := StoredCalibration{Calibration: scale.Calibration{Offset: 10, CountsPerGram: 50}}
	tests := []struct {
		name  string
		shelf int
		edit  func(*StoredCalibration)
	}{
		{"shelf 0", 0, func(*StoredCalibration) {}},
		{"zero factor", 1, func(c *StoredCalibration) { c.Calibration.CountsPerGram = 0 }},
		{"NaN factor", 1, func(c *StoredCalibration) { c.Calibration.CountsPerGram = math.NaN() }},
		{"infinite point", 1, func(c *StoredCalibration) { c.Points = []CalPoint{{Grams: math.Inf(1)}} }},
		{"too many points", 1, func(c *StoredCalibration) { c.Points = make([]CalPoint, maxCalPoints+1) }},
		{"negative tare spread", 1, func(c *StoredCalibration) { c.TareStdCounts = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			if _, err := l.SaveCalibration(tt.shelf, c); !errors.Is(err, ErrBadCalibration) {
				t.Fatalf("err %v, want ErrBadCalibration", err)
			}
		})
	}
	got, err := l.Calibrations()
	if err != nil || len(got) != 0 {
		t.Fatalf("refused calibrations were stored: %v, %v", got, err)
	}
}

// TestCellCalibrations stores the two cells of a two-cell shelf apart, each
// with its own counter, and keeps SaveCalibration and Calibrations as the
// left (or only) cell's.
func TestCellCalibrations(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	left := StoredCalibration{Calibration: scale.Calibration{Offset: 1000, CountsPerGram: 420}, TareStdCounts: 30}
	right := StoredCalibration{Calibration: scale.Calibration{Offset: -5000, CountsPerGram: -395}, TareStdCounts: 31}
	if n, err := l.SaveCalibration(4, left); err != nil || n != 1 {
		t.Fatalf("left: %d, %v", n, err)
	}
	for want := 1; want <= 2; want++ {
		if n, err := l.SaveCellCalibration(4, CellRight, right); err != nil || n != want {
			t.Fatalf("right save %d: counter %d, %v", want, n, err)
		}
	}
	if n, err := l.SaveCellCalibration(4, CellLeft, left); err != nil || n != 2 {
		t.Fatalf("left again: counter %d, %v; want 2", n, err)
	}
	l2, err := l.CellCalibrations(CellLeft)
	if err != nil {
		t.Fatal(err)
	}
	old, err := l.Calibrations()
	if err != nil || !reflect.DeepEqual(old, l2) {
		t.Fatalf("Calibrations %v, %v differs from CellCalibrations(left) %v", old, err, l2)
	}
	r, err := l.CellCalibrations(CellRight)
	if err != nil {
		t.Fatal(err)
	}
	if len(l2) != 1 || l2[4].Calibration != left.Calibration || len(r) != 1 || r[4].Calibration != right.Calibration || r[4].Counter != 2 {
		t.Fatalf("left %+v right %+v", l2, r)
	}
	if _, err := l.SaveCellCalibration(4, Cell("middle"), right); !errors.Is(err, ErrBadCalibration) {
		t.Fatalf("unknown cell: %v", err)
	}
	if _, err := l.CellCalibrations(Cell("middle")); err == nil {
		t.Fatal("CellCalibrations of an unknown cell succeeded")
	}
	for s, want := range map[string]Cell{"": CellLeft, "left": CellLeft, "right": CellRight} {
		if c, err := ParseCell(s); err != nil || c != want {
			t.Errorf("ParseCell(%q) = %q, %v", s, c, err)
		}
	}
	if _, err := ParseCell("Right"); err == nil {
		t.Error("ParseCell accepted Right")
	}
}

// TestOldLedgerCalibrations reads a calibration record as firmware before
// two-cell shelves wrote it: it stays the shelf's (left) cell's, the right
// cell has none, and counting goes on from it.
func TestOldLedgerCalibrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("calibration"))
		if err != nil {
			return err
		}
		return b.Put(seqKey(3), []byte(`{"offset":84213,"counts_per_gram":100.02,"at":"2025-03-01T08:00:00Z","counter":5,`+
			`"points":[{"grams":500,"mean_raw":134223,"residual_g":0.04}],"tare_std_counts":48.5}`))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	l = open(t, path)
	got, err := l.CellCalibrations(CellLeft)
	if err != nil {
		t.Fatal(err)
	}
	want := StoredCalibration{Calibration: scale.Calibration{Offset: 84213, CountsPerGram: 100.02},
		At: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), Counter: 5,
		Points: []CalPoint{{Grams: 500, MeanRaw: 134223, ResidualG: 0.04}}, TareStdCounts: 48.5}
	if !reflect.DeepEqual(got, map[int]StoredCalibration{3: want}) {
		t.Fatalf("old record read as %+v", got)
	}
	if r, err := l.CellCalibrations(CellRight); err != nil || len(r) != 0 {
		t.Fatalf("right cells of an old ledger: %v, %v", r, err)
	}
	if n, err := l.SaveCalibration(3, want); err != nil || n != 6 {
		t.Fatalf("recalibrating after the old record: counter %d, %v; want 6", n, err)
	}
	if n, err := l.SaveCellCalibration(3, CellRight, want); err != nil || n != 1 {
		t.Fatalf("first right-cell calibration: counter %d, %v; want 1", n, err)
	}
}
