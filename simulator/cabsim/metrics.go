package cabsim

import (
	"sync"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// Metrics records the firmware's timing hooks for benchmarks.
type Metrics struct {
	mu      sync.Mutex
	unlocks []time.Duration // unlock received → lock energised
	sales   []msg.Sale
}

func (m *Metrics) unlock(received, energised time.Time) {
	m.mu.Lock()
	m.unlocks = append(m.unlocks, energised.Sub(received))
	m.mu.Unlock()
}

func (m *Metrics) sale(s msg.Sale) {
	m.mu.Lock()
	m.sales = append(m.sales, s)
	m.mu.Unlock()
}

// UnlockLatencies returns unlock-to-energised durations so far.
func (c *Cabinet) UnlockLatencies() []time.Duration {
	c.metrics.mu.Lock()
	defer c.metrics.mu.Unlock()
	return append([]time.Duration(nil), c.metrics.unlocks...)
}
