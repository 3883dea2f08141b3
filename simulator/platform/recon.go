package platform

import (
	"maps"
	"slices"
	"time"
)

// Claimed is what a cabinet's newest heartbeat says of its sales.
type Claimed struct {
	Sales     uint64    `json:"sales"`
	LastSeq   uint64    `json:"last_seq"`
	AmountFen int64     `json:"amount_fen"`
	At        time.Time `json:"at"` // the heartbeat's time
}

// ReceivedCounts is what the platform holds of a cabinet's sales.
type ReceivedCounts struct {
	Sales         int    `json:"sales"`
	AmountFen     int64  `json:"amount_fen"` // the cabinet's totals, before review
	MaxSeq        uint64 `json:"max_seq"`
	ContiguousSeq uint64 `json:"contiguous_seq"` // every seq up to it is held
	// UptoClaimed counts only the sales the counters cover (seq ≤ the
	// claimed last_seq), the ones to compare with the claim.
	UptoClaimedSales     uint64 `json:"upto_claimed_sales"`
	UptoClaimedAmountFen int64  `json:"upto_claimed_amount_fen"`
	// SettledAmountFen is what the sales are charged at after review.
	SettledAmountFen int64 `json:"settled_amount_fen"`
}

// Reconciliation is one cabinet's books against its counters.
type Reconciliation struct {
	CabinetID string         `json:"cabinet_id"`
	Claimed   *Claimed       `json:"claimed"` // null before any heartbeat
	Received  ReceivedCounts `json:"received"`
	// MissingSales and MissingAmountFen are claimed minus received up to
	// the claimed last_seq: sales the cabinet has and the platform lacks.
	MissingSales     int64 `json:"missing_sales"`
	MissingAmountFen int64 `json:"missing_amount_fen"`
	// Gaps are the seqs not held from 1 to the larger of max_seq and the
	// claimed last_seq.
	Gaps []Gap `json:"gaps"`
	// AckedUptoSeq is the highest cumulative ack sent; Unacknowledged the
	// held sales above it.
	AckedUptoSeq   uint64   `json:"acked_upto_seq"`
	Unacknowledged []uint64 `json:"unacknowledged_seqs"`
	// AwaitingReview are the flagged sales no reviewer has settled.
	AwaitingReview []string `json:"awaiting_review"`
	// OK: no gaps and nothing missing against the counters.
	OK bool `json:"ok"`
}

// Reconcile compares one cabinet's held sales (in any order, one record
// per sale_id) with the counters it claims (nil for none) and the acks
// sent.
func Reconcile(cabinetID string, sales []SaleRecord, claimed *Claimed, ackedUpto uint64) Reconciliation {
	r := Reconciliation{CabinetID: cabinetID, Claimed: claimed, AckedUptoSeq: ackedUpto,
		Gaps: []Gap{}, Unacknowledged: []uint64{}, AwaitingReview: []string{}}
	seqs := map[uint64]bool{}
	for _, rec := range sales {
		s := rec.Sale
		seqs[s.Seq] = true
		r.Received.Sales++
		r.Received.AmountFen += s.TotalFen
		_, settled := rec.Settled()
		r.Received.SettledAmountFen += settled
		r.Received.MaxSeq = max(r.Received.MaxSeq, s.Seq)
		if claimed != nil && s.Seq <= claimed.LastSeq {
			r.Received.UptoClaimedSales++
			r.Received.UptoClaimedAmountFen += s.TotalFen
		}
		if s.Seq > ackedUpto {
			r.Unacknowledged = append(r.Unacknowledged, s.Seq)
		}
		if rec.Flagged() {
			r.AwaitingReview = append(r.AwaitingReview, s.SaleID)
		}
	}
	slices.Sort(r.Unacknowledged)
	for seqs[r.Received.ContiguousSeq+1] {
		r.Received.ContiguousSeq++
	}
	end := r.Received.MaxSeq
	if claimed != nil {
		end = max(end, claimed.LastSeq)
		r.MissingSales = int64(claimed.Sales) - int64(r.Received.UptoClaimedSales)
		r.MissingAmountFen = claimed.AmountFen - r.Received.UptoClaimedAmountFen
	}
	var g *Gap
	for seq := r.Received.ContiguousSeq + 1; seq <= end; seq++ {
		switch {
		case !seqs[seq] && g == nil:
			g = &Gap{CabinetID: cabinetID, FromSeq: seq, ToSeq: seq}
		case !seqs[seq]:
			g.ToSeq = seq
		case g != nil:
			r.Gaps = append(r.Gaps, *g)
			g = nil
		}
	}
	if g != nil {
		r.Gaps = append(r.Gaps, *g)
	}
	r.OK = len(r.Gaps) == 0 && r.MissingSales == 0 && r.MissingAmountFen == 0
	return r
}

// Reconciliation reconciles every cabinet the platform knows, in id order.
func (p *Platform) Reconciliation() []Reconciliation {
	p.mu.Lock()
	defer p.mu.Unlock()
	by := map[string][]SaleRecord{}
	for _, rec := range p.sales {
		by[rec.Sale.CabinetID] = append(by[rec.Sale.CabinetID], rec)
	}
	out := []Reconciliation{}
	for _, id := range slices.Sorted(maps.Keys(p.cabinets)) {
		cb := p.cabinets[id]
		var claimed *Claimed
		if c := cb.books.Counters; c != nil {
			claimed = &Claimed{Sales: c.Sales, LastSeq: c.LastSeq, AmountFen: c.AmountFen, At: cb.books.CountersAt}
		}
		out = append(out, Reconcile(id, by[id], claimed, cb.books.AckedUpto))
	}
	return out
}

// SalesRecords returns every held sale record, reviews included, in
// arrival order.
func (p *Platform) SalesRecords() []SaleRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sales)
}
