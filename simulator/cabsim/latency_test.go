package cabsim

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// BenchmarkPurchaseLatency measures, in the simulator at its default 10
// samples/s, the time from the door closing to the platform holding the
// sale, and from the unlock reaching the cabinet to the lock energised
// (bolt retracted). Each run makes 16 purchases and reports percentiles.
func BenchmarkPurchaseLatency(b *testing.B) {
	const purchases = 16 // within the demo stock
	for b.Loop() {
		s := startSim(b, Options{Seed: 21})
		id := s.Cabinets()[0].ID
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r := &runner{s: s, id: id, out: io.Discard}
		var closeToSale []time.Duration
		for i := range purchases {
			if err := r.waitReady(ctx, 20*time.Second); err != nil {
				b.Fatal(err)
			}
			if _, reply, err := s.Scan(ctx, id, msg.Buyer{Ref: "bench", Kind: msg.BuyerPerson}, 0, 0); err != nil || !reply.OK {
				b.Fatalf("scan: %v %+v", err, reply)
			}
			must(b, s.Door(id, 1, "open", false))
			time.Sleep(300 * time.Millisecond)
			must(b, s.Take(id, 1+i%2, []string{"NM-0003", "QH-0202"}[i%2], 1))
			time.Sleep(300 * time.Millisecond)
			closed := time.Now()
			must(b, s.Door(id, 1, "close", false))
			got, err := s.Platform.WaitSales(ctx, id, i+1)
			if err != nil {
				b.Fatal(err)
			}
			closeToSale = append(closeToSale, got[i].ReceivedAt.Sub(closed))
		}
		cancel()
		report(b, "close_to_sale", closeToSale)
		report(b, "unlock_to_energised", s.Cabinets()[0].UnlockLatencies())
		report(b, "unlock_to_retracted", s.Cabinets()[0].RetractLatencies())
	}
}

func report(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		b.Fatalf("%s: no samples", name)
	}
	slices.Sort(d)
	pct := func(p float64) float64 {
		i := int(p*float64(len(d)-1) + 0.5)
		return float64(d[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), name+"_p50_ms")
	b.ReportMetric(pct(0.99), name+"_p99_ms")
}
