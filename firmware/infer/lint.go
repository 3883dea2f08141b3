package infer

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Lint limits.
const (
	// DefaultLintItems is the basket size Lint checks when maxItems ≤ 0:
	// most sessions take a handful of units from a shelf.
	DefaultLintItems = 4
	// MaxLintItems clamps maxItems, because the number of baskets grows
	// like maxItems^SKUs and the lint runs on the cabinet board.
	MaxLintItems = 12
	// LintScaleG is the scale allowance added to the two baskets' summed
	// tolerances: about K·σ of a typical settled shelf reading.
	LintScaleG = 2.0
)

// Warning says that two baskets of one shelf's SKUs weigh the same within
// tolerance, so Infer cannot tell them apart and will charge the cheaper.
type Warning struct {
	Shelf int
	// A and B are the two baskets (units per SKU; an empty map is "nothing").
	A, B map[string]int
	// SKUs are the SKUs whose counts differ between A and B, sorted: the
	// products that get confused.
	SKUs []string
	// Text is a one-line explanation for the technician and the platform.
	Text string
}

type lintBasket struct {
	cnt   []int
	w     float64
	tol   float64
	units int
}

// Lint checks one shelf of a planogram: for every two different baskets of
// up to maxItems units each (DefaultLintItems when maxItems ≤ 0, clamped to
// MaxLintItems) whose nominal weights differ by less than the sum of their
// tolerances (Σ units·TolG of both) plus LintScaleG, it warns. Each set of
// confused SKUs is reported once, with the smallest pair of baskets that
// shows it. A SKU's own multiples (n vs n+1 units) only warn when its
// tolerance is so wide that they overlap. The result is sorted by SKU set and
// is an empty, non-nil slice when the shelf is clean.
func Lint(shelf int, skus []SKU, maxItems int) []Warning {
	if maxItems <= 0 {
		maxItems = DefaultLintItems
	}
	maxItems = min(maxItems, MaxLintItems)

	var items []SKU
	seen := map[string]bool{}
	for _, s := range skus {
		if seen[s.SKU] || !(s.UnitG > 0) || math.IsInf(s.UnitG, 0) {
			continue
		}
		seen[s.SKU] = true
		s.TolG = math.Max(s.TolG, 0)
		items = append(items, s)
	}
	slices.SortFunc(items, func(a, b SKU) int { return cmp.Compare(a.SKU, b.SKU) })

	var baskets []lintBasket
	cnt := make([]int, len(items))
	var gen func(i, units int, w, tol float64)
	gen = func(i, units int, w, tol float64) {
		if i == len(items) {
			baskets = append(baskets, lintBasket{cnt: slices.Clone(cnt), w: w, tol: tol, units: units})
			return
		}
		for n := 0; units+n <= maxItems; n++ {
			cnt[i] = n
			gen(i+1, units+n, w+float64(n)*items[i].UnitG, tol+float64(n)*items[i].TolG)
		}
		cnt[i] = 0
	}
	gen(0, 0, 0, 0)
	slices.SortStableFunc(baskets, func(a, b lintBasket) int { return cmp.Compare(a.w, b.w) })

	var maxTol float64
	for _, b := range baskets {
		maxTol = math.Max(maxTol, b.tol)
	}
	window := 2*maxTol + LintScaleG

	type found struct {
		a, b  lintBasket
		skus  []string
		units int
	}
	bySet := map[string]*found{}
	for i := range baskets {
		for j := i + 1; j < len(baskets) && baskets[j].w-baskets[i].w < window; j++ {
			a, b := baskets[i], baskets[j]
			if b.w-a.w >= a.tol+b.tol+LintScaleG {
				continue
			}
			var diff []string
			for k := range items {
				if a.cnt[k] != b.cnt[k] {
					diff = append(diff, items[k].SKU)
				}
			}
			key := strings.Join(diff, "\x00")
			u := a.units + b.units
			// The smallest pair explains the confusion best; larger ones
			// are the same confusion with more units around it.
			if f := bySet[key]; f == nil || u < f.units {
				bySet[key] = &found{a: a, b: b, skus: diff, units: u}
			}
		}
	}

	keys := make([]string, 0, len(bySet))
	for k := range bySet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Warning, 0, len(keys))
	for _, k := range keys {
		f := bySet[k]
		a, b := f.a, f.b
		// The basket with more units reads first: "2×250 g and 1×500 g".
		if b.units > a.units {
			a, b = b, a
		}
		out = append(out, Warning{
			Shelf: shelf,
			A:     lintMap(items, a.cnt),
			B:     lintMap(items, b.cnt),
			SKUs:  f.skus,
			Text: fmt.Sprintf("shelf %d: %s and %s weigh the same within tolerance",
				shelf, lintText(items, a.cnt), lintText(items, b.cnt)),
		})
	}
	return out
}

func lintMap(items []SKU, cnt []int) map[string]int {
	m := map[string]int{}
	for i, n := range cnt {
		if n > 0 {
			m[items[i].SKU] = n
		}
	}
	return m
}

func lintText(items []SKU, cnt []int) string {
	var parts []string
	for i, n := range cnt {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d×%s (%s g)", n, items[i].SKU,
				strconv.FormatFloat(items[i].UnitG, 'f', -1, 64)))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " + ")
}
