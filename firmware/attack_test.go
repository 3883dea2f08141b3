package firmware

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// The attack suite: every message an attacker can put on the cabinet's
// topics, each refused with docs/contract.md's reply code (or dropped, when its
// envelope does not verify) and no change of state. See docs/security.md.

// attackRig is a cabinet trusting platform key A, with key B added and
// then retired, one accepted command on record, one finished session whose
// QR nonce has been used, and a cap on limit_fen.
type attackRig struct {
	*rig
	a, retired, stranger platformKey
	acceptedID           string   // an id the cabinet acted on
	usedNonce            string   // a nonce an earlier session used
	oldNonces            []string // nonces shown before the last two rotations
}

func newAttackRig(t *testing.T) *attackRig {
	t.Helper()
	a, b := newPlatformKey(t, "plat-a"), newPlatformKey(t, "plat-b")
	r := trustRig(t, a, func(c *config.Config) { c.MaxLimitFen = 100_000 })
	ar := &attackRig{rig: r, a: a, retired: b, stranger: newPlatformKey(t, "plat-x")}
	cmdTopic := r.d.topics.Cmd()

	add := r.configCmd(map[string]any{"platform_keys": map[string]string{b.kid: msg.EncodeKey(b.pub)}})
	r.deliver(cmdTopic, a.seal(t, add))
	r.reply(add.ID, "")
	retire := r.configCmd(map[string]any{"retire_kids": []string{b.kid}})
	r.deliver(cmdTopic, a.seal(t, retire))
	r.reply(retire.ID, "")
	ar.acceptedID = add.ID

	// A shopper's session, so one nonce is spent.
	un := r.unlockCmd()
	ar.usedNonce = un.QRNonce
	r.deliver(cmdTopic, a.seal(t, un))
	r.reply(un.ID, "")
	stepUntil(t, r.d, func() bool { return r.d.sess == nil }, 10*time.Second)
	r.waitIdle()

	// Photographed codes: nonces shown, then rotated past twice.
	for range 3 {
		ar.oldNonces = append(ar.oldNonces, r.d.qr.Nonce(r.d.now()))
		r.d.qr.Rotate(r.d.now())
	}
	ar.oldNonces = ar.oldNonces[:1]
	return ar
}

// state is everything a refused message must leave as it was.
type state struct {
	Counters  msg.Counters
	Session   bool
	Sales     int
	Trust     string
	Catalog   int64
	Planogram int64
	Config    string
	Locked    bool
}

func (ar *attackRig) state() state {
	ar.t.Helper()
	tr, err := ar.d.ledger.Trust()
	if err != nil {
		ar.t.Fatal(err)
	}
	// NewestIssued moves only with an accepted command; compare the rest.
	trust, _ := json.Marshal(tr)
	cfg, _ := json.Marshal(ar.d.cfg)
	st := state{
		Counters: ar.counters(), Session: ar.d.sess != nil, Sales: len(ar.outboxSales()),
		Trust: string(trust), Catalog: ar.d.catalog.Version(), Config: string(cfg),
		Locked: ar.door().Locked,
	}
	if p, ok := ar.d.catalog.Planogram(); ok {
		st.Planogram = p.Version
	}
	return st
}

// attack is one malicious message and what the cabinet must answer.
type attack struct {
	name  string
	topic func(*attackRig) string
	build func(*attackRig) ([]byte, string) // payload, command id ("" when not a command)
	code  string                            // reply code; "drop" when nothing may be answered
}

func cmdTopic(ar *attackRig) string { return ar.d.topics.Cmd() }

// unlockWith is a well-formed unlock for the QR shown now, changed by mut
// and signed by k.
func unlockWith(k func(*attackRig) platformKey, mut func(*attackRig, *msg.Command)) func(*attackRig) ([]byte, string) {
	return func(ar *attackRig) ([]byte, string) {
		c := ar.unlockCmd()
		if mut != nil {
			mut(ar, &c)
		}
		return k(ar).seal(ar.t, c), c.ID
	}
}

func keyA(ar *attackRig) platformKey { return ar.a }

func attacks() []attack {
	return []attack{
		{"forged signature", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.unlockCmd()
			return flipSig(ar.t, ar.a.seal(ar.t, c)), c.ID
		}, "drop"},
		{"payload changed after signing", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.unlockCmd()
			env := ar.a.seal(ar.t, c)
			c.LimitFen = 99_999
			return swapPayload(ar.t, env, c), c.ID
		}, "drop"},
		{"unsigned command", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.unlockCmd()
			b, _ := json.Marshal(c)
			return b, c.ID
		}, "drop"},
		{"unknown key", cmdTopic, unlockWith(func(ar *attackRig) platformKey { return ar.stranger }, nil), "drop"},
		{"retired key", cmdTopic, unlockWith(func(ar *attackRig) platformKey { return ar.retired }, nil), "drop"},
		{"retired key under a trusted kid", cmdTopic, unlockWith(func(ar *attackRig) platformKey {
			k := ar.retired
			k.kid = ar.a.kid
			return k
		}, nil), "drop"},
		{"replayed id", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.ID = ar.acceptedID }), msg.ErrReplayed},
		{"expired", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) {
			c.IssuedAt = msg.At(ar.d.now().Add(-2 * time.Minute))
			c.ExpiresAt = msg.At(ar.d.now().Add(-time.Minute))
		}), msg.ErrExpired},
		{"reordered: older than the newest accepted by more than a lifetime", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) {
			c.IssuedAt = msg.At(ar.d.cmd.newestIssued.Add(-6 * time.Minute))
			c.ExpiresAt = msg.At(c.IssuedAt.Add(5 * time.Minute))
		}), msg.ErrExpired},
		{"issued in the future", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) {
			c.IssuedAt = msg.At(ar.d.now().Add(time.Minute))
			c.ExpiresAt = msg.At(ar.d.now().Add(2 * time.Minute))
		}), msg.ErrBadRequest},
		{"lifetime over the maximum", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) {
			c.ExpiresAt = msg.At(ar.d.now().Add(24 * time.Hour))
		}), msg.ErrBadRequest},
		{"wrong cabinet", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.CabinetID = "NM-150102-0099" }), msg.ErrWrongCabinet},
		{"stale QR: a nonce never shown", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.QRNonce = "AAAAAAAAAAAAAAAAAAAAAA" }), msg.ErrStaleQR},
		{"photographed QR after rotation", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.QRNonce = ar.oldNonces[0] }), msg.ErrStaleQR},
		{"QR nonce already used", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.QRNonce = ar.usedNonce }), msg.ErrStaleQR},
		{"limit over the cabinet's cap", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.LimitFen = 100_001 }), msg.ErrBadRequest},
		{"no limit where a cap is set", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.LimitFen = 0 }), msg.ErrBadRequest},
		{"negative limit", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.LimitFen = -1 }), msg.ErrBadRequest},
		{"unknown buyer kind", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.Buyer.Kind = "admin" }), msg.ErrBadRequest},
		{"a door that does not exist", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.Door = 9 }), msg.ErrBadRequest},
		{"unknown command type", cmdTopic, unlockWith(keyA, func(ar *attackRig, c *msg.Command) { c.Type = "open_all" }), msg.ErrBadRequest},
		{"config changing the cabinet's identity", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.configCmd(map[string]any{"cabinet_id": "NM-150102-0099"})
			return ar.a.seal(ar.t, c), c.ID
		}, msg.ErrBadRequest},
		{"config pointing at another broker", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.configCmd(map[string]any{"broker": "tcp://203.0.113.9:1883"})
			return ar.a.seal(ar.t, c), c.ID
		}, msg.ErrBadRequest},
		{"config bringing a retired key back", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.configCmd(map[string]any{"platform_keys": map[string]string{ar.retired.kid: msg.EncodeKey(ar.retired.pub)}})
			return ar.a.seal(ar.t, c), c.ID
		}, msg.ErrBadRequest},
		{"config swapping a trusted kid's key", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.configCmd(map[string]any{"platform_keys": map[string]string{ar.a.kid: msg.EncodeKey(ar.stranger.pub)}})
			return ar.a.seal(ar.t, c), c.ID
		}, msg.ErrBadRequest},
		{"cancel of a session that is not there", cmdTopic, func(ar *attackRig) ([]byte, string) {
			c := ar.cmd(msg.CmdCancel)
			c.SessionID = "S-not-here"
			return ar.a.seal(ar.t, c), c.ID
		}, msg.ErrUnknownSession},
		{"downgraded catalog", func(ar *attackRig) string { return ar.d.topics.Catalog() }, func(ar *attackRig) ([]byte, string) {
			c := demo.Catalog(ar.d.now())
			c.Version = ar.d.catalog.Version() - 1
			return ar.a.seal(ar.t, c), ""
		}, "drop"},
		{"catalog for another region", func(ar *attackRig) string { return ar.d.topics.Catalog() }, func(ar *attackRig) ([]byte, string) {
			c := demo.Catalog(ar.d.now())
			c.Version = ar.d.catalog.Version() + 10
			c.Region = "630000"
			return ar.a.seal(ar.t, c), ""
		}, "drop"},
		{"catalog signed by a retired key", func(ar *attackRig) string { return ar.d.topics.Catalog() }, func(ar *attackRig) ([]byte, string) {
			c := demo.Catalog(ar.d.now())
			c.Version = ar.d.catalog.Version() + 10
			return ar.retired.seal(ar.t, c), ""
		}, "drop"},
		{"planogram for another cabinet", func(ar *attackRig) string { return ar.d.topics.Planogram() }, func(ar *attackRig) ([]byte, string) {
			p := demo.Planogram("NM-150102-0099")
			p.Version = 99
			return ar.a.seal(ar.t, p), ""
		}, msg.ErrBadRequest},
		{"ack beyond the last sale", func(ar *attackRig) string { return ar.d.topics.Ack() }, func(ar *attackRig) ([]byte, string) {
			return ar.a.seal(ar.t, msg.Ack{SalesUptoSeq: 1_000_000}), ""
		}, "drop"},
	}
}

func flipSig(t testing.TB, env []byte) []byte {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(e["sig"].(string))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x01
	e["sig"] = base64.RawURLEncoding.EncodeToString(sig)
	b, _ := json.Marshal(e)
	return b
}

func swapPayload(t testing.TB, env []byte, body any) []byte {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(body)
	e["payload"] = base64.RawURLEncoding.EncodeToString(p)
	b, _ := json.Marshal(e)
	return b
}

func TestAttackSuite(t *testing.T) {
	ar := newAttackRig(t)
	for _, at := range attacks() {
		t.Run(at.name, func(t *testing.T) {
			defer ar.use(t)()
			before := ar.state()
			badBefore := ar.d.Status().BadMessages
			payload, id := at.build(ar)
			ar.deliver(at.topic(ar), payload)
			ar.d.step(ar.ctx)
			switch {
			case at.code == "drop" && id != "":
				if got := ar.replies(id); len(got) != 0 {
					t.Fatalf("answered a message that must be dropped: %+v", got)
				}
				if ar.d.Status().BadMessages != badBefore+1 {
					t.Fatalf("not counted as a bad message")
				}
			case id == ar.acceptedID:
				// Its first, accepted reply is on record; the replay adds
				// one refusal.
				got := ar.replies(id)
				if len(got) != 2 || got[1].Error != at.code {
					t.Fatalf("replies to the replayed id: %+v", got)
				}
			case at.code != "drop" && id != "":
				ar.reply(id, at.code)
			}
			if id != "" && id != ar.acceptedID && ar.d.ledger.Seen(id) {
				t.Fatal("a refused command entered the replay cache")
			}
			if after := ar.state(); after != before {
				t.Fatalf("state changed:\n before %+v\n after  %+v", before, after)
			}
		})
	}
}

// TestGeneratedAttacks throws BANGFU_ATTACKS (default 3,000; `make attack`
// runs 100,000) randomly generated malicious commands at the cabinet: each
// a valid unlock for the QR shown now with one to three attacks from the
// suite applied, so none may be accepted. It counts the outcomes.
func TestGeneratedAttacks(t *testing.T) {
	n := 3000
	if s := os.Getenv("BANGFU_ATTACKS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("BANGFU_ATTACKS=%q", s)
		}
		n = v
	}
	ar := newAttackRig(t)
	rng := rand.New(rand.NewPCG(26, 11))
	mutations := []func(*attackRig, *msg.Command, *platformKey, *bool){
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { *forge = true },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { *k = ar.stranger },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { *k = ar.retired },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { c.ID = ar.acceptedID },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			back := time.Duration(1+rng.IntN(3600)) * time.Second
			c.IssuedAt = msg.At(ar.d.now().Add(-back - 5*time.Minute))
			c.ExpiresAt = msg.At(ar.d.now().Add(-back))
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			c.IssuedAt = msg.At(ar.d.now().Add(time.Duration(10+rng.IntN(86400)) * time.Second))
			c.ExpiresAt = msg.At(c.IssuedAt.Add(time.Minute))
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			c.ExpiresAt = msg.At(c.IssuedAt.Add(time.Duration(6+rng.IntN(10000)) * time.Minute))
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			c.CabinetID = fmt.Sprintf("NM-150102-%04d", 8+rng.IntN(9000))
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			b := make([]byte, 16)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			c.QRNonce = base64.RawURLEncoding.EncodeToString(b)
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { c.QRNonce = ar.oldNonces[0] },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { c.QRNonce = ar.usedNonce },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			c.LimitFen = 100_001 + rng.Int64N(1<<40)
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { c.LimitFen = -1 - rng.Int64N(1<<40) },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			c.Buyer = &msg.Buyer{Ref: "wx-1", Kind: []string{"", "admin", "Person", "staff", "机器"}[rng.IntN(5)]}
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { c.Door = 2 + rng.IntN(100) },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) {
			c.Type = []string{"", "open", "UNLOCK", "unlock ", "restock"}[rng.IntN(5)]
		},
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { c.Buyer = nil },
		func(ar *attackRig, c *msg.Command, k *platformKey, forge *bool) { c.SessionID = "" },
	}
	before := ar.state()
	start := ar.d.now()
	codes := map[string]int{}
	for i := range n {
		if i%20 == 0 {
			ar.d.step(ar.ctx) // keep the readings fresh, as the live loop would
		}
		c := ar.unlockCmd()
		c.ID = fmt.Sprintf("atk-%d-%s", i, c.ID)
		k, forge := ar.a, false
		for range 1 + rng.IntN(3) {
			mutations[rng.IntN(len(mutations))](ar, &c, &k, &forge)
		}
		env := k.seal(t, c)
		if forge {
			env = flipSig(t, env)
		}
		ar.deliver(ar.d.topics.Cmd(), env)
		if ar.d.sess != nil {
			t.Fatalf("attack %d opened a session: %+v", i, c)
		}
	}
	// Every reply queued for an attack is a refusal.
	replies := 0
	entries, err := ar.d.ledger.Outbox.Pending(10 * n)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind != outbox.KindReply {
			continue
		}
		var rep msg.Reply
		if err := json.Unmarshal(e.Payload, &rep); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rep.CmdID, "atk-") && (rep.CmdID != ar.acceptedID || rep.At.Before(start)) {
			continue // not an attack's reply (the setup's own)
		}
		if rep.OK {
			t.Fatalf("attack accepted: %+v", rep)
		}
		replies++
		codes[rep.Error]++
	}
	dropped := int(ar.d.Status().BadMessages)
	if after := ar.state(); after != before {
		t.Fatalf("state changed:\n before %+v\n after  %+v", before, after)
	}
	if replies+dropped != n {
		t.Fatalf("%d refused with a reply + %d dropped ≠ %d tried", replies, dropped, n)
	}
	t.Logf("attacks tried %d, refused %d (replies %d %v, dropped as bad messages %d), accepted 0", n, replies+dropped, replies, codes, dropped)
}
