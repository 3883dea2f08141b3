package firmware

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// platformKey is one of the platform's signing keys in a test.
type platformKey struct {
	kid  string
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newPlatformKey(t *testing.T, kid string) platformKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return platformKey{kid: kid, pub: pub, priv: priv}
}

func (k platformKey) seal(t testing.TB, body any) []byte {
	t.Helper()
	b, err := msg.Signer{Kid: k.kid, Key: k.priv}.Seal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trustRig is a rig whose config trusts exactly the given platform key.
func trustRig(t *testing.T, k platformKey, opts ...rigOpt) *rig {
	t.Helper()
	opts = append([]rigOpt{func(c *config.Config) {
		c.PlatformKeys = map[string]string{k.kid: msg.EncodeKey(k.pub)}
	}}, opts...)
	return newRig(t, opts...)
}

// deliver hands a signed message to the device as the link would.
func (r *rig) deliver(topic string, payload []byte) {
	r.t.Helper()
	if err := r.d.handle(r.ctx, telemetry.Inbound{Topic: topic, Payload: payload, Received: r.d.now()}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) configCmd(settings map[string]any) msg.Command {
	r.t.Helper()
	c := r.cmd(msg.CmdConfig)
	c.Settings = map[string]json.RawMessage{}
	for k, v := range settings {
		b, err := json.Marshal(v)
		if err != nil {
			r.t.Fatal(err)
		}
		c.Settings[k] = b
	}
	return c
}

func TestKeyRotation(t *testing.T) {
	a, b, c := newPlatformKey(t, "plat-a"), newPlatformKey(t, "plat-b"), newPlatformKey(t, "plat-c")
	r := trustRig(t, a)
	cmdTopic := r.d.topics.Cmd()

	// A adds B.
	add := r.configCmd(map[string]any{"platform_keys": map[string]string{b.kid: msg.EncodeKey(b.pub)}})
	r.deliver(cmdTopic, a.seal(t, add))
	if rep := r.reply(add.ID, ""); !strings.Contains(rep.Detail, "plat-a,plat-b") {
		t.Fatalf("add reply %+v", rep)
	}
	// B retires A.
	retire := r.configCmd(map[string]any{"retire_kids": []string{a.kid}})
	r.deliver(cmdTopic, b.seal(t, retire))
	r.reply(retire.ID, "")

	// A's signature is refused from now on: no reply, a bad message.
	badBefore := r.d.Status().BadMessages
	resend := r.cmd(msg.CmdResend)
	resend.FromSeq, resend.ToSeq = 1, 1
	r.deliver(cmdTopic, a.seal(t, resend))
	if got := r.replies(resend.ID); len(got) != 0 {
		t.Fatalf("a command signed by a retired key was answered: %+v", got)
	}
	if r.d.bad != badBefore+1 {
		t.Fatalf("bad messages %d, want %d", r.d.bad, badBefore+1)
	}

	refusals := []struct {
		name     string
		settings map[string]any
		signer   platformKey
		want     string
	}{
		{"a retired kid cannot come back", map[string]any{"platform_keys": map[string]string{a.kid: msg.EncodeKey(a.pub)}}, b, "retired"},
		{"an existing kid cannot change its key", map[string]any{"platform_keys": map[string]string{b.kid: msg.EncodeKey(c.pub)}}, b, "another key"},
		{"the last key cannot be retired", map[string]any{"retire_kids": []string{b.kid}}, b, "no platform key"},
		{"keys and settings do not mix", map[string]any{"retire_kids": []string{"x"}, "heartbeat_s": 30}, b, "of its own"},
		{"a bad key", map[string]any{"platform_keys": map[string]string{"plat-x": "not-a-key"}}, b, "plat-x"},
		{"a kid with a control character", map[string]any{"platform_keys": map[string]string{"plat\x00c": msg.EncodeKey(c.pub)}}, b, "printable"},
		{"unknown fields in the key list", map[string]any{"retire_kids": map[string]int{"x": 1}}, b, "retire_kids"},
		{"a null key list", map[string]any{"platform_keys": nil}, b, "want a JSON object"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			defer r.use(t)()
			before, err := r.d.ledger.Trust()
			if err != nil {
				t.Fatal(err)
			}
			cmd := r.configCmd(tc.settings)
			r.deliver(cmdTopic, tc.signer.seal(t, cmd))
			rep := r.reply(cmd.ID, msg.ErrBadRequest)
			if !strings.Contains(rep.Detail, tc.want) {
				t.Fatalf("detail %q does not say %q", rep.Detail, tc.want)
			}
			after, err := r.d.ledger.Trust()
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, before, after) {
				t.Fatalf("refused key change moved trust: %+v → %+v", before, after)
			}
		})
	}

	// A restart keeps the rotation, although the config file still
	// lists A and only A.
	r.restart()
	if _, ok := r.d.keys[a.kid]; ok {
		t.Fatal("retired key trusted again after a restart")
	}
	if _, ok := r.d.keys[b.kid]; !ok {
		t.Fatal("added key lost at restart")
	}
	again := r.cmd(msg.CmdResend)
	again.FromSeq, again.ToSeq = 1, 1
	r.deliver(cmdTopic, b.seal(t, again))
	if got := r.replies(again.ID); len(got) != 1 {
		t.Fatalf("B's command after restart: %+v", got)
	}
}

func jsonEqual(t testing.TB, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(x) == string(y)
}

func TestCatalogTrust(t *testing.T) {
	a, other := newPlatformKey(t, "plat-a"), newPlatformKey(t, "plat-z")
	r := trustRig(t, a)
	topic := r.d.topics.Catalog()
	now := r.d.now()
	cat := func(v int64, mut ...func(*msg.Catalog)) msg.Catalog {
		c := demo.Catalog(now)
		c.Version = v
		for _, m := range mut {
			m(&c)
		}
		return c
	}
	r.deliver(topic, a.seal(t, cat(5)))
	if v := r.d.catalog.Version(); v != 5 {
		t.Fatalf("catalog version %d, want 5", v)
	}
	refused := []struct {
		name    string
		payload []byte
	}{
		{"older", a.seal(t, cat(4))},
		{"equal", a.seal(t, cat(5))},
		{"expired", a.seal(t, cat(9, func(c *msg.Catalog) { e := msg.At(now.Add(-time.Second)); c.ExpiresAt = &e }))},
		{"another region", a.seal(t, cat(9, func(c *msg.Catalog) { c.Region = "630000" }))},
		{"unknown key", other.seal(t, cat(9))},
		{"invalid content", a.seal(t, cat(9, func(c *msg.Catalog) { c.Products[0].PriceFen = -1 }))},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			defer r.use(t)()
			r.deliver(topic, tc.payload)
			if v := r.d.catalog.Version(); v != 5 {
				t.Fatalf("catalog version %d after a refused catalog", v)
			}
			if tr, _ := r.d.ledger.Trust(); tr.CatalogHigh != 5 {
				t.Fatalf("highest accepted %d after a refused catalog", tr.CatalogHigh)
			}
		})
	}
	// A catalog that expires later is fine.
	r.deliver(topic, a.seal(t, cat(6, func(c *msg.Catalog) { e := msg.At(now.Add(time.Hour)); c.ExpiresAt = &e })))
	if v := r.d.catalog.Version(); v != 6 {
		t.Fatalf("catalog version %d, want 6", v)
	}

	// The catalog file is lost (corrupt, moved aside): the retained
	// catalog an attacker replays is older and stays refused; the current
	// one restores it.
	r.close()
	if err := os.Remove(filepath.Join(r.cfg.DataDir, "catalog.db")); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.deliver(topic, a.seal(t, cat(5)))
	if v := r.d.catalog.Version(); v != 0 {
		t.Fatalf("rolled back to catalog %d after losing the catalog file", v)
	}
	r.deliver(topic, a.seal(t, cat(6)))
	if v := r.d.catalog.Version(); v != 6 {
		t.Fatalf("catalog %d, want 6 restored", v)
	}
}

func TestClockTrust(t *testing.T) {
	a := newPlatformKey(t, "plat-a")
	r := trustRig(t, a)
	cmdTopic := r.d.topics.Cmd()

	// A command accepted now sets the newest signed time.
	first := r.cmd(msg.CmdResend)
	first.FromSeq, first.ToSeq = 1, 1
	r.deliver(cmdTopic, a.seal(t, first))
	r.reply(first.ID, "")
	if r.d.cmd.newestIssued.IsZero() {
		t.Fatal("newest issued_at not recorded")
	}

	t.Run("a command older than the newest by more than a lifetime", func(t *testing.T) {
		defer r.use(t)()
		old := r.cmd(msg.CmdResend)
		old.FromSeq, old.ToSeq = 1, 1
		old.IssuedAt = msg.At(r.d.cmd.newestIssued.Add(-10 * time.Minute))
		old.ExpiresAt = msg.At(old.IssuedAt.Add(4 * time.Minute))
		r.deliver(cmdTopic, a.seal(t, old))
		// Expiry alone would refuse it too; the detail shows the check
		// against the newest signed time ran first.
		if rep := r.reply(old.ID, msg.ErrExpired); !strings.Contains(rep.Detail, "older than the newest") {
			t.Fatalf("detail %q", rep.Detail)
		}
	})

	cases := []struct {
		name  string
		clock time.Time
		want  string
	}{
		{"a board that booted at 1970", time.Unix(0, 0), "before"},
		{"a clock behind a signed command", r.d.now().Add(-time.Hour), "behind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer r.use(t)()
			r.close()
			r.now = func() time.Time { return tc.clock }
			r.start()
			defer func() { r.close(); r.now = nil; r.start() }()
			if ok, why := r.d.clockTrusted(r.d.now()); ok || !strings.Contains(why, tc.want) {
				t.Fatalf("clockTrusted = %v, %q", ok, why)
			}
			// Unlock and every other command: out of service, nothing
			// recorded (the replay cache does not take the id).
			cmd := r.unlockCmd()
			r.deliver(cmdTopic, a.seal(t, cmd))
			rep := r.reply(cmd.ID, msg.ErrOutOfService)
			if !strings.Contains(rep.Detail, "clock not trusted") {
				t.Fatalf("detail %q", rep.Detail)
			}
			if r.d.ledger.Seen(cmd.ID) {
				t.Fatal("a refused command entered the replay cache")
			}
			if r.session() != nil {
				t.Fatal("a session opened on an untrusted clock")
			}
			// The cabinet shows itself out of service (no QR).
			r.d.step(r.ctx)
			if m := r.d.Status().Mode; m != msg.ModeOutOfService {
				t.Fatalf("mode %q on an untrusted clock", m)
			}
		})
	}
}
