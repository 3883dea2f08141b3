package cabsim

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the simulation starts — firmware loops, links, drains,
// virtual hardware, platform, broker — must be gone once Close returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
