package telemetry

// The baseline for BenchmarkDrain: a plain paho client with its default
// in-memory store publishing the same signed sale envelope at QoS 1 to the
// same broker, in the same run. The drain pays for durability (a bbolt
// outbox read, an fsynced removal per message) and for order (one message
// in flight); the baseline shows what the broker and paho alone allow, with
// one in flight ("one-in-flight", the drain's discipline) and with a window
// of them ("pipelined", what the memory store would do if nothing were
// durable). Run them together:
//
//	make bench PKGS=./telemetry BENCH='Drain|PlainPaho' COUNT=6
//
// The Mosquitto variants use Debian's broker on a free loopback port.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/telemetry/outbox"
)

// benchWindow is the pipelined baseline's in-flight limit: far below
// paho's 65535 message ids.
const benchWindow = 1000

func BenchmarkPlainPahoQoS1(b *testing.B) {
	br := startBroker(b, "127.0.0.1:0")
	benchPlainPaho(b, br.URL())
}

func BenchmarkPlainPahoQoS1Mosquitto(b *testing.B) {
	benchPlainPaho(b, benchMosquitto(b))
}

// BenchmarkDrainMosquitto is BenchmarkDrain against Mosquitto.
func BenchmarkDrainMosquitto(b *testing.B) {
	benchDrain(b, benchMosquitto(b))
}

// benchBody is the envelope the drain publishes for a sale: the same
// bytes, so the baseline moves the same payload size.
func benchBody(b *testing.B) []byte {
	signer, _ := testKeys(b)
	body, err := signer.SealBytes(saleEntry(b, 1).Payload)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func benchPlainPaho(b *testing.B, url string) {
	RoutePahoLogs(discard) // paho logs the EOF of its own Disconnect as an error
	body := benchBody(b)
	for _, window := range []int{1, benchWindow} {
		name := "one-in-flight"
		if window > 1 {
			name = "pipelined"
		}
		b.Run(name, func(b *testing.B) {
			o := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-plain-%d", window)).
				SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
			c := mqtt.NewClient(o)
			if err := benchWait(c.Connect()); err != nil {
				b.Fatalf("connect: %v", err)
			}
			defer c.Disconnect(250)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			inflight := make([]mqtt.Token, 0, window)
			start := time.Now()
			b.ResetTimer()
			for range b.N {
				if len(inflight) == window {
					if err := benchWait(inflight[0]); err != nil {
						b.Fatalf("publish: %v", err)
					}
					inflight = inflight[1:]
				}
				inflight = append(inflight, c.Publish(testTopics.Sale(), 1, false, body))
			}
			for _, t := range inflight {
				if err := benchWait(t); err != nil {
					b.Fatalf("publish: %v", err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
		})
	}
}

// benchWait waits for a paho token without trusting Wait (it can hang).
func benchWait(t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-time.After(hangGuard):
		return fmt.Errorf("token not done after %v", hangGuard)
	}
}

// benchDrain is BenchmarkDrain's measurement against the broker at url:
// b.N sale entries committed to a real bbolt outbox, then drained in
// broker-ack mode (publish, PUBACK, fsynced removal each).
func benchDrain(b *testing.B, url string) {
	l := runLink(b, linkOpts(url))
	waitUntil(b, "link up", l.Connected)
	db, ob := openOutbox(b)
	signer, _ := testKeys(b)
	n := b.N
	e := saleEntry(b, 1)
	for i := 0; i < n; i += 1000 {
		err := db.Update(func(tx *bolt.Tx) error {
			for j := i; j < min(i+1000, n); j++ {
				e.SaleSeq = uint64(j + 1)
				if _, err := outbox.Append(tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	var done atomic.Int64
	all := make(chan struct{})
	d := &Drainer{Outbox: ob, Link: l, Signer: signer, AckMode: AckBroker, Logger: discard,
		Published: func(outbox.Entry, time.Time) {
			if done.Add(1) == int64(n) {
				close(all)
			}
		}}
	b.ResetTimer()
	start := time.Now()
	runDrain(b, d)
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("drained %d of %d", done.Load(), n)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
}

// benchMosquitto starts Debian's Mosquitto on a free loopback port, kills
// it at cleanup, and returns its URL.
func benchMosquitto(b *testing.B) string {
	b.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		b.Fatal("mosquitto not found (apt-get install mosquitto)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(b.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port), 0o600); err != nil {
		b.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		b.Fatalf("start mosquitto: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // reaps it; its exit status is the kill
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return "tcp://" + addr
		}
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			_ = cmd.Wait() // the log is complete once Wait returns
			b.Fatalf("mosquitto did not listen on %s: %v\n%s", addr, err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
