package main

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

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/simulator/cabsim"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// recorder is mosquitto_sub -v: every message under the prefix as
// "topic payload" lines; changed is closed and replaced on each.
type recorder struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func (r *recorder) add(topic string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, topic+" "+string(payload))
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait waits until cond holds over the lines recorded, or ctx ends.
func (r *recorder) wait(ctx context.Context, cond func([]string) bool) error {
	for {
		r.mu.Lock()
		ok, ch := cond(r.lines), r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestAuditSimulatorTraffic records a real firmware's traffic on the
// simulator's broker while the ambiguous-basket scenario plays, audits
// it, and finds the form the same as the platform's report writer makes
// from the platform's books.
func TestAuditSimulatorTraffic(t *testing.T) {
	sc, err := cabsim.LoadScenario(filepath.Join("..", "..", "scenarios", "ambiguous-basket.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := sc.Apply(cabsim.Options{MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler),
		Configure: func(c *config.Config) { c.HeartbeatS = 1 }})
	s, err := cabsim.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := &recorder{changed: make(chan struct{})}
	opts := mqtt.NewClientOptions().AddBroker(s.Broker.URL()).SetClientID("audit-recorder").SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(msg.DefaultPrefix+"/#", 1, func(_ mqtt.Client, m mqtt.Message) { rec.add(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	var out bytes.Buffer
	if fails := s.RunScenario(ctx, sc, &out); len(fails) > 0 {
		t.Fatalf("scenario failed:\n%s", out.String())
	}
	cab := s.Cabinets()[0]
	ring := msg.KeyRing{cab.ID: cab.PublicKey}
	// Until a heartbeat after the sale counts it.
	err = rec.wait(ctx, func(lines []string) bool {
		for _, ln := range lines {
			topic, payload, _ := strings.Cut(ln, " ")
			if topic != msg.DefaultPrefix+"/c/"+cab.ID+"/heartbeat" {
				continue
			}
			var hb msg.Heartbeat
			if _, err := ring.OpenInto([]byte(payload), &hb); err == nil && hb.Counters.LastSeq >= 1 {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	archive := strings.Join(rec.lines, "\n") + "\n"
	rec.mu.Unlock()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	must(t, os.WriteFile(keys, []byte(fmt.Sprintf("cabsim: cabinet       %s key %s\n", cab.ID, msg.EncodeKey(cab.PublicKey))), 0o600))
	traffic := filepath.Join(dir, "traffic.txt")
	must(t, os.WriteFile(traffic, []byte(archive), 0o600))

	var form, stderr bytes.Buffer
	if code := run([]string{"-keys", keys, traffic}, strings.NewReader(""), &form, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	t.Logf("%s", stderr.String())
	// With the platform's key, what the platform sent checks too.
	platKeys := filepath.Join(dir, "platform.keys")
	must(t, os.WriteFile(platKeys, []byte(s.Platform.KeyID()+"="+msg.EncodeKey(s.Platform.PublicKey())+"\n"), 0o600))
	stderr.Reset()
	if code := run([]string{"-keys", keys, "-platform-keys", platKeys, traffic}, strings.NewReader(""), io.Discard, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "platform cmd") || !strings.Contains(stderr.String(), "platform ack") {
		t.Fatalf("with the platform's key: exit %d:\n%s", code, stderr.String())
	}
	t.Logf("%s", stderr.String())
	var want bytes.Buffer
	must(t, platform.WriteReportCSV(&want, platform.ReportRows(s.Platform.SalesRecords(), platform.ReportFilter{}, nil)))
	if !bytes.Equal(form.Bytes(), want.Bytes()) || strings.Count(want.String(), "\n") != 2 {
		t.Fatalf("audit form:\n%s\nplatform form:\n%s", form.String(), want.String())
	}
	// The same archive with the sale's payload altered fails.
	var tampered []string
	for _, ln := range strings.Split(strings.TrimSuffix(archive, "\n"), "\n") {
		if strings.HasPrefix(ln, msg.DefaultPrefix+"/c/"+cab.ID+"/sale ") {
			ln = tamper(t, ln, func(s *msg.Sale) { s.TotalFen, s.Lines[0].AmountFen = 1, 1 })
		}
		tampered = append(tampered, ln)
	}
	must(t, os.WriteFile(traffic, []byte(strings.Join(tampered, "\n")+"\n"), 0o600))
	stderr.Reset()
	if code := run([]string{"-keys", keys, traffic}, strings.NewReader(""), io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "tampered") || !strings.Contains(stderr.String(), "missing: sale seq 1 missing") {
		t.Fatalf("tampered archive: exit %d:\n%s", code, stderr.String())
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
