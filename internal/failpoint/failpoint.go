// Package failpoint lets tests cut the power at an exact point of the
// firmware's work. The device binary reads BANGFU_FAILPOINTS, a comma-separated
// list of names, once at start-up; when the code reaches a listed point the
// process kills itself with SIGKILL, exactly as a power cut would stop it:
// no deferred function, no bbolt close, no MQTT disconnect.
//
// failpoint owns only that switch. Production binaries carry the calls, but
// with the variable unset a Hit is one map lookup on an empty map.
package failpoint

import (
	"os"
	"strings"
	"sync"
	"syscall"
)

// Env is the environment variable naming the armed failpoints.
const Env = "BANGFU_FAILPOINTS"

// The points the firmware reports, in the order a purchase reaches them.
const (
	SessionSaved   = "session-saved"   // session and before-weights committed, lock not yet energised
	LockEnergised  = "lock-energised"  // the lock is open, "unlocked" not yet replied
	SaleCommitted  = "sale-committed"  // the sale is in the ledger and outbox, not yet published
	SalePublishing = "sale-publishing" // the sale is about to be handed to the MQTT client
	SalePublished  = "sale-published"  // the broker PUBACKed the sale; the platform's ack not yet applied

	// Firmware update steps (docs/updates.md), in order.
	OTADownloading = "ota-downloading" // half the bundle written to the slot's temporary file
	OTAInstalled   = "ota-installed"   // the bundle verified and renamed into its slot; no switch yet
	OTASwitched    = "ota-switched"    // the switch is written; the old version has not exited yet
	OTATrialStart  = "ota-trial-start" // the new version runs, not yet committed
	OTACommitted   = "ota-committed"   // the commit is written; its outcome not yet in the outbox
)

var (
	once  sync.Once
	armed map[string]bool
)

func load() {
	armed = map[string]bool{}
	for _, n := range strings.Split(os.Getenv(Env), ",") {
		if n = strings.TrimSpace(n); n != "" {
			armed[n] = true
		}
	}
}

// Armed reports whether the named point is armed.
func Armed(name string) bool {
	once.Do(load)
	return armed[name]
}

// Hit kills the process if the named point is armed.
func Hit(name string) {
	if !Armed(name) {
		return
	}
	// SIGKILL cannot be caught: nothing after this line runs.
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
