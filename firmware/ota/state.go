// Package ota is the cabinet's signed over-the-air update with A/B
// rollback (docs/updates.md): the state file, the launcher's decision, the
// bundle's signature check, its download and its installation.
//
// It may touch only <data_dir>/ota/: the slots a/cabinet and b/cabinet and
// state.json, each replaced by an atomic write (internal/atomicfile). It
// reads the bundle's URL over HTTP(S) and /proc/sys/kernel/random/boot_id.
// It never touches the ledger, the hardware or the link: the firmware
// package reports what it returns.
package ota

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bangfu/cabinet/internal/atomicfile"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Slot names. Factory is the package-installed binary (the first process
// the service manager starts); A and B live under <data_dir>/ota/.
const (
	Factory = "factory"
	A       = "a"
	B       = "b"
)

// Outcome kinds.
const (
	OutcomeUpdated    = "updated"     // the new version proved itself and is committed
	OutcomeRolledBack = "rolled_back" // the previous version is back
	OutcomeFailed     = "failed"      // a download or install failed; nothing switched
)

// Running is a version in a slot.
type Running struct {
	Slot    string `json:"slot"`
	Version string `json:"version"`
}

// Trial is a version switched to but not yet committed.
type Trial struct {
	Slot       string `json:"slot"`
	Version    string `json:"version"`
	MinVersion string `json:"min_version,omitempty"`
	// NeedBroker: the broker was connected just before the switch, so
	// the new version must connect too to count as healthy.
	NeedBroker bool   `json:"need_broker"`
	CmdID      string `json:"cmd_id,omitempty"`
	// Boot is the boot id of the recorded starts, Starts how many starts
	// of the trial version were recorded in it. Starts of an earlier boot
	// (a power cut) are forgotten, never counted.
	Boot   string `json:"boot,omitempty"`
	Starts int    `json:"starts"`
	// SwitchedAt is when the switch was written (wall clock, for people).
	SwitchedAt time.Time `json:"switched_at"`
}

// Outcome is a result to report once through the durable outbox; ID is
// the alarm id it goes out under, so a copy repeated after a power cut
// can be deduplicated.
type Outcome struct {
	ID     string    `json:"id"`
	Kind   string    `json:"kind"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
	Reason string    `json:"reason,omitempty"`
	CmdID  string    `json:"cmd_id,omitempty"`
	At     time.Time `json:"at"`
}

// Download is an accepted update not yet switched to: resumed (downloaded
// again) after a restart.
type Download struct {
	CmdID  string     `json:"cmd_id"`
	Bundle msg.Bundle `json:"bundle"`
}

// State is state.json.
type State struct {
	Current  Running   `json:"current"`
	Previous *Running  `json:"previous,omitempty"`
	Trial    *Trial    `json:"trial,omitempty"`
	Floor    string    `json:"floor,omitempty"` // the least version an update may bring
	Pending  []Outcome `json:"pending,omitempty"`
	Download *Download `json:"download,omitempty"`
}

// ErrCorrupt wraps a state.json that cannot be read as one.
var ErrCorrupt = errors.New("ota: state.json unreadable")

// Dir is the OTA directory under a data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, "ota") }

// StatePath is state.json under a data directory.
func StatePath(dataDir string) string { return filepath.Join(Dir(dataDir), "state.json") }

// SlotPath is the binary of slot a or b.
func SlotPath(dataDir, slot string) string { return filepath.Join(Dir(dataDir), slot, "cabinet") }

// Load reads state.json. A missing file is the zero State (factory, never
// updated) and ok; a torn or garbage one is ErrCorrupt.
func Load(path string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var st State
	if err := msg.DecodeStrict(b, &st); err != nil {
		return State{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if err := st.check(); err != nil {
		return State{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return st, nil
}

func validSlot(s string) bool { return s == "" || s == Factory || s == A || s == B }

func (st State) check() error {
	if !validSlot(st.Current.Slot) {
		return fmt.Errorf("current slot %q", st.Current.Slot)
	}
	if p := st.Previous; p != nil && !validSlot(p.Slot) {
		return fmt.Errorf("previous slot %q", p.Slot)
	}
	if t := st.Trial; t != nil && t.Slot != A && t.Slot != B {
		return fmt.Errorf("trial slot %q", t.Slot)
	}
	return nil
}

// Save replaces state.json in one atomic write.
func Save(path string, st State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// SetAside renames an unreadable state.json out of the way (kept for a
// technician) and returns where it went.
func SetAside(path string, now time.Time) (string, error) {
	aside := path + ".bad-" + now.UTC().Format("20060102T150405")
	return aside, os.Rename(path, aside)
}

// BootID is the kernel's id of this boot: env BANGFU_BOOT_ID when set (the
// simulator sets one per power-on), else /proc/sys/kernel/random/boot_id.
func BootID() string {
	if b := os.Getenv(BootIDEnv); b != "" {
		return b
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// Environment the launcher and the simulator use.
const (
	BootIDEnv  = "BANGFU_BOOT_ID"      // overrides the kernel's boot id
	SlotEnv    = "BANGFU_SLOT"         // set on an exec'd slot binary: do not launch again
	WrapperEnv = "BANGFU_EXEC_WRAPPER" // a command (qemu-arm-static) slot binaries run through
)

// Newer reports whether version a is above b (msg.FWAtLeast order).
func Newer(a, b string) bool { return msg.FWAtLeast(a, b) && !msg.FWAtLeast(b, a) }

// ValidVersion reports whether v is a version FWAtLeast can order.
func ValidVersion(v string) bool { return msg.FWAtLeast(v, "0.0.0") }
