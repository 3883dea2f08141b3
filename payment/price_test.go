package payment

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// book is a PriceBook over a map, as the firmware's catalog cache would be.
type book map[string]msg.Product

func (b book) Product(sku string) (msg.Product, bool) { p, ok := b[sku]; return p, ok }

func product(sku string, price int64) msg.Product {
	return msg.Product{
		SKU: sku, CertNo: "CERT-" + sku, Name: "name " + sku,
		SupplierID: "SUP-" + sku, Supplier: "supplier " + sku,
		OriginCode: "150121", Origin: "土默特左旗",
		UnitWeightG: 500, WeightTolG: 6, PriceFen: price,
		ValidUntil: msg.At(t0.Add(30 * 24 * time.Hour)), Status: msg.StatusActive,
	}
}

func testBook() book {
	b := book{}
	for _, p := range []msg.Product{
		product("NM-0001", 2990), product("NM-0002", 1550), product("NM-0007", 890),
	} {
		b[p.SKU] = p
	}
	revoked := product("NM-0003", 1000)
	revoked.Status = msg.StatusRevoked
	b[revoked.SKU] = revoked
	expired := product("NM-0004", 1000)
	expired.ValidUntil = msg.At(t0.Add(-time.Hour))
	b[expired.SKU] = expired
	expiresNow := product("NM-0005", 1000)
	expiresNow.ValidUntil = msg.At(t0)
	b[expiresNow.SKU] = expiresNow
	free := product("NM-0006", 0)
	b[free.SKU] = free
	odd := product("NM-0008", 1000)
	odd.Status = "suspended"
	b[odd.SKU] = odd
	noDate := product("NM-0009", 1000)
	noDate.ValidUntil = msg.Time{}
	b[noDate.SKU] = noDate
	huge := product("NM-0010", math.MaxInt64/2)
	b[huge.SKU] = huge
	return b
}

func line(sku string, shelf, qty int, unit int64) msg.SaleLine {
	return msg.SaleLine{
		SKU: sku, CertNo: "CERT-" + sku, Name: "name " + sku,
		SupplierID: "SUP-" + sku, Supplier: "supplier " + sku, OriginCode: "150121",
		Shelf: shelf, Qty: qty, UnitPriceFen: unit, AmountFen: int64(qty) * unit,
	}
}

func TestPrice(t *testing.T) {
	for _, tc := range []struct {
		name      string
		items     []Item
		wantLines []msg.SaleLine
		wantTotal int64
	}{
		{"empty", nil, []msg.SaleLine{}, 0},
		{"one line with traceability",
			[]Item{{Shelf: 1, SKU: "NM-0001", Qty: 2}},
			[]msg.SaleLine{line("NM-0001", 1, 2, 2990)}, 5980},
		{"merge same shelf and sku",
			[]Item{{1, "NM-0001", 1}, {2, "NM-0002", 1}, {1, "NM-0001", 2}},
			[]msg.SaleLine{line("NM-0001", 1, 3, 2990), line("NM-0002", 2, 1, 1550)}, 3*2990 + 1550},
		{"same sku on two shelves stays two lines",
			[]Item{{2, "NM-0001", 1}, {1, "NM-0001", 1}},
			[]msg.SaleLine{line("NM-0001", 1, 1, 2990), line("NM-0001", 2, 1, 2990)}, 2 * 2990},
		{"sorted by shelf then sku",
			[]Item{{3, "NM-0002", 1}, {1, "NM-0007", 4}, {3, "NM-0001", 1}, {1, "NM-0002", 2}},
			[]msg.SaleLine{
				line("NM-0002", 1, 2, 1550), line("NM-0007", 1, 4, 890),
				line("NM-0001", 3, 1, 2990), line("NM-0002", 3, 1, 1550),
			}, 2*1550 + 4*890 + 2990 + 1550},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, total, err := Price(tc.items, testBook(), t0)
			if err != nil {
				t.Fatalf("Price: %v", err)
			}
			if !reflect.DeepEqual(lines, tc.wantLines) {
				t.Errorf("lines =\n%+v\nwant\n%+v", lines, tc.wantLines)
			}
			if total != tc.wantTotal {
				t.Errorf("total = %d, want %d", total, tc.wantTotal)
			}
			if lines == nil {
				t.Error("lines is nil; want an empty slice so JSON says []")
			}
		})
	}
}

func TestPriceRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		items      []Item
		wantErr    error
		wantSKU    string // for ErrNotSellable
		wantReason string
	}{
		{"unknown sku", []Item{{1, "NM-0001", 1}, {2, "NM-9999", 1}}, ErrNotSellable, "NM-9999", ReasonUnknown},
		{"empty sku", []Item{{1, "", 1}}, ErrNotSellable, "", ReasonUnknown},
		{"revoked", []Item{{1, "NM-0003", 1}}, ErrNotSellable, "NM-0003", ReasonRevoked},
		{"expired", []Item{{1, "NM-0004", 1}}, ErrNotSellable, "NM-0004", ReasonExpired},
		{"valid_until equals now", []Item{{1, "NM-0005", 1}}, ErrNotSellable, "NM-0005", ReasonExpired},
		{"no valid_until", []Item{{1, "NM-0009", 1}}, ErrNotSellable, "NM-0009", ReasonExpired},
		{"zero price", []Item{{1, "NM-0006", 1}}, ErrNotSellable, "NM-0006", ReasonNoPrice},
		{"unknown status", []Item{{1, "NM-0008", 1}}, ErrNotSellable, "NM-0008", `status "suspended"`},
		{"zero qty", []Item{{1, "NM-0001", 0}}, ErrBadItem, "", ""},
		{"negative qty", []Item{{1, "NM-0001", -2}}, ErrBadItem, "", ""},
		{"shelf zero", []Item{{0, "NM-0001", 1}}, ErrBadItem, "", ""},
		{"line overflow", []Item{{1, "NM-0010", 3}}, ErrOverflow, "", ""},
		{"total overflow", []Item{{1, "NM-0010", 2}, {2, "NM-0010", 1}}, ErrOverflow, "", ""},
		{"merged qty overflow", []Item{{1, "NM-0001", math.MaxInt}, {1, "NM-0001", 1}}, ErrOverflow, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, total, err := Price(tc.items, testBook(), t0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Price = %v, %d, %v; want %v", lines, total, err, tc.wantErr)
			}
			if lines != nil || total != 0 {
				t.Errorf("refused Price returned lines %v total %d", lines, total)
			}
			if tc.wantErr != ErrNotSellable {
				return
			}
			var ns *NotSellableError
			if !errors.As(err, &ns) {
				t.Fatalf("error %v is not a *NotSellableError", err)
			}
			if ns.SKU != tc.wantSKU || ns.Reason != tc.wantReason {
				t.Errorf("NotSellableError = %+v, want sku %q reason %q", ns, tc.wantSKU, tc.wantReason)
			}
			if want := fmt.Sprintf("%q", tc.wantSKU); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the sku %s", err, want)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		total, limit int64
		over         bool
	}{
		{"no limit", 1 << 40, 0, false},
		{"negative limit means none", 100, -1, false},
		{"under", 2990, 5000, false},
		{"equal", 5000, 5000, false},
		{"over", 5001, 5000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Limit(tc.total, tc.limit)
			if got := errors.Is(err, ErrOverLimit); got != tc.over || (err != nil && !tc.over) {
				t.Fatalf("Limit(%d, %d) = %v, want over=%v", tc.total, tc.limit, err, tc.over)
			}
		})
	}
}

func BenchmarkPrice(b *testing.B) {
	bk := testBook()
	items := []Item{
		{3, "NM-0002", 1}, {1, "NM-0007", 4}, {3, "NM-0001", 1}, {1, "NM-0002", 2},
		{2, "NM-0001", 2}, {1, "NM-0007", 1}, {4, "NM-0002", 3}, {2, "NM-0007", 1},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Price(items, bk, t0); err != nil {
			b.Fatal(err)
		}
	}
}
