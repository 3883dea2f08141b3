// Package stock reads stock files: the goods the simulator's virtual
// cabinets hold — the products of the certified catalog and, shelf by shelf,
// the units on it (format: docs/simulator.md) — and builds from them what
// the simulator needs: the catalog the virtual platform publishes, each
// cabinet's planogram, and the units the virtual hardware is loaded with.
// The demo data goes through the same checks (New), so the platform and the
// cabinets always agree on what is where.
//
// It owns only the reading and checking of goods. It must not touch the
// firmware's state, the platform keys or the wire format: products and
// planograms are telemetry/msg types as they are.
package stock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"time"

	"github.com/bangfu/cabinet/firmware/catalog"
	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Limits of a stock file.
const (
	// MaxFileBytes is the largest stock file read.
	MaxFileBytes = msg.MaxPayloadBytes
	// MaxUnits caps the units of one SKU on one shelf.
	MaxUnits = 1000
	// MaxDoors caps the door numbers shelves may be behind.
	MaxDoors = 16
	// MaxShelfG caps a shelf's nominal load: the virtual load cell
	// saturates at about 83 kg.
	MaxShelfG = 80_000
)

// Placeholders for the compliance fields a stock file leaves out: clearly
// not a real certificate, supplier or county. CertPlaceholder takes the
// product's 1-based position in the file.
const (
	CertPlaceholder       = "FAKE-%04d"
	SupplierIDPlaceholder = "FAKE-SUPPLIER"
	SupplierPlaceholder   = "示例供应商（非真实）"
	OriginCodePlaceholder = "000000"
	OriginPlaceholder     = "示例产地（非真实）"
)

// Shelf is one shelf of a stock file: where it is and what is on it.
type Shelf struct {
	Shelf int            `json:"shelf"`
	Door  int            `json:"door"`
	Items map[string]int `json:"items"` // units by SKU; 0 lists the SKU with none stocked
	// Lanes, optional, gives each SKU's lane position along the shelf, 0
	// at the left load cell and 1 at the right; it goes into the
	// planogram as it is.
	Lanes map[string]float64 `json:"lanes,omitempty"`
}

// file is a stock file's JSON form.
type file struct {
	Products []msg.Product `json:"products"`
	Shelves  []Shelf       `json:"shelves"`
}

// Goods is a checked stock: products and shelves. It is immutable; every
// accessor returns a copy.
type Goods struct {
	products []msg.Product
	bySKU    map[string]int
	shelves  []Shelf // by shelf number
}

// Load reads and checks the stock file at path; now fills a left-out
// valid_until (a year later) and is what a given one must lie after.
func Load(path string, now time.Time) (*Goods, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stock: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("stock %s: %w", path, err)
	}
	g, err := Parse(data, now)
	if err != nil {
		return nil, fmt.Errorf("stock %s: %w", path, err)
	}
	return g, nil
}

// Parse checks a stock file's content, decoded strictly: unknown fields,
// duplicate keys and trailing data are errors. Compliance fields left out
// get the placeholders above; status defaults to active.
func Parse(data []byte, now time.Time) (*Goods, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	var f file
	if err := msg.DecodeStrict(data, &f); err != nil {
		return nil, err
	}
	// Which product fields the file gave: a field left out gets a
	// placeholder, a field given empty is a mistake.
	var given struct {
		Products []map[string]json.RawMessage `json:"products"`
	}
	if err := json.Unmarshal(data, &given); err != nil || len(given.Products) != len(f.Products) {
		return nil, fmt.Errorf("products: not a list of objects (%v)", err)
	}
	var errs []error
	for i := range f.Products {
		p := &f.Products[i]
		has := given.Products[i]
		at := productAt(i, p.SKU)
		for _, k := range []string{"sku", "name", "unit_weight_g", "weight_tol_g", "price_fen"} {
			if _, ok := has[k]; !ok {
				errs = append(errs, fmt.Errorf("%s: %s missing", at, k))
			}
		}
		for _, fld := range []struct {
			key, placeholder string
			v                *string
		}{
			{"cert_no", fmt.Sprintf(CertPlaceholder, i+1), &p.CertNo},
			{"supplier_id", SupplierIDPlaceholder, &p.SupplierID},
			{"supplier", SupplierPlaceholder, &p.Supplier},
			{"origin_code", OriginCodePlaceholder, &p.OriginCode},
			{"origin", OriginPlaceholder, &p.Origin},
			{"name", "", &p.Name},
			{"status", msg.StatusActive, &p.Status},
		} {
			switch _, ok := has[fld.key]; {
			case !ok:
				*fld.v = fld.placeholder
			case *fld.v == "":
				errs = append(errs, fmt.Errorf("%s: %s is empty (leave it out for a placeholder)", at, fld.key))
			}
		}
		switch _, ok := has["valid_until"]; {
		case !ok:
			p.ValidUntil = msg.At(now.AddDate(1, 0, 0))
		case p.ValidUntil.IsZero():
			errs = append(errs, fmt.Errorf("%s: valid_until is null (leave it out for a year from now)", at))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return New(f.Products, f.Shelves, now)
}

func productAt(i int, sku string) string {
	if sku == "" {
		return fmt.Sprintf("products[%d]", i)
	}
	return fmt.Sprintf("products[%d] (%.64s)", i, sku)
}

// New checks complete products and the shelves that hold them, as Parse
// does after filling placeholders, and returns them as Goods. Every
// problem found is reported, each naming the product or shelf.
func New(products []msg.Product, shelves []Shelf, now time.Time) (*Goods, error) {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	g := &Goods{bySKU: map[string]int{}}
	if len(products) == 0 {
		bad("no products")
	}
	for i, p := range products {
		at := productAt(i, p.SKU)
		switch {
		case p.SKU == "":
			bad("%s: sku is empty", at)
		case hasKey(g.bySKU, p.SKU):
			bad("%s: SKU %q listed twice (first at products[%d])", at, p.SKU, g.bySKU[p.SKU])
		default:
			g.bySKU[p.SKU] = i
		}
		w, tol := p.UnitWeightG, p.WeightTolG
		switch {
		case !(w > 0) || math.IsInf(w, 0):
			bad("%s: unit_weight_g %g: must be positive", at, w)
		case !(tol >= 0) || math.IsInf(tol, 0):
			bad("%s: weight_tol_g %g: must not be negative", at, tol)
		case tol >= w:
			bad("%s: weight_tol_g %g: must be below unit_weight_g %g", at, tol, w)
		}
		switch {
		case p.PriceFen < 0:
			bad("%s: price_fen %d: must not be negative", at, p.PriceFen)
		case p.PriceFen == 0:
			bad("%s: price_fen 0: the cabinet sells nothing for free", at)
		}
		if !p.ValidUntil.IsZero() && !p.ValidUntil.After(now) {
			bad("%s: valid_until %s has passed", at, p.ValidUntil.UTC().Format(time.RFC3339))
		}
	}
	g.products = slices.Clone(products)
	if len(shelves) == 0 {
		bad("no shelves")
	}
	if len(shelves) > catalog.MaxShelves {
		bad("%d shelves: at most %d", len(shelves), catalog.MaxShelves)
	}
	seen := map[int]bool{}
	for i, sh := range shelves {
		at := fmt.Sprintf("shelves[%d] (shelf %d)", i, sh.Shelf)
		switch {
		case sh.Shelf < 1:
			bad("%s: shelf number %d: must be 1 or more", at, sh.Shelf)
		case seen[sh.Shelf]:
			bad("%s: shelf %d listed twice", at, sh.Shelf)
		}
		seen[sh.Shelf] = true
		if sh.Door < 1 || sh.Door > MaxDoors {
			bad("%s: door %d: must be 1 to %d", at, sh.Door, MaxDoors)
		}
		if len(sh.Items) == 0 {
			bad("%s: no items", at)
		}
		if len(sh.Items) > catalog.MaxSKUsShelf {
			bad("%s: %d SKUs, at most %d a shelf", at, len(sh.Items), catalog.MaxSKUsShelf)
		}
		var loadG float64
		for _, sku := range slices.Sorted(maps.Keys(sh.Items)) {
			n := sh.Items[sku]
			i, ok := g.bySKU[sku]
			switch {
			case !ok:
				bad("%s: SKU %.64q is not among the products", at, sku)
			case n < 0:
				bad("%s: %d units of %s: must be 0 or more", at, n, sku)
			case n > MaxUnits:
				bad("%s: %d units of %s: at most %d", at, n, sku, MaxUnits)
			default:
				loadG += float64(n) * (products[i].UnitWeightG + products[i].WeightTolG)
			}
		}
		if loadG > MaxShelfG {
			bad("%s: %.0f g of goods, more than the load cell's %d g", at, loadG, MaxShelfG)
		}
		if err := planogramShelf(sh).ValidateLanes(); err != nil {
			bad("%s: lanes: %v", at, err)
		}
		c := sh
		c.Items = maps.Clone(sh.Items)
		c.Lanes = maps.Clone(sh.Lanes)
		g.shelves = append(g.shelves, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// What the cabinet itself refuses in a catalog (text rules, limits):
	// better said here than by a cabinet that never gets ready.
	if err := catalog.Validate(g.Catalog(now, "000000")); err != nil {
		return nil, err
	}
	slices.SortFunc(g.shelves, func(a, b Shelf) int { return a.Shelf - b.Shelf })
	return g, nil
}

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// planogramShelf is sh as the planogram lists it: SKUs sorted.
func planogramShelf(sh Shelf) msg.PlanogramShelf {
	return msg.PlanogramShelf{Shelf: sh.Shelf, Door: sh.Door,
		SKUs: slices.Sorted(maps.Keys(sh.Items)), Lanes: maps.Clone(sh.Lanes)}
}

// WithLanes returns the goods with a lane for every SKU on every shelf, as
// a cabinet whose shelves stand on two load cells needs: the lanes given,
// and for a SKU without one its place when the shelf's n SKUs are spread
// evenly in SKU order, (i+0.5)/n for the i-th (from 0). g is unchanged.
func (g *Goods) WithLanes() *Goods {
	out := &Goods{products: g.products, bySKU: g.bySKU, shelves: g.Shelves()}
	for i := range out.shelves {
		sh := &out.shelves[i]
		skus := slices.Sorted(maps.Keys(sh.Items))
		if sh.Lanes == nil {
			sh.Lanes = map[string]float64{}
		}
		for j, sku := range skus {
			if _, ok := sh.Lanes[sku]; !ok {
				sh.Lanes[sku] = (float64(j) + 0.5) / float64(len(skus))
			}
		}
	}
	return out
}

// Products returns the products in the order given.
func (g *Goods) Products() []msg.Product { return slices.Clone(g.products) }

// Product returns the product with the SKU.
func (g *Goods) Product(sku string) (msg.Product, bool) {
	i, ok := g.bySKU[sku]
	if !ok {
		return msg.Product{}, false
	}
	return g.products[i], true
}

// Catalog returns the catalog the platform issues at now: version 1, the
// region given, every product as checked.
func (g *Goods) Catalog(now time.Time, region string) msg.Catalog {
	return msg.Catalog{Version: 1, IssuedAt: msg.At(now), Region: region, Products: g.Products()}
}

// Planogram returns the planogram (version 1) of a cabinet holding the
// goods: every shelf, its SKUs sorted, with its lanes if given.
func (g *Goods) Planogram(cabinetID string) msg.Planogram {
	p := msg.Planogram{Version: 1, CabinetID: cabinetID}
	for _, sh := range g.shelves {
		p.Shelves = append(p.Shelves, planogramShelf(sh))
	}
	return p
}

// Shelves returns the shelves by number.
func (g *Goods) Shelves() []Shelf {
	out := make([]Shelf, len(g.shelves))
	for i, sh := range g.shelves {
		sh.Items = maps.Clone(sh.Items)
		sh.Lanes = maps.Clone(sh.Lanes)
		out[i] = sh
	}
	return out
}

// Doors is the highest door number a shelf is behind.
func (g *Goods) Doors() int {
	n := 1
	for _, sh := range g.shelves {
		n = max(n, sh.Door)
	}
	return n
}

// Lint returns the planogram lint's warnings for every shelf: SKUs whose
// small baskets weigh alike, so that inference cannot tell them apart.
func (g *Goods) Lint() []infer.Warning {
	var out []infer.Warning
	for _, sh := range g.shelves {
		var skus []infer.SKU
		for _, id := range slices.Sorted(maps.Keys(sh.Items)) {
			p, _ := g.Product(id)
			skus = append(skus, infer.SKU{SKU: id, UnitG: p.UnitWeightG, TolG: p.WeightTolG, PriceFen: p.PriceFen})
		}
		out = append(out, infer.Lint(sh.Shelf, skus, 0)...)
	}
	return out
}

// Demo returns the demo's goods (simulator/demo): its whole catalog, and
// its planogram's shelves with the demo stock.
func Demo(now time.Time) (*Goods, error) {
	units := demo.Stock()
	var shelves []Shelf
	for _, sh := range demo.Planogram("").Shelves {
		items := map[string]int{}
		for _, sku := range sh.SKUs {
			items[sku] = units[sh.Shelf][sku]
		}
		shelves = append(shelves, Shelf{Shelf: sh.Shelf, Door: sh.Door, Items: items, Lanes: sh.Lanes})
	}
	g, err := New(demo.Catalog(now).Products, shelves, now)
	if err != nil {
		return nil, fmt.Errorf("stock: demo: %w", err)
	}
	return g, nil
}
