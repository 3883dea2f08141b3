package cabsim

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// TestRestockOverMQTT runs a restock session end to end over the embedded
// broker: the platform signs a restock_open, staff fill a shelf and take
// units from another, and the cabinet publishes one restock message (no
// sale), which the tap checks against the published contract.
func TestRestockOverMQTT(t *testing.T) {
	s := startSim(t, Options{Seed: 5})
	tp := newTap(t, s.Broker.URL())
	c := s.Cabinets()[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// wait polls the cabinet's view until ok holds.
	wait := func(what string, ok func(v CabinetView) bool) {
		t.Helper()
		for {
			v, err := s.View(c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ok(v) {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("cabinet not %s: mode %q, session %+v", what, v.Mode, v.Session)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitIdle := func() {
		t.Helper()
		wait("idle", func(v CabinetView) bool { return v.Mode == msg.ModeIdle && v.Display["qr"] != "" })
	}
	waitIdle()

	cmd := s.Platform.NewCommand(msg.CmdRestockOpen, c.ID)
	cmd.SessionID = "R-" + msg.NewID(time.Now())
	cmd.StaffID = "staff-e2e"
	cmd.Door = 1
	rep, err := s.Platform.Send(ctx, cmd, s.Platform.Signer())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("restock_open refused: %+v", rep)
	}
	must(t, c.HW.OpenDoor(1, false))
	wait("restocking", func(v CabinetView) bool {
		return v.Mode == msg.ModeRestock && v.Session != nil && v.Session.State == "door_open"
	})
	must(t, c.HW.Put(1, "NM-0001", 0, 4))
	must(t, c.HW.Take(4, "CQ-0305", 3))
	must(t, c.HW.CloseDoor(1))
	tp.waitFor(t, "restock", 1)

	var got []msg.Restock
	for _, rc := range s.Platform.Received() {
		if rc.CabinetID != c.ID || rc.Leaf != "restock" {
			continue
		}
		var r msg.Restock
		must(t, json.Unmarshal(rc.Payload, &r))
		got = append(got, r)
	}
	if len(got) == 0 || got[0].SessionID != cmd.SessionID || got[0].StaffID != "staff-e2e" {
		t.Fatalf("platform received restocks %+v", got)
	}
	// The demo stock's levels are unknown to the cabinet, yet the changes
	// are counted all the same.
	want := []msg.RestockChange{{Shelf: 1, SKU: "NM-0001", DeltaQty: 4}, {Shelf: 4, SKU: "CQ-0305", DeltaQty: -3}}
	if !reflect.DeepEqual(got[0].Changes, want) {
		t.Fatalf("changes %+v, want %+v", got[0].Changes, want)
	}
	if sales, _ := s.Platform.Sales(); len(sales) != 0 {
		t.Fatalf("a restock made %d sales", len(sales))
	}
	waitIdle()
	if counts := tp.checkContract(t); counts["restock"] != 1 {
		t.Fatalf("tap checked %d restock messages against the contract, want 1 (%v)", counts["restock"], counts)
	}
}
