// Package catalog is the cabinet's cache of the platform's certified
// catalog and of its own planogram, in a bbolt file of their own. Both are
// rebuildable from the platform's retained messages, so a corrupt file is
// moved aside and started afresh; nothing here is ever needed to account
// for a sale already made (sales carry their own copy of every field).
//
// catalog validates what it stores (monotonic versions, sane products, a
// planogram naming only known SKUs) and answers "may this SKU be sold now".
// It decides nothing about sessions and prices nothing itself.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/telemetry/msg"
)

var (
	bucket     = []byte("catalog")
	kCatalog   = []byte("catalog")
	kPlanogram = []byte("planogram")
	kDelisted  = []byte("delisted")
)

// Refusal errors; the caller logs and counts them.
var (
	ErrStale   = errors.New("catalog: version not newer than the one held")
	ErrInvalid = errors.New("catalog: invalid")
)

// Limits on what a catalog may hold.
const (
	MaxProducts  = 5000
	MaxPriceFen  = 10_000_000 // ¥100,000 for one unit is a typo, not a price
	MaxUnitG     = 50_000
	MaxShelves   = 64
	MaxSKUsShelf = 8
)

// Store holds the catalog and planogram in memory, backed by the file.
type Store struct {
	db *bolt.DB

	mu    sync.RWMutex
	cat   *msg.Catalog
	plan  *msg.Planogram
	bySKU map[string]msg.Product
	// delisted keeps, marked revoked, products that a newer catalog no
	// longer lists: units may still stand on a shelf, and their weights
	// are needed to tell them from what may be sold (清理出产品目录 means
	// "never sell", not "forget what it weighs").
	delisted map[string]msg.Product
}

// Open opens the catalog file. A file bbolt cannot open or whose content
// does not decode is renamed to path+".corrupt-<unix>" and a fresh one is
// created: the platform's retained messages refill it.
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s, err := open(path)
	if err == nil {
		return s, nil
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, err // another process holds it: not corruption
	}
	if _, statErr := os.Stat(path); statErr != nil {
		return nil, err
	}
	aside := asideName(path, time.Now())
	log.Error("catalog file unusable; moving it aside and starting empty", "path", path, "aside", aside, "err", err)
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("catalog: move aside %s: %w (after %v)", path, rerr, err)
	}
	return open(path)
}

// asideName is a name for the unusable file at path that no earlier
// move-aside holds: os.Rename would replace it silently, and a crash loop can
// corrupt the file twice within a second.
func asideName(path string, now time.Time) string {
	name := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s.corrupt-%d-%d", path, now.Unix(), i)
	}
}

func open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("catalog: open %s: %w", path, err)
	}
	s := &Store{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		if raw := b.Get(kCatalog); raw != nil {
			var c msg.Catalog
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("catalog: stored catalog: %w", err)
			}
			s.setCatalog(&c)
		}
		if raw := b.Get(kDelisted); raw != nil {
			if err := json.Unmarshal(raw, &s.delisted); err != nil {
				return fmt.Errorf("catalog: stored delisted products: %w", err)
			}
		}
		if raw := b.Get(kPlanogram); raw != nil {
			var p msg.Planogram
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("catalog: stored planogram: %w", err)
			}
			s.plan = &p
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) setCatalog(c *msg.Catalog) {
	m := make(map[string]msg.Product, len(c.Products))
	for _, p := range c.Products {
		m[p.SKU] = p
	}
	s.cat, s.bySKU = c, m
}

// Catalog returns the catalog held, if any.
func (s *Store) Catalog() (msg.Catalog, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cat == nil {
		return msg.Catalog{}, false
	}
	c := *s.cat
	c.Products = slices.Clone(c.Products)
	return c, true
}

// Version is the catalog version held (0: none).
func (s *Store) Version() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cat == nil {
		return 0
	}
	return s.cat.Version
}

// Planogram returns the planogram held, if any.
func (s *Store) Planogram() (msg.Planogram, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.plan == nil {
		return msg.Planogram{}, false
	}
	return clonePlanogram(*s.plan), true
}

// PlanogramVersion returns the planogram's version and whether there is
// one, without copying it.
func (s *Store) PlanogramVersion() (int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.plan == nil {
		return 0, false
	}
	return s.plan.Version, true
}

// Product returns the catalog's entry for sku (whatever its status), or
// the last entry of a product a newer catalog dropped, marked revoked. It
// satisfies payment.PriceBook, which judges sellability.
func (s *Store) Product(sku string) (msg.Product, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.bySKU[sku]; ok {
		return p, true
	}
	p, ok := s.delisted[sku]
	return p, ok
}

// Validate checks a catalog's content (not its version).
func Validate(c msg.Catalog) error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if c.Version <= 0 {
		bad("version %d: must be positive", c.Version)
	}
	if c.IssuedAt.IsZero() {
		bad("issued_at missing")
	}
	if !msg.ValidText(c.Region, msg.MaxIDBytes) {
		bad("region: %s", textRule(msg.MaxIDBytes))
	}
	if len(c.Products) > MaxProducts {
		bad("%d products: at most %d", len(c.Products), MaxProducts)
	}
	seen := map[string]bool{}
	for i, p := range c.Products {
		at := fmt.Sprintf("products[%d] (%.64s)", i, p.SKU)
		switch {
		case p.SKU == "":
			bad("%s: empty sku", at)
		case seen[p.SKU]:
			bad("%s: duplicate sku", at)
		}
		seen[p.SKU] = true
		// Every string is copied into sales, replies and logs: bound it
		// and keep out characters that make one id print like another.
		for _, f := range []struct {
			name, v string
			max     int
		}{
			{"sku", p.SKU, msg.MaxIDBytes}, {"cert_no", p.CertNo, msg.MaxIDBytes},
			{"supplier_id", p.SupplierID, msg.MaxIDBytes}, {"origin_code", p.OriginCode, msg.MaxIDBytes},
			{"name", p.Name, msg.MaxTextBytes}, {"supplier", p.Supplier, msg.MaxTextBytes},
			{"origin", p.Origin, msg.MaxTextBytes},
		} {
			if !msg.ValidText(f.v, f.max) {
				bad("%s: %s: %s", at, f.name, textRule(f.max))
			}
		}
		if p.Status != msg.StatusActive && p.Status != msg.StatusRevoked {
			bad("%s: status %.16q", at, p.Status)
		}
		if p.Status == msg.StatusActive && (p.CertNo == "" || p.Name == "" || p.SupplierID == "" || p.OriginCode == "") {
			bad("%s: an active product needs cert_no, name, supplier_id and origin_code", at)
		}
		if p.PriceFen <= 0 || p.PriceFen > MaxPriceFen {
			bad("%s: price_fen %d out of range (1..%d)", at, p.PriceFen, MaxPriceFen)
		}
		if !(p.UnitWeightG > 0 && p.UnitWeightG <= MaxUnitG) {
			bad("%s: unit_weight_g %g out of range", at, p.UnitWeightG)
		}
		if !(p.WeightTolG >= 0 && p.WeightTolG < p.UnitWeightG/2) {
			bad("%s: weight_tol_g %g must be ≥ 0 and under half the unit weight", at, p.WeightTolG)
		}
		if p.ValidUntil.IsZero() {
			bad("%s: valid_until missing", at)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func textRule(max int) string {
	return fmt.Sprintf("at most %d bytes, and no control or format characters", max)
}

// ApplyCatalog stores c if it is valid, for our region (region "" accepts
// any), and newer than the catalog held. On error nothing changes.
func (s *Store) ApplyCatalog(c msg.Catalog, region string) error {
	if err := Validate(c); err != nil {
		return err
	}
	if region != "" && c.Region != region {
		return fmt.Errorf("%w: region %.64q, this cabinet takes %q", ErrInvalid, c.Region, region)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cat != nil && c.Version <= s.cat.Version {
		return fmt.Errorf("%w: got %d, hold %d", ErrStale, c.Version, s.cat.Version)
	}
	delisted := map[string]msg.Product{}
	listed := map[string]bool{}
	for _, p := range c.Products {
		listed[p.SKU] = true
	}
	for sku, p := range s.delisted {
		if !listed[sku] {
			delisted[sku] = p
		}
	}
	for sku, p := range s.bySKU {
		if !listed[sku] {
			p.Status = msg.StatusRevoked
			delisted[sku] = p
		}
	}
	if len(delisted) > MaxProducts {
		delisted = map[string]msg.Product{} // a runaway history; the current catalog still rules
	}
	if err := s.putAll(map[string]any{string(kCatalog): c, string(kDelisted): delisted}); err != nil {
		return err
	}
	// Keep a copy of our own: the caller's slice must not be able to
	// change what was validated and stored.
	c.Products = slices.Clone(c.Products)
	s.setCatalog(&c)
	s.delisted = delisted
	return nil
}

// ApplyPlanogram stores p if it is for this cabinet, newer than the one
// held, names only catalog SKUs and only the given shelves. It returns the
// lint warnings (SKUs on one shelf that cannot be told apart by weight):
// the planogram is accepted with them, and the caller reports them.
func (s *Store) ApplyPlanogram(p msg.Planogram, cabinetID string, shelves map[int]int) ([]infer.Warning, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.CabinetID != cabinetID {
		return nil, fmt.Errorf("%w: planogram for %.64q, this is %q", ErrInvalid, p.CabinetID, cabinetID)
	}
	if s.plan != nil && p.Version <= s.plan.Version {
		return nil, fmt.Errorf("%w: planogram %d, hold %d", ErrStale, p.Version, s.plan.Version)
	}
	if s.cat == nil {
		return nil, fmt.Errorf("%w: no catalog yet to check the planogram against", ErrInvalid)
	}
	warns, err := s.check(p, shelves)
	if err != nil {
		return nil, err
	}
	if err := s.put(kPlanogram, p); err != nil {
		return nil, err
	}
	p = clonePlanogram(p) // ours alone, as for the catalog
	s.plan = &p
	return warns, nil
}

// PlanShelves is the planogram held, as the lint's simulation sees it: each
// shelf's catalog products with their weights, prices and lane positions
// (nil before a planogram). Stock is left to the caller.
func (s *Store) PlanShelves() []infer.PlanShelf {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plan == nil {
		return nil
	}
	var out []infer.PlanShelf
	for _, sh := range s.plan.Shelves {
		ps := infer.PlanShelf{Shelf: sh.Shelf}
		for _, sku := range sh.SKUs {
			if prod, ok := s.bySKU[sku]; ok {
				ps.SKUs = append(ps.SKUs, infer.SKU{SKU: sku, UnitG: prod.UnitWeightG, TolG: prod.WeightTolG,
					PriceFen: prod.PriceFen, Lane: sh.Lanes[sku]})
			}
		}
		out = append(out, ps)
	}
	return out
}

// clonePlanogram copies p's shelves and their SKU lists.
func clonePlanogram(p msg.Planogram) msg.Planogram {
	p.Shelves = slices.Clone(p.Shelves)
	for i := range p.Shelves {
		p.Shelves[i].SKUs = slices.Clone(p.Shelves[i].SKUs)
		p.Shelves[i].Lanes = maps.Clone(p.Shelves[i].Lanes)
	}
	return p
}

func (s *Store) check(p msg.Planogram, shelves map[int]int) ([]infer.Warning, error) {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if p.Version <= 0 {
		bad("version %d: must be positive", p.Version)
	}
	if len(p.Shelves) == 0 || len(p.Shelves) > MaxShelves {
		bad("%d shelves: want 1..%d", len(p.Shelves), MaxShelves)
	}
	seen := map[int]bool{}
	var warns []infer.Warning
	for _, sh := range p.Shelves {
		door, ok := shelves[sh.Shelf]
		switch {
		case seen[sh.Shelf]:
			bad("shelf %d listed twice", sh.Shelf)
		case !ok:
			bad("shelf %d: this cabinet has no such shelf", sh.Shelf)
		case sh.Door != door:
			bad("shelf %d: door %d, the shelf is behind door %d", sh.Shelf, sh.Door, door)
		}
		seen[sh.Shelf] = true
		if len(sh.SKUs) > MaxSKUsShelf {
			bad("shelf %d: %d SKUs, at most %d", sh.Shelf, len(sh.SKUs), MaxSKUsShelf)
		}
		if err := sh.ValidateLanes(); err != nil {
			bad("%v", err)
		}
		var items []infer.SKU
		for i, sku := range sh.SKUs {
			prod, ok := s.bySKU[sku]
			if !ok {
				bad("shelf %d: SKU %.64q is not in catalog %d", sh.Shelf, sku, s.cat.Version)
				continue
			}
			if slices.Contains(sh.SKUs[:i], sku) {
				bad("shelf %d: SKU %q listed twice", sh.Shelf, sku)
				continue
			}
			items = append(items, infer.SKU{SKU: sku, UnitG: prod.UnitWeightG, TolG: prod.WeightTolG, PriceFen: prod.PriceFen})
		}
		warns = append(warns, infer.Lint(sh.Shelf, items, 0)...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: planogram %d: %w", ErrInvalid, p.Version, errors.Join(errs...))
	}
	return warns, nil
}

func (s *Store) put(k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("catalog: encode: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(k, raw) })
}

// putAll stores several keys in one transaction.
func (s *Store) putAll(kv map[string]any) error {
	raws := map[string][]byte{}
	for k, v := range kv {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("catalog: encode %s: %w", k, err)
		}
		raws[k] = raw
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for k, raw := range raws {
			if err := tx.Bucket(bucket).Put([]byte(k), raw); err != nil {
				return err
			}
		}
		return nil
	})
}
