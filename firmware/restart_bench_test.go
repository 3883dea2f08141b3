package firmware

import (
	"testing"
	"time"
)

// BenchmarkRestartToReady measures a firmware restart on a cabinet whose
// ledger holds sales: close the files, open them again (the ledger is
// checked page by page), recover, and step until the cabinet would take a
// shopper (fresh settled readings on every shelf, the QR shown). The
// virtual scales keep running across the restart, as the load cells of a
// real cabinet do when only the firmware restarts; after a power cut the
// scales' own window (1 s at 10 samples/s) comes on top.
func BenchmarkRestartToReady(b *testing.B) {
	r := newRig(b)
	for range 200 {
		r.d.alarm("filler", "info", map[string]any{"pad": "x"})
	}
	b.ResetTimer()
	for range b.N {
		r.close()
		r.start()
		if err := r.d.recover(r.ctx); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			r.d.step(r.ctx)
			if _, err := r.d.beforeWeights(time.Now()); err == nil && r.d.shown.QR != "" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("not ready after 10 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
}
