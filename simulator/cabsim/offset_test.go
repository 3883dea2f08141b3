package cabsim

import (
	"testing"
)

// Two simulators on one broker, the second with a cabinet offset, run
// cabinets whose ids do not clash, and each keeps its cabinets' keys in
// its state directory across a restart.
func TestCabinetOffset(t *testing.T) {
	a := startSim(t, Options{Cabinets: 2, DataDir: t.TempDir()})
	dir := t.TempDir()
	b := startSim(t, Options{Cabinets: 2, CabinetOffset: 2, BrokerURL: a.Broker.URL(), DataDir: dir})
	ids := map[string]bool{}
	for _, s := range []*Sim{a, b} {
		for _, c := range s.Cabinets() {
			if ids[c.ID] {
				t.Fatalf("cabinet %s twice on one broker", c.ID)
			}
			ids[c.ID] = true
		}
	}
	if got := b.Cabinets()[0].ID; got != CabinetID(2) || got != "NM-150102-0009" {
		t.Fatalf("first cabinet of the offset simulator is %s, want %s", got, CabinetID(2))
	}
	key := b.Cabinets()[1].PublicKey
	b.Close()
	b2 := startSim(t, Options{Cabinets: 2, CabinetOffset: 2, BrokerURL: a.Broker.URL(), DataDir: dir})
	if c := b2.Cabinets()[1]; c.ID != CabinetID(3) || !c.PublicKey.Equal(key) {
		t.Fatalf("after a restart cabinet %s has another key", c.ID)
	}
}
