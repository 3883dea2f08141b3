package ledger

import (
	"fmt"
	"maps"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/telemetry/msg"
)

var kTrust = []byte("trust")

// Trust is what the cabinet has learnt to trust at run time and must not
// forget across a restart, a re-flash of the config or a lost catalog file:
// platform keys added and retired by signed commands, the highest catalog
// version ever accepted, and the newest issued_at of any accepted command.
type Trust struct {
	// AddedKeys are platform keys (kid → base64url) added by `config`.
	AddedKeys map[string]string `json:"added_keys,omitempty"`
	// Retired are kids refused from the time given on, whatever the config
	// file still lists.
	Retired map[string]time.Time `json:"retired,omitempty"`
	// CatalogHigh is the highest catalog version accepted; it is raised
	// before a catalog is applied, so no restart can roll the catalog back.
	CatalogHigh int64 `json:"catalog_high"`
	// NewestIssued is the newest issued_at of an accepted command: a lower
	// bound on the true time, and the reference for refusing old commands.
	NewestIssued time.Time `json:"newest_issued"`
}

// Keys returns the platform keys to trust: base (the config file's) plus
// the added ones, less every retired kid. The result is sorted by nothing;
// it is a fresh map.
func (t Trust) Keys(base map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, t.AddedKeys)
	for kid := range t.Retired {
		delete(out, kid)
	}
	return out
}

// RetiredKids lists the retired kids in order.
func (t Trust) RetiredKids() []string {
	out := make([]string, 0, len(t.Retired))
	for k := range t.Retired {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func getTrust(tx *bolt.Tx) (Trust, error) {
	var t Trust
	_, err := getJSON(tx.Bucket(bMeta), kTrust, &t)
	return t, err
}

// Trust returns the persisted trust state (zero on a new ledger).
func (l *Ledger) Trust() (Trust, error) {
	var t Trust
	err := l.db.View(func(tx *bolt.Tx) (err error) {
		t, err = getTrust(tx)
		return err
	})
	return t, err
}

// UpdateTrust changes the trust state with f, atomically with recording cmd
// in the replay cache and queueing items (the command's reply). f may
// refuse by returning an error; then nothing changes.
func (l *Ledger) UpdateTrust(f func(*Trust) error, cmd *msg.Command, items ...Item) (Trust, error) {
	var t Trust
	err := l.update(func(tx *bolt.Tx) error {
		var err error
		if t, err = getTrust(tx); err != nil {
			return err
		}
		if err := f(&t); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bMeta), kTrust, t); err != nil {
			return err
		}
		return accept(tx, cmd, items)
	})
	if err != nil {
		return Trust{}, err
	}
	if len(items) > 0 {
		l.Outbox.Notify()
	}
	return t, nil
}

// RaiseCatalogHigh records v as the highest catalog version accepted. It
// refuses a version below the recorded one.
func (l *Ledger) RaiseCatalogHigh(v int64) error {
	_, err := l.UpdateTrust(func(t *Trust) error {
		if v < t.CatalogHigh {
			return fmt.Errorf("ledger: catalog version %d below the highest accepted %d", v, t.CatalogHigh)
		}
		t.CatalogHigh = v
		return nil
	}, nil)
	return err
}

// noteIssued raises NewestIssued to at, inside tx.
func noteIssued(tx *bolt.Tx, at time.Time) error {
	t, err := getTrust(tx)
	if err != nil {
		return err
	}
	if !at.After(t.NewestIssued) {
		return nil
	}
	t.NewestIssued = at.UTC()
	return putJSON(tx.Bucket(bMeta), kTrust, t)
}
