package ota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bangfu/cabinet/internal/atomicfile"
	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Updater is the running firmware's side of an update: it keeps
// state.json (the device loop is its only writer once the launcher has
// exec'd) and downloads and installs bundles.
type Updater struct {
	DataDir string
	Keys    map[string]string // release keys by kid
	Running Running           // this process: its slot and version
	Client  *http.Client      // default: http.DefaultClient
	Now     func() time.Time

	mu sync.Mutex // one writer of state.json at a time
}

// New returns the Updater of the process running now (slot from
// BANGFU_SLOT, factory when unset).
func New(dataDir string, keys map[string]string, version string) *Updater {
	slot := os.Getenv(SlotEnv)
	if slot == "" {
		slot = Factory
	}
	return &Updater{DataDir: dataDir, Keys: keys, Running: Running{Slot: slot, Version: version}}
}

func (u *Updater) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

// State reads state.json.
func (u *Updater) State() (State, error) { return Load(StatePath(u.DataDir)) }

func (u *Updater) update(f func(*State) error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	st, err := u.State()
	if err != nil {
		return err
	}
	if err := f(&st); err != nil {
		return err
	}
	return Save(StatePath(u.DataDir), st)
}

// Accept checks an update command's bundle (Check) and records it as the
// download in progress.
func (u *Updater) Accept(cmdID string, b msg.Bundle) error {
	return u.update(func(st *State) error {
		if err := Check(b, u.Keys, u.Running.Version, *st); err != nil {
			return err
		}
		if st.Download != nil && st.Download.Bundle.Version != b.Version {
			return fmt.Errorf("%w: version %s is being downloaded", ErrBadBundle, st.Download.Bundle.Version)
		}
		st.Download = &Download{CmdID: cmdID, Bundle: b}
		return nil
	})
}

// Fetch downloads d's bundle into the inactive slot, verifying its size
// and SHA-256 on the way; it returns the slot. Nothing is replaced unless
// every byte verified.
func (u *Updater) Fetch(ctx context.Context, d Download) (string, error) {
	slot := InactiveSlot(u.Running.Slot)
	path := SlotPath(u.DataDir, slot)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := Download1(ctx, u.Client, d.Bundle, path); err != nil {
		return "", err
	}
	failpoint.Hit(failpoint.OTAInstalled)
	return slot, nil
}

// Download1 fetches b.URL into path (mode 0755) by an atomic write,
// reading at most b.Size bytes and refusing any size or SHA-256 other than
// the signed ones.
func Download1(ctx context.Context, client *http.Client, b msg.Bundle, path string) error {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL, nil)
	if err != nil {
		return fmt.Errorf("ota: download: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ota: download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ota: download %s: HTTP %s", b.URL, resp.Status)
	}
	if resp.ContentLength > b.Size {
		return fmt.Errorf("ota: download: %d bytes offered, the bundle has %d", resp.ContentLength, b.Size)
	}
	return atomicfile.Write(path, 0o755, func(w io.Writer) error {
		h := sha256.New()
		mw := io.MultiWriter(w, h)
		half := b.Size / 2
		n, err := io.CopyN(mw, resp.Body, half)
		if err != nil {
			return fmt.Errorf("ota: download: %d of %d bytes: %w", n, b.Size, err)
		}
		failpoint.Hit(failpoint.OTADownloading)
		m, err := io.Copy(mw, io.LimitReader(resp.Body, b.Size-half+1))
		n += m
		switch {
		case err != nil:
			return fmt.Errorf("ota: download: %d of %d bytes: %w", n, b.Size, err)
		case n != b.Size:
			return fmt.Errorf("ota: download: %w: more or fewer bytes than the signed size %d (got %d)", ErrCorruptBundle, b.Size, n)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != b.SHA256 {
			return fmt.Errorf("ota: download: %w: sha256 %s, the signed one is %s", ErrCorruptBundle, got, b.SHA256)
		}
		return nil
	})
}

// ErrCorruptBundle is a download whose size or SHA-256 is not the signed one.
var ErrCorruptBundle = errors.New("corrupt bundle")

// Failed records a download that failed: nothing switched, the outcome
// reported.
func (u *Updater) Failed(d Download, reason string) error {
	return u.update(func(st *State) error {
		st.Download = nil
		st.Pending = append(st.Pending, Outcome{ID: outcomeID(u.now(), "failed"), Kind: OutcomeFailed, From: u.Running.Version,
			To: d.Bundle.Version, Reason: reason, CmdID: d.CmdID, At: u.now().UTC()})
		return nil
	})
}

// Switch writes the switch to the installed slot (one atomic write).
func (u *Updater) Switch(d Download, slot string, needBroker bool) error {
	return u.update(func(st *State) error {
		*st = Switch(*st, u.Running, slot, d, needBroker, u.now())
		return nil
	})
}

// OnTrial returns the trial this process is, or nil.
func (u *Updater) OnTrial() *Trial {
	st, err := u.State()
	if err != nil || st.Trial == nil || st.Trial.Slot != u.Running.Slot || st.Trial.Version != u.Running.Version {
		return nil
	}
	return st.Trial
}

// Commit commits the trial this process is (one atomic write).
func (u *Updater) Commit() error {
	return u.update(func(st *State) error {
		*st = Commit(*st, u.now())
		return nil
	})
}

// RollBack gives up on the trial this process is (one atomic write); the
// launcher runs the previous version at the next start.
func (u *Updater) RollBack(reason string) error {
	return u.update(func(st *State) error {
		*st = Rollback(*st, reason, "", func(slot string) error { return SlotUsable(u.DataDir, slot) }, u.now())
		return nil
	})
}

// Reported drops the outcomes with these ids (they are in the outbox).
func (u *Updater) Reported(ids ...string) error {
	drop := map[string]bool{}
	for _, id := range ids {
		drop[id] = true
	}
	return u.update(func(st *State) error {
		var keep []Outcome
		for _, o := range st.Pending {
			if !drop[o.ID] {
				keep = append(keep, o)
			}
		}
		st.Pending = keep
		return nil
	})
}

// SlotUsable reports whether slot a or b holds an executable binary.
func SlotUsable(dataDir, slot string) error {
	if slot == Factory {
		return nil
	}
	fi, err := os.Stat(SlotPath(dataDir, slot))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 == 0 {
		return fmt.Errorf("%s is not an executable file", SlotPath(dataDir, slot))
	}
	return nil
}
