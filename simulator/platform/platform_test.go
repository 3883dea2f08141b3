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

// An ack names its cabinet once the cabinet's firmware is known to decode
// cabinet_id (from its state or heartbeats); before that, or for older
// firmware, it is the plain v1 ack.
func TestAckBoundWhenFirmwareKnowsIt(t *testing.T) {
	p, err := New(Opts{Broker: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if a := p.ack("C-1", 3); a.CabinetID != "" || a.SalesUptoSeq != 3 {
		t.Errorf("firmware unknown: %+v, want a plain ack", a)
	}
	p.heartbeat("C-1", msg.Heartbeat{FW: "0.1.0", At: msg.At(time.Now())})
	if a := p.ack("C-1", 3); a.CabinetID != "" {
		t.Errorf("fw 0.1.0: %+v, want a plain ack", a)
	}
	p.heartbeat("C-1", msg.Heartbeat{FW: msg.AckCabinetIDSince, At: msg.At(time.Now().Add(time.Second)), Counters: msg.Counters{LastSeq: 1}})
	if a := p.ack("C-1", 3); a.CabinetID != "C-1" {
		t.Errorf("fw %s: %+v, want cabinet_id C-1", msg.AckCabinetIDSince, a)
	}
}
