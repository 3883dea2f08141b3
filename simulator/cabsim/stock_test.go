package cabsim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/simulator/stock"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// stockExample is the stock file of docs/simulator.md.
const stockExample = `{"products":[{"sku":"HONEY-500","name":"土蜂蜜 500克","unit_weight_g":500,"weight_tol_g":8,"price_fen":6800},
             {"sku":"TEA-100","name":"高山绿茶 100克","unit_weight_g":100,"weight_tol_g":2,"price_fen":3800}],
 "shelves":[{"shelf":1,"door":1,"items":{"HONEY-500":8}},
            {"shelf":2,"door":1,"items":{"TEA-100":12,"HONEY-500":4}}]}`

func writeFile(t testing.TB, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	must(t, os.WriteFile(path, []byte(data), 0o600))
	return path
}

// TestStockFile stocks the cabinet from a stock file: the platform
// publishes its catalog (placeholders for the compliance fields left out)
// and planogram, the shelves hold its units, and a purchase of its
// products is one exact sale at its prices.
func TestStockFile(t *testing.T) {
	s := startSim(t, Options{Seed: 11, StockFile: writeFile(t, "stock.json", stockExample)})
	id := s.Cabinets()[0].ID
	cat, ok := s.Platform.Catalog()
	if !ok || len(cat.Products) != 2 || cat.Products[1].SKU != "TEA-100" || cat.Products[1].CertNo != "FAKE-0002" ||
		cat.Products[1].Supplier != stock.SupplierPlaceholder {
		t.Fatalf("platform catalog %+v", cat)
	}
	v, err := s.View(id)
	must(t, err)
	if len(v.Shelves) != 2 || v.Shelves[0].Items["HONEY-500"] != 8 || v.Shelves[1].Items["TEA-100"] != 12 || v.Shelves[1].Items["HONEY-500"] != 4 {
		t.Fatalf("shelves %+v", v.Shelves)
	}

	h := newHarness(t, s, id, 2*time.Minute)
	sale := buyHoneyAndTea(t, h, s, id)
	if sale.Status != msg.SaleExact || sale.TotalFen != 6800+3800 {
		t.Fatalf("sale %s total %d fen, want exact 10600: %+v", sale.Status, sale.TotalFen, sale.Lines)
	}
	want := map[string]int64{"1/HONEY-500": 6800, "2/TEA-100": 3800}
	for _, l := range sale.Lines {
		k := lineKey(l)
		if want[k] != l.UnitPriceFen || l.Qty != 1 {
			t.Errorf("line %s: %d × %d fen", k, l.Qty, l.UnitPriceFen)
		}
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("lines missing: %v (sale %+v)", want, sale.Lines)
	}
	h.must(h.checkBooks())
}

func lineKey(l msg.SaleLine) string { return fmt.Sprintf("%d/%s", l.Shelf, l.SKU) }

// TestStockFileRefused: a bad stock file stops Start before anything runs
// (goleak checks nothing was left behind), and a scenario naming one does
// not load, each with an error naming the problem.
func TestStockFileRefused(t *testing.T) {
	bad := writeFile(t, "bad.json", strings.Replace(stockExample, `"TEA-100":12`, `"TEA-250":12`, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{MQTTAddr: "127.0.0.1:0", StockFile: bad, Logger: testLogger(t)})
	if err == nil {
		s.Close()
		t.Fatal("Start accepted a stock file with an unknown SKU")
	}
	if !strings.Contains(err.Error(), `SKU "TEA-250" is not among the products`) || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("error %q does not name the file and the problem", err)
	}

	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "goods.json"), []byte(`{"products":[],"shelves":[]}`), 0o600))
	scPath := filepath.Join(dir, "sc.json")
	must(t, os.WriteFile(scPath, []byte(`{"name":"x","stock":"goods.json","steps":[{"wait":"1ms"}]}`), 0o600))
	if _, err := LoadScenario(scPath); err == nil || !strings.Contains(err.Error(), "no products") {
		t.Fatalf("scenario with a bad stock file: %v", err)
	}
	must(t, os.WriteFile(scPath, []byte(`{"name":"x","stock":"missing.json","steps":[{"wait":"1ms"}]}`), 0o600))
	if _, err := LoadScenario(scPath); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("scenario with a missing stock file: %v", err)
	}
	// A good one resolves against the scenario's directory.
	must(t, os.WriteFile(filepath.Join(dir, "goods.json"), []byte(stockExample), 0o600))
	must(t, os.WriteFile(scPath, []byte(`{"name":"x","stock":"goods.json","seed":4,"steps":[{"wait":"1ms"}]}`), 0o600))
	sc, err := LoadScenario(scPath)
	must(t, err)
	if o := sc.Apply(Options{Seed: 1, NoiseG: 2}); o.StockFile != filepath.Join(dir, "goods.json") || o.Seed != 4 || o.NoiseG != 2 {
		t.Fatalf("scenario options %+v", o)
	}
}

// buyHoneyAndTea buys one HONEY-500 off shelf 1 and one TEA-100 off shelf 2
// of a cabinet stocked from stockExample and returns its sale.
func buyHoneyAndTea(t *testing.T, h *harness, s *Sim, id string) msg.Sale {
	t.Helper()
	h.waitReady()
	cmd, reply := h.unlock()
	h.must(<-reply)
	if !h.openDoor(5 * time.Second) {
		t.Fatal("door did not open")
	}
	// The firmware sees the opening through a debounced switch: wait for
	// it, or a quick close would read as no opening at all.
	h.until(10*time.Second, "the firmware to see the door open", func() bool {
		v, err := s.View(id)
		return err == nil && v.Session != nil && v.Session.State == "door_open"
	})
	h.must(s.Take(id, 2, "TEA-100", 1))
	h.must(s.Take(id, 1, "HONEY-500", 1))
	h.door("close")
	h.settle(30 * time.Second)
	sale, ok := h.saleOf(cmd.SessionID)
	if !ok {
		t.Fatal("no sale")
	}
	return sale
}

// twoDoorStock stocks a cabinet of two doors: the honey behind door 1, the
// tea behind door 2.
const twoDoorStock = `{"products":[{"sku":"HONEY-500","name":"土蜂蜜 500克","unit_weight_g":500,"weight_tol_g":8,"price_fen":6800},
             {"sku":"TEA-100","name":"高山绿茶 100克","unit_weight_g":100,"weight_tol_g":2,"price_fen":3800}],
 "shelves":[{"shelf":1,"door":1,"items":{"HONEY-500":8}},
            {"shelf":2,"door":2,"items":{"TEA-100":12}}]}`

// TestScanForDoor: on a cabinet of two doors the shopper's scan names the
// door, the platform's unlock carries it, only that door opens, and the
// sale is of what stood behind it. A scan that names no door unlocks
// door 1, as before.
func TestScanForDoor(t *testing.T) {
	s := startSim(t, Options{Seed: 12, StockFile: writeFile(t, "stock.json", twoDoorStock)})
	id := s.Cabinets()[0].ID
	h := newHarness(t, s, id, 2*time.Minute)
	h.waitReady()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := s.Scan(ctx, id, msg.Buyer{Ref: "u-bad"}, 0, -1); err == nil {
		t.Fatal("a scan for door -1 was sent")
	}
	cmd, reply, err := s.Scan(ctx, id, msg.Buyer{Ref: "u-door2", Kind: msg.BuyerPerson}, 0, 2)
	if err != nil || !reply.OK {
		t.Fatalf("scan for door 2: %v %+v", err, reply)
	}
	if cmd.Door != 2 {
		t.Fatalf("unlock for door %d, want 2", cmd.Door)
	}
	if err := s.Door(id, 1, "open", false); err == nil {
		t.Fatal("door 1 opened on an unlock of door 2")
	}
	h.until(10*time.Second, "door 2 to open", func() bool { return s.Door(id, 2, "open", false) == nil })
	h.until(10*time.Second, "the firmware to see door 2 open", func() bool {
		v, err := s.View(id)
		return err == nil && v.Session != nil && v.Session.State == "door_open"
	})
	h.must(s.Take(id, 2, "TEA-100", 2))
	h.must(s.Door(id, 2, "close", false))
	h.settle(30 * time.Second)
	sale, ok := h.saleOf(cmd.SessionID)
	if !ok {
		t.Fatal("no sale")
	}
	if sale.Status != msg.SaleExact || sale.TotalFen != 2*3800 || len(sale.Lines) != 1 || sale.Lines[0].Shelf != 2 {
		t.Fatalf("sale %s %d fen %+v, want 2 × TEA-100 from shelf 2 exact", sale.Status, sale.TotalFen, sale.Lines)
	}

	h.waitReady()
	cmd, reply, err = s.Scan(ctx, id, msg.Buyer{Ref: "u-door1", Kind: msg.BuyerPerson}, 0, 0)
	if err != nil || !reply.OK || cmd.Door != 1 {
		t.Fatalf("scan naming no door: door %d, %v %+v", cmd.Door, err, reply)
	}
}
