package platform

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// Review decisions.
const (
	// DecisionAccept charges the flagged sale as the cabinet charged it.
	DecisionAccept = "accept"
	// DecisionRecharge charges another basket instead: one of the sale's
	// alternatives.
	DecisionRecharge = "recharge"
)

// Review is how a reviewer settled a flagged (ambiguous) sale.
type Review struct {
	Decision string    `json:"decision"`
	Reviewer string    `json:"reviewer"`
	At       time.Time `json:"at"` // UTC
	// Lines and TotalFen are what the sale is settled at.
	Lines    []msg.SaleLine `json:"lines"`
	TotalFen int64          `json:"total_fen"`
}

// ReviewRequest is the body of POST /api/platform/sales/{sale_id}/review.
type ReviewRequest struct {
	Decision string        `json:"decision"`
	Lines    []msg.AltLine `json:"lines,omitempty"`
	Reviewer string        `json:"reviewer"`
}

// Review errors, for the API's statuses: ErrBadReview is the request's
// fault (400), ErrUnknownSale 404, ErrNotReviewable 409.
var (
	ErrBadReview     = errors.New("platform: bad review")
	ErrUnknownSale   = errors.New("platform: no such sale")
	ErrNotReviewable = errors.New("platform: sale cannot be reviewed")
)

// Flagged says whether a sale awaits review: an ambiguous sale nobody has
// settled yet.
func (r SaleRecord) Flagged() bool { return r.Sale.Status == msg.SaleAmbiguous && r.Review == nil }

// Settled returns what the sale is charged at: the review's basket when a
// reviewer settled it, else the cabinet's.
func (r SaleRecord) Settled() ([]msg.SaleLine, int64) {
	if r.Review != nil {
		return r.Review.Lines, r.Review.TotalFen
	}
	return r.Sale.Lines, r.Sale.TotalFen
}

// ReviewSale settles a flagged sale. Accept keeps the cabinet's basket;
// recharge charges another one, which must be one of the sale's
// alternatives (the baskets the weights allow; lines compared as a
// multiset of shelf, SKU and quantity), priced at the sale's own catalog
// prices: a SKU's price and compliance fields come from the sale's lines,
// or else from the platform's catalog if it is the version the sale was
// priced with, and the lines must add up to the alternative's total_fen.
// Anything refused changes nothing. The review is written to the books
// before it counts.
func (p *Platform) ReviewSale(saleID string, req ReviewRequest) (SaleRecord, error) {
	if req.Reviewer == "" || !msg.ValidText(req.Reviewer, msg.MaxIDBytes) {
		return SaleRecord{}, fmt.Errorf("%w: \"reviewer\" must name who reviews (1 to %d bytes of printable text)", ErrBadReview, msg.MaxIDBytes)
	}
	switch req.Decision {
	case DecisionAccept:
		if req.Lines != nil {
			return SaleRecord{}, fmt.Errorf("%w: \"lines\" go with decision %q only", ErrBadReview, DecisionRecharge)
		}
	case DecisionRecharge:
		if req.Lines == nil {
			return SaleRecord{}, fmt.Errorf("%w: decision %q needs \"lines\", the basket to charge ([] for nothing)", ErrBadReview, DecisionRecharge)
		}
		for i, l := range req.Lines {
			if l.Shelf < 1 || l.SKU == "" || l.Qty < 1 {
				return SaleRecord{}, fmt.Errorf("%w: lines[%d]: want shelf ≥ 1, a sku and qty ≥ 1", ErrBadReview, i)
			}
		}
	default:
		return SaleRecord{}, fmt.Errorf("%w: decision %q: want %q or %q", ErrBadReview, req.Decision, DecisionAccept, DecisionRecharge)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.saleIDs[saleID]
	if !ok {
		return SaleRecord{}, fmt.Errorf("%w: %q", ErrUnknownSale, saleID)
	}
	rec := p.sales[i]
	switch {
	case rec.Review != nil:
		return SaleRecord{}, fmt.Errorf("%w: sale %q was already reviewed (%s by %s at %s)", ErrNotReviewable, saleID,
			rec.Review.Decision, rec.Review.Reviewer, rec.Review.At.Format(time.RFC3339))
	case rec.Sale.Status != msg.SaleAmbiguous:
		return SaleRecord{}, fmt.Errorf("%w: sale %q is %s, not flagged for review", ErrNotReviewable, saleID, rec.Sale.Status)
	}
	rv := Review{Decision: req.Decision, Reviewer: req.Reviewer, At: p.o.Now().UTC().Truncate(time.Millisecond)}
	if req.Decision == DecisionAccept {
		rv.Lines, rv.TotalFen = slices.Clone(rec.Sale.Lines), rec.Sale.TotalFen
	} else {
		lines, total, err := p.priceAlternativeLocked(rec.Sale, req.Lines)
		if err != nil {
			return SaleRecord{}, err
		}
		rv.Lines, rv.TotalFen = lines, total
	}
	if rv.Lines == nil {
		rv.Lines = []msg.SaleLine{}
	}
	rec.Review = &rv
	if p.books != nil {
		if err := p.books.putSale(i+1, rec, false); err != nil {
			return SaleRecord{}, fmt.Errorf("platform: review not kept: %w", err)
		}
	}
	p.sales[i] = rec
	p.notify()
	return rec, nil
}

type basketKey struct {
	shelf int
	sku   string
}

func basketOf(lines []msg.AltLine) map[basketKey]int {
	m := map[basketKey]int{}
	for _, l := range lines {
		m[basketKey{l.Shelf, l.SKU}] += l.Qty
	}
	return m
}

// priceAlternativeLocked finds the alternative whose basket is want and
// prices it (see ReviewSale).
func (p *Platform) priceAlternativeLocked(s msg.Sale, want []msg.AltLine) ([]msg.SaleLine, int64, error) {
	basket := basketOf(want)
	var alt *msg.SaleAlternative
	for i := range s.Alternatives {
		if maps.Equal(basketOf(s.Alternatives[i].Lines), basket) {
			alt = &s.Alternatives[i]
			break
		}
	}
	if alt == nil {
		return nil, 0, fmt.Errorf("%w: sale %q: that basket is not one of the sale's %d alternatives", ErrNotReviewable, s.SaleID, len(s.Alternatives))
	}
	// Line templates: the sale's own lines, then the catalog it was priced with.
	tmpl := map[string]msg.SaleLine{}
	if p.catalog != nil && p.catalog.Version == s.CatalogVersion {
		for _, pr := range p.catalog.Products {
			tmpl[pr.SKU] = msg.SaleLine{SKU: pr.SKU, CertNo: pr.CertNo, Name: pr.Name, SupplierID: pr.SupplierID,
				Supplier: pr.Supplier, OriginCode: pr.OriginCode, UnitPriceFen: pr.PriceFen}
		}
	}
	for _, l := range s.Lines {
		tmpl[l.SKU] = l
	}
	keys := slices.SortedFunc(maps.Keys(basket), func(a, b basketKey) int {
		if a.shelf != b.shelf {
			return a.shelf - b.shelf
		}
		if a.sku < b.sku {
			return -1
		}
		if a.sku > b.sku {
			return 1
		}
		return 0
	})
	lines := []msg.SaleLine{}
	var total int64
	for _, k := range keys {
		t, ok := tmpl[k.sku]
		if !ok {
			return nil, 0, fmt.Errorf("%w: sale %q: no price for %s in catalog version %d", ErrNotReviewable, s.SaleID, k.sku, s.CatalogVersion)
		}
		l := t
		l.Shelf, l.Qty = k.shelf, basket[k]
		l.AmountFen = int64(l.Qty) * l.UnitPriceFen
		total += l.AmountFen
		lines = append(lines, l)
	}
	if total != alt.TotalFen {
		return nil, 0, fmt.Errorf("%w: sale %q: the basket prices at %d fen, the cabinet's alternative at %d fen", ErrNotReviewable, s.SaleID, total, alt.TotalFen)
	}
	return lines, total, nil
}
