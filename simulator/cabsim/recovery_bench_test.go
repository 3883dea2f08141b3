package cabsim

import (
	"testing"
	"time"
)

// BenchmarkPowerRestoreToReady measures a power cut's recovery with the
// real device binary: from `power restore` (the process starts) to the
// cabinet showing its QR code to shoppers again, idle. It includes the
// process start, opening and checking the ledger, the socket dial, the
// scales' first full window (1 s at 10 samples/s) and the first settled
// readings. Reported as restore_to_ready_ms; ns/op adds the cut.
func BenchmarkPowerRestoreToReady(b *testing.B) {
	s := startProcessSim(b, Options{Configure: cutConfig})
	id := CabinetID(0)
	h := newHarness(b, s, id, 10*time.Minute)
	h.waitReady()
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		h.power("cut")
		start := time.Now()
		h.power("restore")
		for {
			v, err := s.View(id)
			if err != nil {
				b.Fatal(err)
			}
			if v.Mode == "idle" && v.Display["qr"] != "" {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("not ready a minute after power came back (mode %q)", v.Mode)
			}
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "restore_to_ready_ms")
}
