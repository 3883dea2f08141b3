package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
)

const cabinet = "NM-150102-0007"

// hardware is the shelf → door map of a cabinet with the demo planogram's
// shelves plus one more, door2Shelf, behind a second door.
var hardware, door2Shelf = func() (map[int]int, int) {
	m := map[int]int{}
	top := 0
	for _, sh := range demo.Planogram(cabinet).Shelves {
		m[sh.Shelf] = sh.Door
		top = max(top, sh.Shelf)
	}
	m[top+1] = 2
	return m, top + 1
}()

// freeSKU is a catalog SKU the demo planogram does not place.
func freeSKU(t *testing.T) string {
	t.Helper()
	placed := map[string]bool{}
	for _, sh := range demo.Planogram(cabinet).Shelves {
		for _, sku := range sh.SKUs {
			placed[sku] = true
		}
	}
	for _, p := range catalogAt(1).Products {
		if !placed[p.SKU] {
			return p.SKU
		}
	}
	t.Fatal("the demo catalog has no SKU outside the planogram")
	return ""
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openStore opens the store at path and, at cleanup, checks the bbolt file's
// consistency and closes it (bbolt's own test helpers do the same).
func openStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, quiet())
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

// closeStore checks and closes s; closing twice is harmless.
func closeStore(t *testing.T, s *Store) {
	t.Helper()
	if s.db.Path() == "" {
		return // already closed
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Errorf("bbolt check: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// reopen closes s and opens its file again.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	path := s.db.Path()
	closeStore(t, s)
	return openStore(t, path)
}

// catalogAt is the demo catalog at version v.
func catalogAt(v int64) msg.Catalog {
	c := demo.Catalog(time.Now())
	c.Version = v
	return c
}

// clone deep-copies a catalog so a test case can change it freely.
func clone(c msg.Catalog) msg.Catalog {
	c.Products = slices.Clone(c.Products)
	return c
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameCatalog fails unless s holds exactly want.
func sameCatalog(t *testing.T, s *Store, want msg.Catalog) {
	t.Helper()
	got, ok := s.Catalog()
	if !ok {
		t.Fatalf("no catalog held, want version %d", want.Version)
	}
	if g, w := asJSON(t, got), asJSON(t, want); g != w {
		head := func(c msg.Catalog) msg.Catalog { c.Products = nil; return c }
		if g, w := asJSON(t, head(got)), asJSON(t, head(want)); g != w {
			t.Fatalf("catalog held changed:\n got %s\nwant %s", g, w)
		}
		if len(got.Products) != len(want.Products) {
			t.Fatalf("catalog held has %d products, want %d", len(got.Products), len(want.Products))
		}
		for i := range got.Products {
			if g, w := asJSON(t, got.Products[i]), asJSON(t, want.Products[i]); g != w {
				t.Fatalf("catalog held changed, products[%d]:\n got %s\nwant %s", i, g, w)
			}
		}
	}
	if s.Version() != want.Version {
		t.Fatalf("Version() = %d, want %d", s.Version(), want.Version)
	}
	for _, p := range want.Products {
		if got, ok := s.Product(p.SKU); !ok || asJSON(t, got) != asJSON(t, p) {
			t.Fatalf("Product(%s) = %+v, %v; want %+v", p.SKU, got, ok, p)
		}
	}
}

func TestApplyCatalogPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	s := openStore(t, path)
	if _, ok := s.Catalog(); ok || s.Version() != 0 {
		t.Fatal("a fresh store holds a catalog")
	}
	if _, ok := s.Product(catalogAt(1).Products[0].SKU); ok {
		t.Fatal("a fresh store knows a product")
	}
	c := catalogAt(1)
	if err := s.ApplyCatalog(c, demo.Region); err != nil {
		t.Fatalf("valid catalog refused: %v", err)
	}
	sameCatalog(t, s, c)

	s = reopen(t, s)
	sameCatalog(t, s, c)

	// A newer one replaces it, also across a reopen; a product dropped from
	// the catalog is no longer known.
	c2 := clone(catalogAt(2))
	dropped := c2.Products[0].SKU
	c2.Products = c2.Products[1:]
	c2.Products[0].PriceFen++
	if err := s.ApplyCatalog(c2, ""); err != nil {
		t.Fatalf("newer catalog refused (region \"\" takes any): %v", err)
	}
	s = reopen(t, s)
	sameCatalog(t, s, c2)
	// A dropped product is remembered, revoked, with its weights: units
	// may still stand on a shelf and must be told apart, never sold.
	p, ok := s.Product(dropped)
	if !ok || p.Status != msg.StatusRevoked || p.UnitWeightG != catalogAt(2).Products[0].UnitWeightG {
		t.Fatalf("%s after a catalog without it: %+v ok=%v, want it revoked with its weight", dropped, p, ok)
	}
	// Listing it again makes it the catalog's product once more.
	c3 := clone(catalogAt(3))
	if err := s.ApplyCatalog(c3, ""); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if p, ok := s.Product(dropped); !ok || p.Status != msg.StatusActive {
		t.Fatalf("%s listed again: %+v ok=%v", dropped, p, ok)
	}
}

func TestApplyCatalogAcceptsBoundaries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*msg.Catalog)
	}{
		{"highest price", func(c *msg.Catalog) { c.Products[0].PriceFen = MaxPriceFen }},
		{"heaviest unit", func(c *msg.Catalog) { c.Products[0].UnitWeightG = MaxUnitG }},
		{"zero tolerance", func(c *msg.Catalog) { c.Products[0].WeightTolG = 0 }},
		{"revoked product without cert_no", func(c *msg.Catalog) {
			c.Products[0].Status = msg.StatusRevoked
			c.Products[0].CertNo = ""
		}},
		{"MaxProducts products", func(c *msg.Catalog) { c.Products = manyProducts(c.Products[0], MaxProducts) }},
		{"no products", func(c *msg.Catalog) { c.Products = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
			c := clone(catalogAt(1))
			tc.mutate(&c)
			if err := s.ApplyCatalog(c, demo.Region); err != nil {
				t.Fatalf("refused: %v", err)
			}
			sameCatalog(t, reopen(t, s), c)
		})
	}
}

func manyProducts(p msg.Product, n int) []msg.Product {
	out := make([]msg.Product, n)
	for i := range out {
		out[i] = p
		out[i].SKU = fmt.Sprintf("X-%05d", i)
	}
	return out
}

func TestApplyCatalogRefusals(t *testing.T) {
	const held = 5
	for _, tc := range []struct {
		name   string
		region string
		mutate func(*msg.Catalog)
		want   error
	}{
		{"same version", demo.Region, func(c *msg.Catalog) { c.Version = held }, ErrStale},
		{"older version", demo.Region, func(c *msg.Catalog) { c.Version = held - 1 }, ErrStale},
		{"zero version", demo.Region, func(c *msg.Catalog) { c.Version = 0 }, ErrInvalid},
		{"missing issued_at", demo.Region, func(c *msg.Catalog) { c.IssuedAt = msg.Time{} }, ErrInvalid},
		{"duplicate sku", demo.Region, func(c *msg.Catalog) { c.Products[3].SKU = c.Products[1].SKU }, ErrInvalid},
		{"empty sku", demo.Region, func(c *msg.Catalog) { c.Products[2].SKU = "" }, ErrInvalid},
		{"negative price", demo.Region, func(c *msg.Catalog) { c.Products[0].PriceFen = -2680 }, ErrInvalid},
		{"zero price", demo.Region, func(c *msg.Catalog) { c.Products[0].PriceFen = 0 }, ErrInvalid},
		{"huge price", demo.Region, func(c *msg.Catalog) { c.Products[0].PriceFen = MaxPriceFen + 1 }, ErrInvalid},
		{"max int64 price", demo.Region, func(c *msg.Catalog) { c.Products[0].PriceFen = math.MaxInt64 }, ErrInvalid},
		{"zero weight", demo.Region, func(c *msg.Catalog) {
			c.Products[0].UnitWeightG = 0
			c.Products[0].WeightTolG = 0
		}, ErrInvalid},
		{"negative weight", demo.Region, func(c *msg.Catalog) { c.Products[0].UnitWeightG = -1000 }, ErrInvalid},
		{"NaN weight", demo.Region, func(c *msg.Catalog) { c.Products[0].UnitWeightG = math.NaN() }, ErrInvalid},
		{"weight over MaxUnitG", demo.Region, func(c *msg.Catalog) { c.Products[0].UnitWeightG = MaxUnitG + 1 }, ErrInvalid},
		{"tolerance half the weight", demo.Region, func(c *msg.Catalog) { c.Products[0].WeightTolG = c.Products[0].UnitWeightG / 2 }, ErrInvalid},
		{"tolerance over half the weight", demo.Region, func(c *msg.Catalog) { c.Products[0].WeightTolG = c.Products[0].UnitWeightG }, ErrInvalid},
		{"negative tolerance", demo.Region, func(c *msg.Catalog) { c.Products[0].WeightTolG = -1 }, ErrInvalid},
		{"NaN tolerance", demo.Region, func(c *msg.Catalog) { c.Products[0].WeightTolG = math.NaN() }, ErrInvalid},
		{"empty status", demo.Region, func(c *msg.Catalog) { c.Products[0].Status = "" }, ErrInvalid},
		{"unknown status", demo.Region, func(c *msg.Catalog) { c.Products[0].Status = "suspended" }, ErrInvalid},
		{"active product without cert_no", demo.Region, func(c *msg.Catalog) { c.Products[4].CertNo = "" }, ErrInvalid},
		{"active product without name", demo.Region, func(c *msg.Catalog) { c.Products[4].Name = "" }, ErrInvalid},
		{"active product without supplier_id", demo.Region, func(c *msg.Catalog) { c.Products[4].SupplierID = "" }, ErrInvalid},
		{"active product without origin_code", demo.Region, func(c *msg.Catalog) { c.Products[4].OriginCode = "" }, ErrInvalid},
		{"missing valid_until", demo.Region, func(c *msg.Catalog) { c.Products[0].ValidUntil = msg.Time{} }, ErrInvalid},
		{"wrong region", "500000", func(c *msg.Catalog) {}, ErrInvalid},
		{"missing region", demo.Region, func(c *msg.Catalog) { c.Region = "" }, ErrInvalid},
		{"more than MaxProducts", demo.Region, func(c *msg.Catalog) { c.Products = manyProducts(c.Products[0], MaxProducts+1) }, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
			orig := catalogAt(held)
			if err := s.ApplyCatalog(orig, demo.Region); err != nil {
				t.Fatal(err)
			}
			// A refusal must name its kind, however stale or broken the
			// rest is: a newer version unless the case is about versions.
			c := clone(catalogAt(held + 1))
			tc.mutate(&c)
			err := s.ApplyCatalog(c, tc.region)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ApplyCatalog: %v, want %v", err, tc.want)
			}
			sameCatalog(t, s, orig)
			sameCatalog(t, reopen(t, s), orig)
		})
	}
}

// The store keeps its own copy: what a caller does with the catalog it
// handed in, or with the one it read back, changes nothing held.
func TestStoreKeepsItsOwnCopy(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
	c := clone(catalogAt(1))
	if err := s.ApplyCatalog(c, demo.Region); err != nil {
		t.Fatal(err)
	}
	want := clone(c)
	c.Products[0].PriceFen = -1
	got, _ := s.Catalog()
	got.Products[1].PriceFen = -1
	sameCatalog(t, s, want)

	p := demo.Planogram(cabinet)
	if _, err := s.ApplyPlanogram(p, cabinet, hardware); err != nil {
		t.Fatal(err)
	}
	wantPlan := asJSON(t, p)
	p.Shelves[0].SKUs[0] = "NOT-IN-CATALOG"
	gotPlan, _ := s.Planogram()
	gotPlan.Shelves[1].SKUs[0] = "NOT-IN-CATALOG"
	gotPlan.Shelves[2].Door = 9
	if held, _ := s.Planogram(); asJSON(t, held) != wantPlan {
		t.Fatalf("planogram held changed through a caller's copy:\n got %s\nwant %s", asJSON(t, held), wantPlan)
	}
}

// samePlanogram fails unless s holds want (nil: none).
func samePlanogram(t *testing.T, s *Store, want *msg.Planogram) {
	t.Helper()
	got, ok := s.Planogram()
	switch {
	case want == nil && ok:
		t.Fatalf("planogram %d held, want none", got.Version)
	case want == nil:
	case !ok:
		t.Fatalf("no planogram held, want version %d", want.Version)
	case asJSON(t, got) != asJSON(t, *want):
		t.Fatalf("planogram held changed:\n got %s\nwant %s", asJSON(t, got), asJSON(t, *want))
	}
}

func TestApplyPlanogramAcceptsAndLints(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
	if err := s.ApplyCatalog(catalogAt(1), demo.Region); err != nil {
		t.Fatal(err)
	}
	// The demo's own planogram lints clean; one whose shelf 3 holds the
	// 250 g and 500 g packs of one 花椒 is accepted with a warning naming them.
	clean := demo.Planogram(cabinet)
	if warns, err := s.ApplyPlanogram(clean, cabinet, hardware); err != nil || len(warns) != 0 {
		t.Fatalf("demo planogram: warnings %v, err %v", warns, err)
	}
	const confusable = 3
	p := demo.Planogram(cabinet)
	p.Version = clean.Version + 1
	p.Shelves[confusable-1].SKUs = []string{"CQ-0303", "CQ-0304"}
	warns, err := s.ApplyPlanogram(p, cabinet, hardware)
	if err != nil {
		t.Fatalf("planogram refused: %v", err)
	}
	if len(warns) == 0 {
		t.Fatalf("no lint warning; shelf %d holds two pack sizes of one product", confusable)
	}
	for _, w := range warns {
		if w.Shelf != confusable {
			t.Errorf("warning for shelf %d (%s), want only shelf %d", w.Shelf, w.Text, confusable)
		}
		if !slices.Equal(w.SKUs, []string{"CQ-0303", "CQ-0304"}) {
			t.Errorf("warning names %v, want CQ-0303 and CQ-0304", w.SKUs)
		}
		if w.Text == "" {
			t.Error("warning without text")
		}
	}
	samePlanogram(t, s, &p)
	samePlanogram(t, reopen(t, s), &p)
}

func TestApplyPlanogramRefusals(t *testing.T) {
	const held = 3
	extra := freeSKU(t)
	base := func() msg.Planogram {
		p := demo.Planogram(cabinet)
		p.Version = held + 1
		return p
	}
	for _, tc := range []struct {
		name  string
		plan  func() msg.Planogram
		cabID string
		noCat bool
		want  error
	}{
		{name: "wrong cabinet", plan: func() msg.Planogram { p := base(); p.CabinetID = "NM-150102-0008"; return p }, want: ErrInvalid},
		{name: "for us, told another id", plan: base, cabID: "NM-150102-0008", want: ErrInvalid},
		{name: "same version", plan: func() msg.Planogram { p := base(); p.Version = held; return p }, want: ErrStale},
		{name: "older version", plan: func() msg.Planogram { p := base(); p.Version = 1; return p }, want: ErrStale},
		{name: "unknown sku", plan: func() msg.Planogram { p := base(); p.Shelves[1].SKUs[0] = "XX-9999"; return p }, want: ErrInvalid},
		{name: "shelf not in the hardware", plan: func() msg.Planogram {
			p := base()
			p.Shelves = append(p.Shelves, msg.PlanogramShelf{Shelf: 99, Door: 1, SKUs: []string{extra}})
			return p
		}, want: ErrInvalid},
		{name: "shelf behind the wrong door", plan: func() msg.Planogram { p := base(); p.Shelves[len(p.Shelves)-1].Door = 2; return p }, want: ErrInvalid},
		{name: "door-2 shelf said to be behind door 1", plan: func() msg.Planogram {
			p := base()
			p.Shelves = append(p.Shelves, msg.PlanogramShelf{Shelf: door2Shelf, Door: 1, SKUs: []string{extra}})
			return p
		}, want: ErrInvalid},
		{name: "sku listed twice on a shelf", plan: func() msg.Planogram {
			p := base()
			p.Shelves[0].SKUs = append(p.Shelves[0].SKUs, p.Shelves[0].SKUs[0])
			return p
		}, want: ErrInvalid},
		{name: "shelf listed twice", plan: func() msg.Planogram {
			p := base()
			p.Shelves = append(p.Shelves, msg.PlanogramShelf{Shelf: p.Shelves[1].Shelf, Door: p.Shelves[1].Door, SKUs: []string{extra}})
			return p
		}, want: ErrInvalid},
		{name: "no shelves", plan: func() msg.Planogram { p := base(); p.Shelves = nil; return p }, want: ErrInvalid},
		{name: "too many skus on a shelf", plan: func() msg.Planogram {
			p := base()
			p.Shelves[0].SKUs = nil
			for _, prod := range catalogAt(1).Products[:MaxSKUsShelf+1] {
				p.Shelves[0].SKUs = append(p.Shelves[0].SKUs, prod.SKU)
			}
			return p
		}, want: ErrInvalid},
		{name: "no catalog yet", plan: base, noCat: true, want: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
			var orig *msg.Planogram
			if !tc.noCat {
				if err := s.ApplyCatalog(catalogAt(1), demo.Region); err != nil {
					t.Fatal(err)
				}
				p := demo.Planogram(cabinet)
				p.Version = held
				if _, err := s.ApplyPlanogram(p, cabinet, hardware); err != nil {
					t.Fatal(err)
				}
				orig = &p
			}
			cabID := tc.cabID
			if cabID == "" {
				cabID = cabinet
			}
			warns, err := s.ApplyPlanogram(tc.plan(), cabID, hardware)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ApplyPlanogram: %v, want %v", err, tc.want)
			}
			if warns != nil {
				t.Errorf("refused planogram came with warnings %v", warns)
			}
			samePlanogram(t, s, orig)
			s = reopen(t, s)
			samePlanogram(t, s, orig)
			if tc.noCat && s.Version() != 0 {
				t.Fatal("a catalog appeared")
			}
		})
	}
}

// corruptAside returns the files moved aside next to path.
func corruptAside(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + ".corrupt-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCorruptFileIsMovedAside(t *testing.T) {
	for _, tc := range []struct {
		name    string
		garbage []byte
	}{
		{"short text", []byte("this is not a bbolt file\n")},
		{"two pages of noise", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37}, 8192/7+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			if err := os.WriteFile(path, tc.garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, path)
			if _, ok := s.Catalog(); ok {
				t.Fatal("a corrupt file gave a catalog")
			}
			samePlanogram(t, s, nil)
			aside := corruptAside(t, path)
			if len(aside) != 1 {
				t.Fatalf("moved aside: %v, want one file", aside)
			}
			got, err := os.ReadFile(aside[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.garbage) {
				t.Fatal("the file moved aside does not hold the original bytes")
			}
			// The fresh store works and keeps what it is given.
			if err := s.ApplyCatalog(catalogAt(1), demo.Region); err != nil {
				t.Fatal(err)
			}
			if s = reopen(t, s); s.Version() != 1 {
				t.Fatalf("version %d after reopen, want 1", s.Version())
			}
			if n := len(corruptAside(t, path)); n != 1 {
				t.Fatalf("%d files aside after a clean reopen, want 1", n)
			}
		})
	}
}

// A bbolt file that opens but whose stored catalog does not decode is as
// unusable as a torn one.
func TestUndecodableContentIsMovedAside(t *testing.T) {
	for _, key := range [][]byte{kCatalog, kPlanogram} {
		t.Run(string(key), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(bucket)
				if err != nil {
					return err
				}
				return b.Put(key, []byte(`{"version": "forty-two"`))
			}); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s := openStore(t, path)
			if s.Version() != 0 {
				t.Fatal("undecodable file gave a catalog")
			}
			samePlanogram(t, s, nil)
			aside := corruptAside(t, path)
			if len(aside) != 1 {
				t.Fatalf("moved aside: %v, want one file", aside)
			}
			if got, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(got, orig) {
				t.Fatalf("aside file does not hold the original bytes (err %v)", err)
			}
		})
	}
}

// Corrupt twice in a row (a crash loop): every damaged file is kept for
// the technician, none overwritten by the next.
func TestRepeatedCorruptionKeepsEveryAsideFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	var want [][]byte
	for i := range 3 {
		garbage := fmt.Appendf(nil, "garbage number %d", i)
		want = append(want, garbage)
		if err := os.WriteFile(path, garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, quiet())
		if err != nil {
			t.Fatal(err)
		}
		closeStore(t, s)
	}
	aside := corruptAside(t, path)
	if len(aside) != len(want) {
		t.Fatalf("aside files %v, want %d", aside, len(want))
	}
	var got [][]byte
	for _, a := range aside {
		b, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g []byte) bool { return bytes.Equal(g, w) }) {
			t.Errorf("%q was not kept", w)
		}
	}
}

func TestLockedFileIsNotMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	first := openStore(t, path)
	c := catalogAt(1)
	if err := first.ApplyCatalog(c, demo.Region); err != nil {
		t.Fatal(err)
	}
	second, err := Open(path, quiet())
	if err == nil {
		second.Close()
		t.Fatal("a second opener of a locked file got a store")
	}
	if !errors.Is(err, bolt.ErrTimeout) {
		t.Errorf("second opener: %v, want a timeout", err)
	}
	if aside := corruptAside(t, path); len(aside) != 0 {
		t.Fatalf("a locked file was moved aside: %v", aside)
	}
	// The holder is untouched and still works.
	sameCatalog(t, first, c)
	if err := first.ApplyCatalog(catalogAt(2), demo.Region); err != nil {
		t.Fatal(err)
	}
	if s := reopen(t, first); s.Version() != 2 {
		t.Fatalf("version %d after reopen, want 2", s.Version())
	}
}

func TestOpenMissingDirectoryFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "catalog.db")
	if s, err := Open(path, quiet()); err == nil {
		s.Close()
		t.Fatal("opened a file in a missing directory")
	}
	if aside := corruptAside(t, path); len(aside) != 0 {
		t.Fatalf("moved aside: %v", aside)
	}
}
