package cabsim

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// cabinetBin is the device binary the process-mode tests start, built
// once for the whole package.
var cabinetBin string

// Every goroutine the simulation starts — firmware loops, links, drains,
// virtual hardware, hardware sockets, network relays, process
// supervisors, platform, broker — must be gone once Close returns.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cabsim-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	cabinetBin, err = BuildCabinet(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		if otaBuilds.dir != "" {
			os.RemoveAll(otaBuilds.dir) // ota_test.go's releases
		}
		os.Exit(code)
	}))
}
