package ledger

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"

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
