package cabsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bangfu/cabinet/simulator/broker"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// mosquitto is a real Mosquitto broker (Debian's package) on a free
// loopback port, started and killed by the test.
type mosquitto struct {
	t    testing.TB
	bin  string
	conf string
	port int
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

func findMosquitto(t testing.TB) string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("mosquitto not found: the end-to-end tests need it (apt-get install mosquitto; .ci/run installs it)")
	return ""
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startMosquitto(t testing.TB) *mosquitto {
	m := &mosquitto{t: t, bin: findMosquitto(t), port: freePort(t)}
	m.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", m.port)
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.kill)
	return m
}

func (m *mosquitto) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", m.port) }

func (m *mosquitto) start() {
	m.t.Helper()
	m.log = &bytes.Buffer{}
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.kill()
			m.t.Fatalf("mosquitto did not listen on %d: %v\n%s", m.port, err, m.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the broker at once (SIGKILL): no clean disconnects.
func (m *mosquitto) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		m.cmd.Wait() // reaps it; its exit status is the kill
		m.cmd = nil
	}
}

// TestPurchaseOverMosquitto runs the two-shelf purchase against a real
// Mosquitto instead of the embedded broker, with the contract check.
func TestPurchaseOverMosquitto(t *testing.T) {
	m := startMosquitto(t)
	sc, err := LoadScenario(filepath.Join("..", "scenarios", "two-shelf-purchase.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := startSim(t, Options{BrokerURL: m.URL(), Seed: sc.Seed})
	tp := newTap(t, m.URL())
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if fails := s.RunScenario(ctx, sc, &out); len(fails) > 0 {
		t.Fatalf("scenario failed over Mosquitto:\n%s", out.String())
	}
	tp.waitFor(t, "sale", 1)
	counts := tp.checkContract(t)
	if counts["sale"] != 1 {
		t.Fatalf("tap saw %d sales on the wire, want 1 (%v)", counts["sale"], counts)
	}
}

// restartable is a broker a test can stop and start on the same address.
type restartable interface {
	URL() string
	stop()
	restart()
}

type embedded struct {
	t    testing.TB
	addr string
	b    *broker.Broker
}

func (e *embedded) URL() string { return "tcp://" + e.addr }
func (e *embedded) stop()       { must(e.t, e.b.Close()) }
func (e *embedded) restart() {
	b, err := broker.Start(e.addr, testLogger(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	e.b = b
	e.t.Cleanup(func() { b.Close() })
}

func (m *mosquitto) stop()    { m.kill() }
func (m *mosquitto) restart() { m.start() }

// TestBrokerRestartDuringPurchase stops the broker while the shopper is
// at the shelves and starts it again on the same address after the door
// has closed: the sale is committed offline and arrives exactly once.
// Against the embedded broker (a clean close) and Mosquitto (SIGKILL).
func TestBrokerRestartDuringPurchase(t *testing.T) {
	for _, kind := range []string{"embedded", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			var b restartable
			var s *Sim
			if kind == "embedded" {
				s = startSim(t, Options{Seed: 11})
				b = &embedded{t: t, addr: s.Broker.Addr(), b: s.Broker}
			} else {
				m := startMosquitto(t)
				b = m
				s = startSim(t, Options{Seed: 11, BrokerURL: m.URL()})
			}
			purchaseAcrossRestart(t, s, b)
		})
	}
}

func purchaseAcrossRestart(t *testing.T, s *Sim, b restartable) {
	id := s.Cabinets()[0].ID
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &runner{s: s, id: id, out: io.Discard}
	if err := r.waitReady(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, reply, err := s.Scan(ctx, id, msg.Buyer{Ref: "u-restart", Kind: msg.BuyerPerson}, 0, 0); err != nil || !reply.OK {
		t.Fatalf("scan: %v %+v", err, reply)
	}
	must(t, s.Door(id, 1, "open", false))
	time.Sleep(300 * time.Millisecond)
	must(t, s.Take(id, 1, "NM-0003", 1))
	b.stop()
	time.Sleep(300 * time.Millisecond)
	must(t, s.Door(id, 1, "close", false))
	deadline := time.Now().Add(15 * time.Second)
	for {
		dev := s.Cabinets()[0].Device()
		if dev != nil && dev.Status().Counters.Sales == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sale not committed while the broker was down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.restart()
	sales, err := s.Platform.WaitSales(ctx, id, 1)
	if err != nil {
		t.Fatalf("sale never arrived after the broker came back: %v", err)
	}
	// Let any duplicate delivery show up, then: one sale, no gaps.
	time.Sleep(2 * time.Second)
	recs, gaps := s.Platform.Sales()
	if len(recs) != 1 || len(gaps) != 0 {
		t.Fatalf("platform holds %d sales, gaps %v; want exactly 1", len(recs), gaps)
	}
	sale := sales[0].Sale
	if sale.Seq != 1 || sale.TotalFen != 11800 || len(sale.Lines) != 1 || sale.Lines[0].SKU != "NM-0003" {
		t.Fatalf("wrong sale after restart: %+v", sale)
	}
	// The outbox drains once the platform's ack comes.
	deadline = time.Now().Add(15 * time.Second)
	for s.Cabinets()[0].Device().Status().OutboxDepth != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained after the ack: %+v", s.Cabinets()[0].Device().Status())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
