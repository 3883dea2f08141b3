package msg

// Caps and checks of the additions to v1 (docs/contract.md, "Additions to
// v1"): a planogram shelf's lanes, which the cabinet receives, and the
// size of a sale's alternatives, which it sends.

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// MaxLanes caps PlanogramShelf.Lanes: far above the SKUs one shelf holds,
// and the planogram schema's maxProperties for lanes.
const MaxLanes = 32

// MaxAlternatives caps Sale.Alternatives: the sale schema's maxItems. A
// cabinet set to report more sends the MaxAlternatives most probable.
const MaxAlternatives = 8

// ValidateLanes checks sh.Lanes as the cabinet must before using a
// planogram: at most MaxLanes entries, each keyed by a SKU listed in
// sh.SKUs and giving a finite position in [0, 1]. No lanes at all is
// valid. Whether the shelf has two load cells is not the message's
// business: a single-cell shelf ignores valid lanes.
//
// The error names the shelf and the first bad lane in SKU order and counts
// the others, so its length does not grow with the input; a key is quoted
// and cut short, as it may be anything.
func (sh PlanogramShelf) ValidateLanes() error {
	if len(sh.Lanes) == 0 {
		return nil
	}
	if len(sh.Lanes) > MaxLanes {
		return fmt.Errorf("msg: shelf %d: %d lanes, at most %d", sh.Shelf, len(sh.Lanes), MaxLanes)
	}
	listed := make(map[string]bool, len(sh.SKUs))
	for _, s := range sh.SKUs {
		listed[s] = true
	}
	var first string
	bad := 0
	for _, sku := range slices.Sorted(maps.Keys(sh.Lanes)) {
		x := sh.Lanes[sku]
		var why string
		switch {
		case !listed[sku]:
			why = fmt.Sprintf("lane for %.64q, which the shelf's skus do not list", sku)
		case math.IsNaN(x) || x < 0 || x > 1: // ±Inf fail the range too
			why = fmt.Sprintf("lane of %.64q at %g, want 0 to 1", sku, x)
		default:
			continue
		}
		if bad == 0 {
			first = why
		}
		bad++
	}
	switch bad {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("msg: shelf %d: %s", sh.Shelf, first)
	default:
		return fmt.Errorf("msg: shelf %d: %s (and %d more bad lanes)", sh.Shelf, first, bad-1)
	}
}
