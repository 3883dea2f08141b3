package firmware

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// A ledger found corrupt at start-up is kept aside, a new one records the
// fault, and shoppers are refused until a technician clears it.
func TestCorruptLedgerAtStart(t *testing.T) {
	r := newRig(t)
	r.close()
	path := filepath.Join(r.cfg.DataDir, "ledger.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8192 && i < len(b); i++ {
		b[i] = 0xAB // both meta pages
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.alarms(msg.AlarmStorageFault); len(got) != 1 || got[0].Severity != msg.SevCritical {
		t.Fatalf("storage_fault alarms %+v", got)
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("aside files %v", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); string(kept) != string(b) {
		t.Fatal("the corrupt ledger was not kept as it was")
	}
	r.d.step(r.ctx)
	if m := r.d.Status().Mode; m != msg.ModeOutOfService {
		t.Fatalf("mode %q with a storage fault", m)
	}
	cmd := r.unlockCmd()
	r.send(cmd)
	if rep := r.reply(cmd.ID, msg.ErrOutOfService); !strings.Contains(rep.Detail, "storage fault") {
		t.Fatalf("detail %q", rep.Detail)
	}
	r.noSession()

	// The technician clears it; after a restart the cabinet sells again.
	if err := r.d.ledger.ClearFault(); err != nil {
		t.Fatal(err)
	}
	r.restart()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.waitIdle()
}

// A full disk: writes fail, the cabinet stops taking shoppers and says so,
// and it comes back by itself once there is room again.
func TestFullDisk(t *testing.T) {
	r := newRig(t)
	r.close()
	r.ledgerMax = 512 << 10
	r.start()
	if err := r.d.recover(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.waitIdle()
	// Fill the ledger with alarms until a commit fails.
	big := map[string]any{"pad": strings.Repeat("x", 2000)}
	var ids []uint64
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("the ledger never filled")
		}
		if err := r.d.ledger.Enqueue(nil, r.d.alarmItem("filler", msg.SevInfo, big)); err != nil {
			break
		}
	}
	if r.d.ledger.WriteErr() == nil {
		t.Fatal("no write error recorded")
	}
	r.d.store.probedAt = time.Time{}
	r.d.step(r.ctx)
	room, _ := r.d.ledger.Headroom()
	t.Logf("headroom %d, write err %v", room, r.d.ledger.WriteErr())
	if m := r.d.Status().Mode; m != msg.ModeOutOfService {
		t.Fatalf("mode %q on a full disk", m)
	}
	cmd := r.unlockCmd()
	r.send(cmd)
	r.noSession()
	if r.d.ledger.Seen(cmd.ID) {
		t.Fatal("the refused unlock entered the replay cache")
	}
	// Make room: the platform's acks (here: removing the fillers) free
	// pages; the next probe finds the storage writable again.
	entries, err := r.d.ledger.Outbox.Pending(100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == outbox.KindAlarm && strings.Contains(string(e.Payload), `"filler"`) {
			ids = append(ids, e.ID)
		}
	}
	for _, id := range ids {
		if err := r.d.ledger.Outbox.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	r.d.store.probedAt = time.Time{}
	stepUntil(t, r.d, func() bool { return r.d.ledger.WriteErr() == nil }, 5*time.Second)
	r.waitIdle()
}
