package platform

import (
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// TestIngestDeduplicatesAndFindsGaps checks the platform's bookkeeping:
// de-duplication by sale_id, the cumulative ack it would send, and the
// sequence gaps it reports.
func TestIngestDeduplicatesAndFindsGaps(t *testing.T) {
	p, err := New(Opts{Broker: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	sale := func(cab string, seq uint64) msg.Sale {
		return msg.Sale{SaleID: cab + "-" + string(rune('A'+seq)), CabinetID: cab, Seq: seq}
	}
	now := time.Now()
	steps := []struct {
		s        msg.Sale
		wantUpto uint64
	}{
		{sale("C-1", 1), 1},
		{sale("C-1", 1), 1}, // a redelivery
		{sale("C-1", 3), 1},
		{sale("C-1", 6), 1},
		{sale("C-2", 1), 1},
		{sale("C-1", 2), 3},
	}
	for i, st := range steps {
		if got := p.ingest(st.s, now); got != st.wantUpto {
			t.Fatalf("step %d: ack upto %d, want %d", i, got, st.wantUpto)
		}
	}
	recs, gaps := p.Sales()
	if len(recs) != 5 {
		t.Fatalf("%d sales held, want 5 (one redelivery dropped)", len(recs))
	}
	if recs[0].Copies != 2 {
		t.Fatalf("redelivery not counted: %+v", recs[0])
	}
	want := []Gap{{CabinetID: "C-1", FromSeq: 4, ToSeq: 5}}
	if len(gaps) != 1 || gaps[0] != want[0] {
		t.Fatalf("gaps %+v, want %+v", gaps, want)
	}
}
