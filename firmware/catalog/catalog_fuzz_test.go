package catalog

// FuzzCatalog and FuzzPlanogram run the device's path for a verified
// payload (msg.DecodeStrict, then ApplyCatalog or ApplyPlanogram) against a
// real bbolt store. Their committed seeds (testdata/fuzz/Fuzz*/) are the demo
// data at a fixed time and broken variants of it; TestFuzzSeedsCommitted
// checks them, and rewrites them with
//
//	go test ./firmware/catalog -run TestFuzzSeedsCommitted -update-corpus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/internal/fuzzseed"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// fuzzT0 is the fixed time of every seed; the store holds version heldV of
// the demo catalog and planogram, so a seed at heldV+1 is news.
var fuzzT0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

const heldV = 5

func demoCatalog(v int64) msg.Catalog {
	c := demo.Catalog(fuzzT0)
	c.Version = v
	return c
}

func demoPlanogram(v int64) msg.Planogram {
	p := demo.Planogram(cabinet)
	p.Version = v
	return p
}

// applyCatalogJSON is what the firmware does with a verified catalog
// payload.
func applyCatalogJSON(s *Store, payload []byte) error {
	var c msg.Catalog
	if err := msg.DecodeStrict(payload, &c); err != nil {
		return err
	}
	return s.ApplyCatalog(c, demo.Region)
}

// applyPlanogramJSON is what the firmware does with a verified planogram
// payload.
func applyPlanogramJSON(s *Store, payload []byte) ([]infer.Warning, error) {
	var p msg.Planogram
	if err := msg.DecodeStrict(payload, &p); err != nil {
		return nil, err
	}
	return s.ApplyPlanogram(p, cabinet, hardware)
}

// fileBytes is every key and value of the store's bucket, copied out.
func fileBytes(t testing.TB, s *Store) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			m[string(k)] = bytes.Clone(v)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// fuzzStore is one store per fuzz process, holding heldV of the demo
// catalog and planogram. A store that accepted an input is replaced by a
// fresh one, so every input meets the same state.
type fuzzStore struct {
	dir string
	n   int
	s   *Store
}

func newFuzzStore(f *testing.F) *fuzzStore {
	fs := &fuzzStore{dir: f.TempDir()}
	fs.fresh(f)
	f.Cleanup(func() { fs.s.Close() })
	return fs
}

func (fs *fuzzStore) fresh(t testing.TB) {
	t.Helper()
	fs.n++
	s, err := Open(filepath.Join(fs.dir, fmt.Sprintf("catalog-%d.db", fs.n)), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyCatalog(demoCatalog(heldV), demo.Region); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyPlanogram(demoPlanogram(heldV), cabinet, hardware); err != nil {
		t.Fatal(err)
	}
	fs.s = s
}

// replace checks that what s holds survives a reopen, then starts afresh.
func (fs *fuzzStore) replace(t *testing.T, check func(*Store)) {
	t.Helper()
	path := fs.s.db.Path()
	if err := fs.s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatalf("reopen after an accepted input: %v", err)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) > 0 {
		t.Fatalf("the accepted input left a file that does not load: %v", m)
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fs.fresh(t)
}

// unchanged fails unless s holds byte for byte what it held before.
func unchanged(t *testing.T, s *Store, before map[string][]byte, cat msg.Catalog, plan msg.Planogram) {
	t.Helper()
	if after := fileBytes(t, s); !maps.EqualFunc(before, after, bytes.Equal) {
		t.Fatal("a refused input changed the stored bytes")
	}
	sameCatalog(t, s, cat)
	samePlanogram(t, s, &plan)
}

// FuzzCatalog: never panics; a refused catalog leaves the file byte-for-byte
// and the memory as they were; an accepted one is newer, for our region,
// passes Validate again, is what the store holds before and after a reopen,
// and leaves the planogram alone.
func FuzzCatalog(f *testing.F) {
	fs := newFuzzStore(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		s := fs.s
		before := fileBytes(t, s)
		held, _ := s.Catalog()
		plan, _ := s.Planogram()
		if err := applyCatalogJSON(s, payload); err != nil {
			unchanged(t, s, before, held, plan)
			return
		}
		var c msg.Catalog
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("accepted a catalog encoding/json cannot read: %v", err)
		}
		got, _ := s.Catalog()
		if err := Validate(got); err != nil {
			t.Fatalf("the catalog held fails Validate: %v", err)
		}
		if got.Version <= held.Version || got.Region != demo.Region {
			t.Fatalf("accepted version %d region %q over version %d", got.Version, got.Region, held.Version)
		}
		sameCatalog(t, s, c)
		samePlanogram(t, s, &plan)
		fs.replace(t, func(s *Store) {
			sameCatalog(t, s, c)
			for _, p := range held.Products {
				if _, listed := s.bySKU[p.SKU]; listed {
					continue
				}
				// Delisted: kept for its weights, never sellable.
				if d, ok := s.Product(p.SKU); !ok || d.Status != msg.StatusRevoked {
					t.Fatalf("delisted %s: %+v, %v; want it kept as revoked", p.SKU, d, ok)
				}
			}
		})
	})
}

// FuzzPlanogram: never panics; a refused planogram leaves the file and the
// memory as they were; an accepted one is newer, for this cabinet, passes
// the store's checks again and is what it holds before and after a reopen.
func FuzzPlanogram(f *testing.F) {
	fs := newFuzzStore(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		s := fs.s
		before := fileBytes(t, s)
		cat, _ := s.Catalog()
		held, _ := s.Planogram()
		warns, err := applyPlanogramJSON(s, payload)
		if err != nil {
			if warns != nil {
				t.Fatalf("refused with warnings %v", warns)
			}
			unchanged(t, s, before, cat, held)
			return
		}
		var p msg.Planogram
		if err := json.Unmarshal(payload, &p); err != nil {
			t.Fatalf("accepted a planogram encoding/json cannot read: %v", err)
		}
		if p.Version <= held.Version || p.CabinetID != cabinet {
			t.Fatalf("accepted version %d for %q over version %d", p.Version, p.CabinetID, held.Version)
		}
		if _, err := s.check(p, hardware); err != nil {
			t.Fatalf("the planogram held fails the checks: %v", err)
		}
		sameCatalog(t, s, cat)
		samePlanogram(t, s, &p)
		fs.replace(t, func(s *Store) { samePlanogram(t, s, &p) })
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// editJSON replaces the first old in b with new; it panics if old is
// missing, so a seed cannot silently stop testing what it says.
func editJSON(b []byte, old, new string) []byte {
	if !bytes.Contains(b, []byte(old)) {
		panic(fmt.Sprintf("editJSON: %q not in %s", old, b))
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func catalogSeeds() map[string][]byte {
	next := demoCatalog(heldV + 1)
	good := mustJSON(next)
	edit := func(f func(c *msg.Catalog)) []byte {
		c := demoCatalog(heldV + 1)
		f(&c)
		return mustJSON(c)
	}
	return map[string][]byte{
		"valid":                edit(func(c *msg.Catalog) {}),
		"valid-delists-one":    edit(func(c *msg.Catalog) { c.Products = c.Products[1:] }),
		"valid-revokes-one":    edit(func(c *msg.Catalog) { c.Products[0].Status = msg.StatusRevoked }),
		"valid-no-products":    edit(func(c *msg.Catalog) { c.Products = []msg.Product{} }),
		"same-version":         edit(func(c *msg.Catalog) { c.Version = heldV }),
		"older-version":        edit(func(c *msg.Catalog) { c.Version = heldV - 1 }),
		"zero-version":         edit(func(c *msg.Catalog) { c.Version = 0 }),
		"other-region":         edit(func(c *msg.Catalog) { c.Region = "500000" }),
		"no-region":            edit(func(c *msg.Catalog) { c.Region = "" }),
		"duplicate-sku":        edit(func(c *msg.Catalog) { c.Products[1].SKU = c.Products[0].SKU }),
		"empty-sku":            edit(func(c *msg.Catalog) { c.Products[0].SKU = "" }),
		"negative-price":       edit(func(c *msg.Catalog) { c.Products[0].PriceFen = -1 }),
		"zero-price":           edit(func(c *msg.Catalog) { c.Products[0].PriceFen = 0 }),
		"huge-price":           edit(func(c *msg.Catalog) { c.Products[0].PriceFen = 1 << 62 }),
		"zero-weight":          edit(func(c *msg.Catalog) { c.Products[0].UnitWeightG, c.Products[0].WeightTolG = 0, 0 }),
		"tolerance-half":       edit(func(c *msg.Catalog) { c.Products[0].WeightTolG = c.Products[0].UnitWeightG / 2 }),
		"status-suspended":     edit(func(c *msg.Catalog) { c.Products[0].Status = "suspended" }),
		"sku-control-char":     edit(func(c *msg.Catalog) { c.Products[0].SKU = "NM-0001\x00" }),
		"sku-bidi-override":    edit(func(c *msg.Catalog) { c.Products[0].SKU = "NM-\u202e1000" }),
		"name-over-long":       edit(func(c *msg.Catalog) { c.Products[0].Name = strings.Repeat("莜", 100) }),
		"no-valid-until":       edit(func(c *msg.Catalog) { c.Products[0].ValidUntil = msg.Time{} }),
		"until-year-10000":     editJSON(good, `"valid_until":"2027-11-26T03:00:00.000Z"`, `"valid_until":"9999-12-31T23:59:59-23:59"`),
		"duplicate-price-key":  editJSON(good, `"price_fen":2680`, `"price_fen":2680,"price_fen":1`),
		"upper-case-price-key": editJSON(good, `"price_fen":2680`, `"price_fen":2680,"PRICE_FEN":1`),
		"duplicate-version":    editJSON(good, `"version":6`, `"version":6,"version":5`),
		"unknown-field-top":    editJSON(good, `"version":6`, `"version":6,"signed_by":"x"`),
		"unknown-field-item":   editJSON(good, `"price_fen":2680`, `"price_fen":2680,"discount_fen":2000`),
		"price-as-string":      editJSON(good, `"price_fen":2680`, `"price_fen":"2680"`),
		"weight-1e400":         editJSON(good, `"unit_weight_g":780`, `"unit_weight_g":1e400`),
		"trailing-garbage":     append(bytes.Clone(good), "]"...),
		"truncated":            good[:len(good)/2],
		"null":                 []byte("null"),
	}
}

func planogramSeeds() map[string][]byte {
	good := mustJSON(demoPlanogram(heldV + 1))
	edit := func(f func(p *msg.Planogram)) []byte {
		p := demoPlanogram(heldV + 1)
		f(&p)
		return mustJSON(p)
	}
	return map[string][]byte{
		"valid":             good,
		"valid-empty-shelf": edit(func(p *msg.Planogram) { p.Shelves[1].SKUs = []string{} }),
		"valid-door-2-shelf": edit(func(p *msg.Planogram) {
			p.Shelves = append(p.Shelves, msg.PlanogramShelf{Shelf: door2Shelf, Door: 2, SKUs: []string{"QH-0203"}})
		}),
		"same-version":        edit(func(p *msg.Planogram) { p.Version = heldV }),
		"other-cabinet":       edit(func(p *msg.Planogram) { p.CabinetID = "NM-150102-0008" }),
		"unknown-sku":         edit(func(p *msg.Planogram) { p.Shelves[0].SKUs[0] = "XX-9999" }),
		"no-such-shelf":       edit(func(p *msg.Planogram) { p.Shelves[0].Shelf = 99 }),
		"wrong-door":          edit(func(p *msg.Planogram) { p.Shelves[0].Door = 2 }),
		"shelf-twice":         edit(func(p *msg.Planogram) { p.Shelves[1].Shelf = p.Shelves[0].Shelf }),
		"sku-twice":           edit(func(p *msg.Planogram) { p.Shelves[0].SKUs[1] = p.Shelves[0].SKUs[0] }),
		"no-shelves":          edit(func(p *msg.Planogram) { p.Shelves = nil }),
		"zero-version":        edit(func(p *msg.Planogram) { p.Version = 0 }),
		"duplicate-shelf-key": editJSON(good, `"shelf":1`, `"shelf":1,"shelf":99`),
		"unknown-field-shelf": editJSON(good, `"shelf":1`, `"shelf":1,"capacity":20`),
		"trailing-garbage":    append(bytes.Clone(good), "}"...),
		"null":                []byte("null"),
	}
}

func TestFuzzSeedsCommitted(t *testing.T) {
	fuzzseed.Bytes(t, "FuzzCatalog", catalogSeeds())
	fuzzseed.Bytes(t, "FuzzPlanogram", planogramSeeds())
}

// The seeds named valid… are accepted and the others refused, so the
// corpus covers both sides of every check (the fuzz targets themselves
// accept either outcome).
func TestFuzzSeedsAcceptedOrRefused(t *testing.T) {
	check := func(t *testing.T, kind, name string, err error) {
		t.Helper()
		if valid := strings.HasPrefix(name, "valid"); valid != (err == nil) {
			t.Errorf("%s %s: err %v", kind, name, err)
		}
	}
	for name, payload := range catalogSeeds() {
		s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
		if err := s.ApplyCatalog(demoCatalog(heldV), demo.Region); err != nil {
			t.Fatal(err)
		}
		check(t, "catalog", name, applyCatalogJSON(s, payload))
	}
	for name, payload := range planogramSeeds() {
		s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
		if err := s.ApplyCatalog(demoCatalog(heldV), demo.Region); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyPlanogram(demoPlanogram(heldV), cabinet, hardware); err != nil {
			t.Fatal(err)
		}
		_, err := applyPlanogramJSON(s, payload)
		check(t, "planogram", name, err)
	}
}
