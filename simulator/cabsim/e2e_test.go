package cabsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/bangfu/cabinet/docs"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// testLogger writes to the test log only when the test fails or -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastConfig shortens the intervals so tests see heartbeats and timeouts.
func fastConfig(c *config.Config) {
	c.HeartbeatS = 1
	// A broker restart can lose a PUBACKed sale before the platform has
	// resubscribed; the cabinet's answer is to publish again after
	// ack_wait, which the tests shorten from 60 s.
	c.AckWaitS = 3
	c.UnlockWindowS = 10
}

// startSim starts a simulation on free loopback ports and stops it at
// cleanup.
func startSim(t testing.TB, o Options) *Sim {
	t.Helper()
	if o.MQTTAddr == "" {
		o.MQTTAddr = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.Configure == nil {
		o.Configure = fastConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// tap records every message on the prefix as it crosses the broker: the
// raw bytes the firmware published, for the contract check.
type tap struct {
	mu   sync.Mutex
	msgs []mqtt.Message
	c    mqtt.Client
}

func newTap(t testing.TB, brokerURL string) *tap {
	t.Helper()
	tp := &tap{}
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("tap-%d", time.Now().UnixNano())).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			c.Subscribe(msg.DefaultPrefix+"/#", 1, func(_ mqtt.Client, m mqtt.Message) {
				tp.mu.Lock()
				tp.msgs = append(tp.msgs, m)
				tp.mu.Unlock()
			})
		})
	tp.c = mqtt.NewClient(opts)
	if tok := tp.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("tap connect: %v", tok.Error())
	}
	t.Cleanup(func() { tp.c.Disconnect(100) })
	return tp
}

// checkContract validates every cabinet message the tap saw against the
// JSON Schemas in docs/, and returns how many it checked per leaf.
func (tp *tap) checkContract(t testing.TB) map[string]int {
	t.Helper()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	counts := map[string]int{}
	for _, m := range tp.msgs {
		_, leaf, ok := msg.ParseCabinetTopic(msg.DefaultPrefix, m.Topic())
		if !ok {
			continue // the platform's catalog
		}
		switch leaf {
		case "cmd", "ack", "planogram":
			if err := docs.ValidateEnvelope(leaf2schema(leaf), m.Payload()); err != nil {
				t.Errorf("platform message on %s breaks the contract: %v\n%s", m.Topic(), err, m.Payload())
			}
			continue
		case "state":
			if err := docs.Validate("state", m.Payload()); err != nil {
				t.Errorf("state breaks the contract: %v\n%s", err, m.Payload())
			}
		default:
			if err := docs.ValidateEnvelope(leaf, m.Payload()); err != nil {
				t.Errorf("%s breaks the contract: %v\n%s", m.Topic(), err, m.Payload())
			}
		}
		counts[leaf]++
	}
	return counts
}

// waitFor waits until the tap has seen n messages on leaf.
func (tp *tap) waitFor(t testing.TB, leaf string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		tp.mu.Lock()
		for _, m := range tp.msgs {
			if _, l, ok := msg.ParseCabinetTopic(msg.DefaultPrefix, m.Topic()); ok && l == leaf {
				got++
			}
		}
		tp.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tap saw %d %s messages, want %d", got, leaf, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func leaf2schema(leaf string) string {
	if leaf == "cmd" {
		return "command"
	}
	return leaf
}

func scenarioFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("..", "scenarios", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	return files
}

// TestScenarios plays every shipped scenario end to end over the embedded
// broker — a two-shelf purchase, an empty session, moved, returned and
// foreign items, an ambiguous basket, refused unlocks — and checks every
// message the firmware put on the wire against the published contract.
func TestScenarios(t *testing.T) {
	seen := map[string]int{}
	for _, f := range scenarioFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			sc, err := LoadScenario(f)
			if err != nil {
				t.Fatal(err)
			}
			s := startSim(t, sc.Apply(Options{}))
			tp := newTap(t, s.Broker.URL())
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if fails := s.RunScenario(ctx, sc, &out); len(fails) > 0 {
				t.Errorf("scenario %q failed:\n%s", sc.Name, out.String())
			}
			time.Sleep(1200 * time.Millisecond) // one heartbeat more on the wire
			for leaf, n := range tp.checkContract(t) {
				seen[leaf] += n
			}
		})
	}
	for _, leaf := range []string{"state", "sale", "reply", "alarm", "heartbeat"} {
		if seen[leaf] == 0 {
			t.Errorf("no %s message was checked against the contract", leaf)
		}
	}
	t.Logf("messages checked against docs/schemas: %v", seen)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
