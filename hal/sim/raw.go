package sim

import "github.com/bangfu/cabinet/hal"

// RawScales returns each shelf's HX711, by shelf number: the raw counts
// under the shelf's Scale (on a two-cell shelf, of both cells summed), for
// technician tools that tare and calibrate.
// Reading them while Run runs is safe: the samples are shared out between
// the readers, as the sample periods of one chip would be.
func (c *Cabinet) RawScales() map[int]hal.RawScale {
	out := make(map[int]hal.RawScale, len(c.shelves))
	for _, s := range c.shelves {
		out[s.num] = s.raw
	}
	return out
}
