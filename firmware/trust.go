package firmware

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/catalog"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// Settings of a `config` command that rotate the platform's keys. They are
// not config-file settings: the keys they add and retire live in the
// ledger (ledger.Trust), so a retired key stays retired even though the
// config file on the SD card still lists it.
const (
	settingAddKeys    = "platform_keys" // {"kid": "base64url Ed25519 public key", …}
	settingRetireKids = "retire_kids"   // ["kid", …]
)

// TimeFloor is a moment known to have passed when this firmware was
// built. A board without a real-time clock boots at 1970 or at whatever a
// saved clock said; a clock behind this is certainly wrong.
var TimeFloor = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// keyRing builds the platform keys to trust from the config file and the
// ledger's trust state.
func keyRing(base map[string]string, t ledger.Trust) (msg.KeyRing, error) {
	keys := msg.KeyRing{}
	for kid, k := range t.Keys(base) {
		pub, err := msg.DecodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("firmware: platform key %q: %w", kid, err)
		}
		keys[kid] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("firmware: no platform key left to trust (retired: %s)", strings.Join(t.RetiredKids(), ", "))
	}
	return keys, nil
}

// splitKeySettings takes the key-rotation settings out of a config
// command's settings. ok is false when there were none.
func splitKeySettings(in map[string]json.RawMessage) (rest map[string]json.RawMessage, add map[string]string, retire []string, ok bool, err error) {
	rest = maps.Clone(in)
	if raw, found := rest[settingAddKeys]; found {
		delete(rest, settingAddKeys)
		ok = true
		if err := msg.DecodeStrict(raw, &add); err != nil {
			return nil, nil, nil, false, fmt.Errorf("%s: %w", settingAddKeys, err)
		}
	}
	if raw, found := rest[settingRetireKids]; found {
		delete(rest, settingRetireKids)
		ok = true
		if err := msg.DecodeStrict(raw, &retire); err != nil {
			return nil, nil, nil, false, fmt.Errorf("%s: %w", settingRetireKids, err)
		}
	}
	return rest, add, retire, ok, nil
}

// rotateKeys applies a `config` command's key settings (and nothing else:
// a command mixing keys and other settings is refused, so that a refusal
// of either half cannot leave the other applied).
func (d *Device) rotateKeys(cmd msg.Command, add map[string]string, retire []string, now time.Time) {
	var nextKeys msg.KeyRing
	change := func(t *ledger.Trust) error {
		kids := make([]string, 0, len(add))
		for kid := range add {
			kids = append(kids, kid)
		}
		sort.Strings(kids)
		current := t.Keys(d.cfg.PlatformKeys)
		for _, kid := range kids {
			if kid == "" || !msg.ValidText(kid, 64) {
				return fmt.Errorf("kid %.80q: 1 to 64 bytes of printable text", kid)
			}
			if _, gone := t.Retired[kid]; gone {
				return fmt.Errorf("kid %q was retired and cannot come back; use a new kid", kid)
			}
			if _, err := msg.DecodeKey(add[kid]); err != nil {
				return fmt.Errorf("kid %q: %w", kid, err)
			}
			if old, have := current[kid]; have && old != add[kid] {
				return fmt.Errorf("kid %q is already trusted with another key; rotate to a new kid", kid)
			}
		}
		for _, kid := range kids {
			if t.AddedKeys == nil {
				t.AddedKeys = map[string]string{}
			}
			t.AddedKeys[kid] = add[kid]
		}
		for _, kid := range retire {
			if kid == "" {
				return errors.New("empty kid in retire_kids")
			}
			if t.Retired == nil {
				t.Retired = map[string]time.Time{}
			}
			if _, gone := t.Retired[kid]; !gone {
				t.Retired[kid] = now.UTC()
			}
			delete(t.AddedKeys, kid)
		}
		keys, err := keyRing(d.cfg.PlatformKeys, *t)
		if err != nil {
			return errors.New("that would leave no platform key trusted")
		}
		nextKeys = keys
		return nil
	}
	kids := func() string {
		out := make([]string, 0, len(nextKeys))
		for k := range nextKeys {
			out = append(out, k)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	// The ok reply commits with the change. Its detail is known only
	// once change has run inside the transaction, so it is marshalled
	// lazily (UpdateTrust queues items after running change).
	var detail string
	if _, err := d.ledger.UpdateTrust(func(t *ledger.Trust) error {
		if err := change(t); err != nil {
			return err
		}
		detail = "trusted kids: " + kids()
		return nil
	}, &cmd, ledger.Item{Kind: outbox.KindReply, Topic: d.topics.Reply(), Body: lazyReply{d: d, id: cmd.ID, detail: &detail}}); err != nil {
		d.reply(nil, cmd.ID, msg.ErrBadRequest, "keys: "+strings.TrimPrefix(err.Error(), "ledger: "), nil)
		return
	}
	d.keys = nextKeys
	d.log.Info("platform keys changed", "cmd", cmd.ID, "trusted", kids(), "retired", strings.Join(retire, ","))
}

// lazyReply marshals to an ok reply whose detail is known only once the
// transaction that queues it has run its checks.
type lazyReply struct {
	d      *Device
	id     string
	detail *string
}

func (r lazyReply) MarshalJSON() ([]byte, error) {
	return json.Marshal(msg.Reply{CmdID: r.id, OK: true, Detail: *r.detail, At: msg.At(r.d.now())})
}

// Clock trust.

// commandGuard is what the device loop checks commands against (Run
// goroutine only).
type commandGuard struct {
	trust        ledger.Trust // as last read from the ledger
	newestIssued time.Time    // newest issued_at of an accepted command
	// ackBound: an ack naming this cabinet was taken; unbound ones are
	// refused since.
	ackBound  bool
	lastBadAt time.Time // when a refused message was last logged
}

// clockTrusted reports whether the local clock can judge time-bounded
// commands: it is not behind the firmware's build floor nor behind the
// newest signed issued_at the cabinet has accepted (less the skew a
// platform clock may have). A clock ahead of true time is caught by the
// commands themselves: their issued_at then lies in the past and they
// expire early, which refuses, never accepts wrongly.
func (d *Device) clockTrusted(now time.Time) (bool, string) {
	if now.Before(TimeFloor) {
		return false, fmt.Sprintf("clock %s is before %s: not set", now.UTC().Format(time.RFC3339), TimeFloor.Format("2006-01-02"))
	}
	if !d.cmd.newestIssued.IsZero() && now.Before(d.cmd.newestIssued.Add(-d.auth.MaxSkewOrDefault())) {
		return false, fmt.Sprintf("clock %s is behind a signed command issued at %s",
			now.UTC().Format(time.RFC3339), d.cmd.newestIssued.Format(time.RFC3339))
	}
	return true, ""
}

// tooOld refuses a command issued before the newest accepted one by more
// than the longest lifetime a command may have: the platform never sends
// those, so it is a replay from before the replay cache was pruned, or a
// platform clock gone back.
func (d *Device) tooOld(cmd msg.Command) string {
	if d.cmd.newestIssued.IsZero() {
		return ""
	}
	if limit := d.cmd.newestIssued.Add(-d.auth.MaxTTLOrDefault()); cmd.IssuedAt.Before(limit) {
		return fmt.Sprintf("issued_at %s is older than the newest accepted command (%s) by more than %v",
			cmd.IssuedAt.Format(time.RFC3339), d.cmd.newestIssued.Format(time.RFC3339), d.auth.MaxTTLOrDefault())
	}
	return ""
}

// Catalog trust.

// acceptCatalog applies a verified catalog unless it would roll the
// cabinet back: versions at or below the highest ever accepted are refused
// (equal is taken only to restore a catalog file that was lost), as are
// catalogs past their expires_at, for another region or invalid. The
// highest version is persisted in the ledger before the catalog is
// applied.
func (d *Device) acceptCatalog(c msg.Catalog, now time.Time) error {
	if err := catalog.Validate(c); err != nil {
		return err
	}
	if d.cfg.Region != "" && c.Region != d.cfg.Region {
		return fmt.Errorf("%w: region %q, this cabinet takes %q", catalog.ErrInvalid, c.Region, d.cfg.Region)
	}
	held := d.catalog.Version()
	if c.Version < d.cmd.trust.CatalogHigh || (c.Version == d.cmd.trust.CatalogHigh && held >= c.Version) || c.Version <= held {
		return fmt.Errorf("%w: got %d, highest accepted %d, hold %d", catalog.ErrStale, c.Version, d.cmd.trust.CatalogHigh, held)
	}
	if c.ExpiresAt != nil {
		if ok, why := d.clockTrusted(now); !ok {
			return fmt.Errorf("%w: cannot judge its expires_at: %s", catalog.ErrInvalid, why)
		}
		if !now.Before(c.ExpiresAt.Time) {
			return fmt.Errorf("%w: expired at %s", catalog.ErrInvalid, c.ExpiresAt.Format(time.RFC3339))
		}
	}
	if c.Version > d.cmd.trust.CatalogHigh {
		if err := d.ledger.RaiseCatalogHigh(c.Version); err != nil {
			return err
		}
		d.cmd.trust.CatalogHigh = c.Version
	}
	return d.catalog.ApplyCatalog(c, d.cfg.Region)
}
