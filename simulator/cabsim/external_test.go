package cabsim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bangfu/cabinet/simulator/broker"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// TestExternalPlatform runs the cabinets alone (-platform=external) against
// a platform that lives outside the simulator and provisions them only
// over MQTT: it publishes catalog and planogram, registers the cabinets'
// keys, and sells through them.
func TestExternalPlatform(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	outside, err := platform.New(platform.Opts{Broker: b.URL(), KeyID: "plat-outside-1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, outside.Start(ctx))
	t.Cleanup(outside.Close)

	s := startSim(t, Options{BrokerURL: b.URL(), Seed: 31,
		PlatformKeys: map[string]string{outside.KeyID(): msg.EncodeKey(outside.PublicKey())}})
	if s.Platform != nil {
		t.Fatal("a virtual platform runs in external mode")
	}
	c := s.Cabinets()[0]
	outside.Register(c.ID, c.PublicKey)
	must(t, outside.SetCatalog(demo.Catalog(time.Now())))
	must(t, outside.SetPlanogram(demo.Planogram(c.ID)))

	// The simulator's own platform endpoints say there is none.
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/platform/sales")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /api/platform/sales in external mode: %d, want 404", resp.StatusCode)
	}

	r := &runner{s: s, id: c.ID}
	r.out = testWriter{t}
	if err := r.waitReady(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	qr := c.HW.Snapshot().Display.QR
	if _, reply, err := outside.Scan(ctx, qr, msg.Buyer{Ref: "ext-1", Kind: msg.BuyerPerson}, 0, 0); err != nil || !reply.OK {
		t.Fatalf("scan through the outside platform: %v %+v", err, reply)
	}
	must(t, s.Door(c.ID, 1, "open", false))
	time.Sleep(300 * time.Millisecond)
	must(t, s.Take(c.ID, 4, "CQ-0305", 1))
	time.Sleep(300 * time.Millisecond)
	must(t, s.Door(c.ID, 1, "close", false))
	sales, err := outside.WaitSales(ctx, c.ID, 1)
	if err != nil {
		t.Fatalf("the outside platform got no sale: %v", err)
	}
	if got := sales[0].Sale; got.Status != msg.SaleExact || len(got.Lines) != 1 || got.Lines[0].SKU != "CQ-0305" {
		t.Fatalf("sale %+v", got)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
