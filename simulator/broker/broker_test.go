package broker

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:1883", "nohost", ":1883"} {
		if b, err := Start(addr, nil); err == nil {
			b.Close()
			t.Errorf("Start(%q) accepted a non-loopback address", addr)
		}
	}
}

// TestCloseWithClientsAndRestart closes the broker under connected,
// reconnecting clients (the deadlock mochi's own Close can hit) and starts
// a new one on the same address.
func TestCloseWithClientsAndRestart(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	var clients []mqtt.Client
	for i := range 5 {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("c" + string(rune('0'+i))).
			SetAutoReconnect(false).SetConnectTimeout(2 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		clients = append(clients, c)
	}
	done := make(chan struct{})
	go func() {
		b.Close()
		b.Close() // idempotent
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung")
	}
	for _, c := range clients {
		c.Disconnect(0)
	}
	b2, err := Start(addr, nil)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer b2.Close()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b2.URL()).SetClientID("after"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect after restart: %v", tok.Error())
	}
	c.Disconnect(0)
}
