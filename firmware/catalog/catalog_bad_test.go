package catalog

// Malformed catalogs and planograms as the device receives them (verified
// payload bytes): each is refused with a reason naming the problem, and
// the file and the memory hold byte for byte what they held, also after a
// reopen.

import (
	"bytes"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// heldStore is a store holding heldV of the demo catalog and planogram.
func heldStore(t *testing.T) *Store {
	t.Helper()
	s := openStore(t, filepath.Join(t.TempDir(), "catalog.db"))
	if err := s.ApplyCatalog(demoCatalog(heldV), demo.Region); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyPlanogram(demoPlanogram(heldV), cabinet, hardware); err != nil {
		t.Fatal(err)
	}
	return s
}

// refusedUnchanged runs apply on a held store and fails unless it is
// refused saying want (and wrapping sentinel, if set) with nothing changed.
func refusedUnchanged(t *testing.T, want string, sentinel error, apply func(s *Store) error) {
	t.Helper()
	s := heldStore(t)
	before := fileBytes(t, s)
	cat, _ := s.Catalog()
	plan, _ := s.Planogram()
	err := apply(s)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want it to say %q", err, want)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("err %v, want %v", err, sentinel)
	}
	unchanged(t, s, before, cat, plan)
	s = reopen(t, s)
	sameCatalog(t, s, cat)
	samePlanogram(t, s, &plan)
}

func TestMalformedCatalogRefused(t *testing.T) {
	good := mustJSON(demoCatalog(heldV + 1))
	edit := func(f func(c *msg.Catalog)) []byte {
		c := demoCatalog(heldV + 1)
		f(&c)
		return mustJSON(c)
	}
	oversize := editJSON(good, `"region":"150000"`, `"region":"150000","pad":"`+strings.Repeat(" ", msg.MaxPayloadBytes)+`"`)
	for _, tc := range []struct {
		name     string
		payload  []byte
		want     string
		sentinel error
	}{
		{"malformed JSON", good[:len(good)-3], "cut short", nil},
		{"not JSON", []byte(`version=6`), "invalid character", nil},
		{"trailing garbage", append(bytes.Clone(good), " {}"...), "trailing data", nil},
		{"trailing bracket", append(bytes.Clone(good), ']'), "trailing data", nil},
		{"oversize", oversize, "too large", msg.ErrTooLarge},
		{"unknown field, top", editJSON(good, `"version":6`, `"version":6,"hash":"x"`), `unknown field "hash"`, nil},
		{"unknown field, product", editJSON(good, `"status":"active"`, `"status":"active","promo":true`), `unknown field "promo"`, nil},
		{"field case variant", editJSON(good, `"region"`, `"Region"`), `unknown field "Region"`, nil},
		{"duplicate key, top", editJSON(good, `"version":6`, `"version":6,"version":60`), `duplicate key "version"`, nil},
		{"two price_fen keys", editJSON(good, `"price_fen":2680`, `"price_fen":2680,"price_fen":1`), `duplicate key "price_fen"`, nil},
		{"price_fen and PRICE_FEN", editJSON(good, `"price_fen":2680`, `"price_fen":2680,"PRICE_FEN":1`), `"PRICE_FEN"`, nil},
		{"negative price", edit(func(c *msg.Catalog) { c.Products[0].PriceFen = -2680 }), "price_fen -2680 out of range", ErrInvalid},
		{"zero price", edit(func(c *msg.Catalog) { c.Products[0].PriceFen = 0 }), "price_fen 0 out of range", ErrInvalid},
		{"huge price", edit(func(c *msg.Catalog) { c.Products[0].PriceFen = MaxPriceFen + 1 }), "out of range", ErrInvalid},
		{"max int64 price", edit(func(c *msg.Catalog) { c.Products[0].PriceFen = math.MaxInt64 }), "out of range", ErrInvalid},
		{"price over int64", editJSON(good, `"price_fen":2680`, `"price_fen":9223372036854775808`), "cannot unmarshal", nil},
		{"price with a fraction", editJSON(good, `"price_fen":2680`, `"price_fen":26.8`), "cannot unmarshal", nil},
		{"weight 1e400", editJSON(good, `"unit_weight_g":780`, `"unit_weight_g":1e400`), "cannot unmarshal", nil},
		{"weight negative", edit(func(c *msg.Catalog) { c.Products[0].UnitWeightG = -780 }), "unit_weight_g", ErrInvalid},
		{"duplicate sku", edit(func(c *msg.Catalog) { c.Products[2].SKU = c.Products[0].SKU }), "duplicate sku", ErrInvalid},
		{"same version", edit(func(c *msg.Catalog) { c.Version = heldV }), "not newer", ErrStale},
		{"older version", edit(func(c *msg.Catalog) { c.Version = 1 }), "not newer", ErrStale},
		{"negative version", edit(func(c *msg.Catalog) { c.Version = -1 }), "must be positive", ErrInvalid},
		{"another region", edit(func(c *msg.Catalog) { c.Region = "630000" }), `region "630000"`, ErrInvalid},
		{"region over-long", edit(func(c *msg.Catalog) { c.Region = strings.Repeat("1", msg.MaxIDBytes+1) }), "region: at most", ErrInvalid},
		{"empty sku", edit(func(c *msg.Catalog) { c.Products[0].SKU = "" }), "empty sku", ErrInvalid},
		{"empty name", edit(func(c *msg.Catalog) { c.Products[0].Name = "" }), "needs cert_no, name", ErrInvalid},
		{"empty status", edit(func(c *msg.Catalog) { c.Products[0].Status = "" }), `status ""`, ErrInvalid},
		{"sku over-long", edit(func(c *msg.Catalog) { c.Products[0].SKU = "NM-" + strings.Repeat("0", msg.MaxIDBytes) }), "sku: at most 128 bytes", ErrInvalid},
		{"cert_no over-long", edit(func(c *msg.Catalog) { c.Products[0].CertNo = strings.Repeat("F", msg.MaxIDBytes+1) }), "cert_no: at most", ErrInvalid},
		{"name over-long", edit(func(c *msg.Catalog) { c.Products[0].Name = strings.Repeat("面", 86) }), "name: at most 256 bytes", ErrInvalid},
		{"supplier over-long", edit(func(c *msg.Catalog) { c.Products[0].Supplier = strings.Repeat("x", msg.MaxTextBytes+1) }), "supplier: at most", ErrInvalid},
		{"origin over-long", edit(func(c *msg.Catalog) { c.Products[0].Origin = strings.Repeat("x", msg.MaxTextBytes+1) }), "origin: at most", ErrInvalid},
		{"NUL in sku", edit(func(c *msg.Catalog) { c.Products[0].SKU = "NM\x000001" }), "no control", ErrInvalid},
		{"line break in cert_no", edit(func(c *msg.Catalog) { c.Products[0].CertNo = "FP-1\nFP-2" }), "cert_no", ErrInvalid},
		{"bidi override in supplier_id", edit(func(c *msg.Catalog) { c.Products[0].SupplierID = "S-\u202e300" }), "supplier_id", ErrInvalid},
		{"tab in origin_code", edit(func(c *msg.Catalog) { c.Products[0].OriginCode = "150\t125" }), "origin_code", ErrInvalid},
		{"escape in name", edit(func(c *msg.Catalog) { c.Products[0].Name = "\x1b[31m莜面" }), "name", ErrInvalid},
		{"valid_until past year 9999", editJSON(good, `"valid_until":"2027-11-26T03:00:00.000Z"`, `"valid_until":"9999-12-31T23:59:59-23:59"`), "year 10000", nil},
		{"issued_at not a time", editJSON(good, `"issued_at":"2026-11-26T03:00:00.000Z"`, `"issued_at":"yesterday"`), "not RFC 3339", nil},
		{"issued_at null", editJSON(good, `"issued_at":"2026-11-26T03:00:00.000Z"`, `"issued_at":null`), "issued_at missing", ErrInvalid},
		{"products null", editJSON(good, `"products":[`, `"products":null,"x":[`), `unknown field "x"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedUnchanged(t, tc.want, tc.sentinel, func(s *Store) error { return applyCatalogJSON(s, tc.payload) })
		})
	}
}

// JSON cannot carry NaN or ±Inf, but a catalog built in Go can.
func TestNonFiniteWeightsRefused(t *testing.T) {
	for name, f := range map[string]func(p *msg.Product){
		"NaN weight":     func(p *msg.Product) { p.UnitWeightG = math.NaN() },
		"+Inf weight":    func(p *msg.Product) { p.UnitWeightG = math.Inf(1) },
		"-Inf weight":    func(p *msg.Product) { p.UnitWeightG = math.Inf(-1) },
		"NaN tolerance":  func(p *msg.Product) { p.WeightTolG = math.NaN() },
		"+Inf tolerance": func(p *msg.Product) { p.WeightTolG = math.Inf(1) },
		"-Inf tolerance": func(p *msg.Product) { p.WeightTolG = math.Inf(-1) },
	} {
		t.Run(name, func(t *testing.T) {
			refusedUnchanged(t, "products[0]", ErrInvalid, func(s *Store) error {
				c := demoCatalog(heldV + 1)
				f(&c.Products[0])
				return s.ApplyCatalog(c, demo.Region)
			})
		})
	}
}

func TestMalformedPlanogramRefused(t *testing.T) {
	good := mustJSON(demoPlanogram(heldV + 1))
	edit := func(f func(p *msg.Planogram)) []byte {
		p := demoPlanogram(heldV + 1)
		f(&p)
		return mustJSON(p)
	}
	for _, tc := range []struct {
		name     string
		payload  []byte
		want     string
		sentinel error
	}{
		{"malformed JSON", good[:10], "cut short", nil},
		{"trailing garbage", append(bytes.Clone(good), "\x00"...), "trailing data", nil},
		{"unknown field, top", editJSON(good, `"version":6`, `"version":6,"valid_from":0`), `unknown field "valid_from"`, nil},
		{"unknown field, shelf", editJSON(good, `"door":1`, `"door":1,"temp_c":4`), `unknown field "temp_c"`, nil},
		{"duplicate key, shelf", editJSON(good, `"door":1`, `"door":1,"door":2`), `duplicate key "door"`, nil},
		{"duplicate cabinet_id", editJSON(good, `"cabinet_id":"`+cabinet+`"`, `"cabinet_id":"NM-150102-0008","cabinet_id":"`+cabinet+`"`), `duplicate key "cabinet_id"`, nil},
		{"unknown SKU", edit(func(p *msg.Planogram) { p.Shelves[0].SKUs[0] = "XX-0001" }), `SKU "XX-0001" is not in catalog`, ErrInvalid},
		{"SKU with a control character", edit(func(p *msg.Planogram) { p.Shelves[0].SKUs[0] = "NM-0001\x00" }), "is not in catalog", ErrInvalid},
		{"shelf the cabinet lacks", edit(func(p *msg.Planogram) { p.Shelves[0].Shelf = 42 }), "no such shelf", ErrInvalid},
		{"shelf 0", edit(func(p *msg.Planogram) { p.Shelves[0].Shelf = 0 }), "no such shelf", ErrInvalid},
		{"wrong door", edit(func(p *msg.Planogram) { p.Shelves[0].Door = 2 }), "behind door 1", ErrInvalid},
		{"another cabinet", edit(func(p *msg.Planogram) { p.CabinetID = "NM-150102-0008" }), `planogram for "NM-150102-0008"`, ErrInvalid},
		{"same version", edit(func(p *msg.Planogram) { p.Version = heldV }), "hold 5", ErrStale},
		{"older version", edit(func(p *msg.Planogram) { p.Version = heldV - 1 }), "hold 5", ErrStale},
		{"too many SKUs", edit(func(p *msg.Planogram) {
			p.Shelves[0].SKUs = nil
			for _, prod := range demoCatalog(1).Products[:MaxSKUsShelf+1] {
				p.Shelves[0].SKUs = append(p.Shelves[0].SKUs, prod.SKU)
			}
		}), "at most 8", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedUnchanged(t, tc.want, tc.sentinel, func(s *Store) error {
				_, err := applyPlanogramJSON(s, tc.payload)
				return err
			})
		})
	}
}
