package cabsim

import (
	"sync"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// Metrics records the firmware's timing hooks for benchmarks.
type Metrics struct {
	mu       sync.Mutex
	unlocks  []time.Duration // unlock received → lock energised
	retracts []time.Duration // unlock received → bolt reported retracted
	sales    []msg.Sale
}

func (m *Metrics) unlock(received, energised, retracted time.Time) {
	m.mu.Lock()
	m.unlocks = append(m.unlocks, energised.Sub(received))
	m.retracts = append(m.retracts, retracted.Sub(received))
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

// RetractLatencies returns unlock-to-bolt-retracted durations so far
// (the virtual lock takes LockReleaseTime, 150 ms by default).
func (c *Cabinet) RetractLatencies() []time.Duration {
	c.metrics.mu.Lock()
	defer c.metrics.mu.Unlock()
	return append([]time.Duration(nil), c.metrics.retracts...)
}
