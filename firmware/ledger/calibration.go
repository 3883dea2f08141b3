package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/hal/scale"
)

// bCalibration holds one record per shelf, keyed by the shelf number as a
// big-endian uint64 so a cursor walks the shelves in order: the calibration
// of the shelf's only load cell, or of the left one of a shelf carried by
// two. bCalibrationRight holds, keyed the same way, the right cells'
// calibrations of two-cell shelves. Ledgers written before two-cell shelves
// have only bCalibration, whose records keep their key and meaning.
// Calibration is the device's own measurement of its load cells: it lives
// with the sales, not in the config file, and survives a config push.
var (
	bCalibration      = []byte("calibration")
	bCalibrationRight = []byte("calibration_right")
)

// Cell names the load cell of a shelf a calibration is for.
type Cell string

// Cells. CellLeft is also a one-cell shelf's only cell.
const (
	CellLeft  Cell = "left"
	CellRight Cell = "right"
)

// ParseCell parses "left" or "right"; "" is CellLeft.
func ParseCell(s string) (Cell, error) {
	switch Cell(s) {
	case "", CellLeft:
		return CellLeft, nil
	case CellRight:
		return CellRight, nil
	}
	return "", fmt.Errorf("ledger: load cell %q: want left or right", s)
}

func (c Cell) bucket() ([]byte, error) {
	switch c {
	case CellLeft:
		return bCalibration, nil
	case CellRight:
		return bCalibrationRight, nil
	}
	return nil, fmt.Errorf("%w: load cell %q", ErrBadCalibration, string(c))
}

// ErrBadCalibration means a calibration was refused before it was stored.
var ErrBadCalibration = errors.New("ledger: unusable calibration")

// maxCalPoints bounds the reference points kept per record.
const maxCalPoints = 32

// CalPoint is one reference weight of a calibration.
type CalPoint struct {
	Grams     float64 `json:"grams"`      // the reference weight placed
	MeanRaw   float64 `json:"mean_raw"`   // mean raw counts read with it on
	ResidualG float64 `json:"residual_g"` // fitted grams minus Grams
}

// StoredCalibration is a shelf's calibration as the technician's tool
// measured it.
type StoredCalibration struct {
	Calibration scale.Calibration
	// At is when it was measured; SaveCalibration stores it in UTC (now
	// when zero).
	At time.Time
	// Counter counts the shelf's calibrations, this one included;
	// SaveCalibration assigns it.
	Counter int
	Points  []CalPoint
	// TareStdCounts is the raw counts' standard deviation with the shelf
	// empty: the noise the calibration was made under.
	TareStdCounts float64
}

// calRecord is StoredCalibration on disk, with stable snake_case keys
// (scale.Calibration has no JSON tags of its own).
type calRecord struct {
	Offset        int32      `json:"offset"`
	CountsPerGram float64    `json:"counts_per_gram"`
	At            time.Time  `json:"at"`
	Counter       int        `json:"counter"`
	Points        []CalPoint `json:"points"`
	TareStdCounts float64    `json:"tare_std_counts"`
}

func calFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (c StoredCalibration) validate() error {
	if err := c.Calibration.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCalibration, err)
	}
	if len(c.Points) > maxCalPoints {
		return fmt.Errorf("%w: %d reference points, at most %d", ErrBadCalibration, len(c.Points), maxCalPoints)
	}
	for i, p := range c.Points {
		if !calFinite(p.Grams) || !calFinite(p.MeanRaw) || !calFinite(p.ResidualG) {
			return fmt.Errorf("%w: reference point %d is not a number", ErrBadCalibration, i+1)
		}
	}
	if !calFinite(c.TareStdCounts) || c.TareStdCounts < 0 {
		return fmt.Errorf("%w: tare spread %v", ErrBadCalibration, c.TareStdCounts)
	}
	return nil
}

// SaveCalibration stores shelf's calibration, replacing the previous one,
// and returns its counter: one more than the shelf's previous calibration's.
// It is the calibration of the shelf's only (or left) load cell:
// SaveCellCalibration with CellLeft.
func (l *Ledger) SaveCalibration(shelf int, c StoredCalibration) (int, error) {
	return l.SaveCellCalibration(shelf, CellLeft, c)
}

// SaveCellCalibration stores the calibration of one load cell of shelf,
// replacing that cell's previous one, and returns its counter: one more than
// the cell's previous calibration's (each cell counts its own).
func (l *Ledger) SaveCellCalibration(shelf int, cell Cell, c StoredCalibration) (int, error) {
	if shelf < 1 {
		return 0, fmt.Errorf("%w: shelf %d", ErrBadCalibration, shelf)
	}
	bucket, err := cell.bucket()
	if err != nil {
		return 0, err
	}
	if err := c.validate(); err != nil {
		return 0, err
	}
	at := c.At.UTC()
	if c.At.IsZero() {
		at = time.Now().UTC()
	}
	rec := calRecord{
		Offset:        c.Calibration.Offset,
		CountsPerGram: c.Calibration.CountsPerGram,
		At:            at,
		Points:        c.Points,
		TareStdCounts: c.TareStdCounts,
	}
	err = l.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		var prev calRecord
		if _, err := getJSON(b, seqKey(uint64(shelf)), &prev); err != nil {
			return err
		}
		rec.Counter = prev.Counter + 1
		return putJSON(b, seqKey(uint64(shelf)), rec)
	})
	if err != nil {
		if cell != CellLeft {
			return 0, fmt.Errorf("ledger: save calibration of shelf %d %s cell: %w", shelf, cell, err)
		}
		return 0, fmt.Errorf("ledger: save calibration of shelf %d: %w", shelf, err)
	}
	return rec.Counter, nil
}

// Calibrations returns every stored calibration of a shelf's only (or
// left) load cell by shelf number; a device that was never calibrated has
// none. It is CellCalibrations(CellLeft).
func (l *Ledger) Calibrations() (map[int]StoredCalibration, error) {
	return l.CellCalibrations(CellLeft)
}

// CellCalibrations returns every stored calibration of cell by shelf
// number.
func (l *Ledger) CellCalibrations(cell Cell) (map[int]StoredCalibration, error) {
	bucket, err := cell.bucket()
	if err != nil {
		return nil, err
	}
	out := map[int]StoredCalibration{}
	err = l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil // created by the first SaveCalibration
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("ledger: calibration key %x is not a shelf number", k)
			}
			shelf := binary.BigEndian.Uint64(k)
			var rec calRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("ledger: calibration of shelf %d: %w", shelf, err)
			}
			if shelf < 1 || shelf > math.MaxInt32 {
				return fmt.Errorf("ledger: calibration key %d is not a shelf number", shelf)
			}
			// json.Unmarshal allocated rec.Points: nothing here points into
			// bbolt's memory after the transaction.
			out[int(shelf)] = StoredCalibration{
				Calibration:   scale.Calibration{Offset: rec.Offset, CountsPerGram: rec.CountsPerGram},
				At:            rec.At.UTC(),
				Counter:       rec.Counter,
				Points:        rec.Points,
				TareStdCounts: rec.TareStdCounts,
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
