package cabsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/fsm"
	"github.com/bangfu/cabinet/firmware/ota"
	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// otaBuilds are the releases the update tests offer: the cabinet stamped
// 0.4.0, a build that crashes at start and one that hangs.
var otaBuilds struct {
	once              sync.Once
	dir               string
	good, crash, hang string
	hangReady         string
	err               error
}

func buildOTA(t *testing.T) {
	t.Helper()
	otaBuilds.once.Do(func() {
		otaBuilds.dir, otaBuilds.err = os.MkdirTemp("", "cabsim-ota-")
		if otaBuilds.err != nil {
			return
		}
		build := func(out string, args ...string) string {
			p := filepath.Join(otaBuilds.dir, out)
			cmd := exec.Command("go", append([]string{"build", "-o", p}, args...)...)
			if b, err := cmd.CombinedOutput(); err != nil && otaBuilds.err == nil {
				otaBuilds.err = err
				t.Logf("%s", b)
			}
			return p
		}
		otaBuilds.good = build("cabinet-0.4.0", "-ldflags", "-X github.com/bangfu/cabinet/firmware.FW=0.4.0", cabinetPkg)
		otaBuilds.crash = build("otacrash", "./testdata/otacrash")
		otaBuilds.hang = build("otahang", "./testdata/otahang")
		otaBuilds.hangReady = build("otahangready", "./testdata/otahangready")
	})
	if otaBuilds.err != nil {
		t.Fatal(otaBuilds.err)
	}
}

// otaTimeouts gives the firmware processes started by t (and its
// subtests) systemd's start timeout and watchdog at a few seconds.
func otaTimeouts(t *testing.T) {
	t.Cleanup(SetServiceTimeouts(5*time.Second, 3*time.Second))
}

// otaRig is one process-mode cabinet with a release key and a mirror.
type otaRig struct {
	*harness
	key   ed25519.PrivateKey
	files map[string][]byte
	srv   *httptest.Server
	mu    sync.Mutex
	gate  chan struct{} // when set, the mirror answers once it is closed
}

func newOTARig(t *testing.T) *otaRig {
	buildOTA(t)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &otaRig{key: key, files: map[string][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		b, ok := r.files[req.URL.Path]
		gate := r.gate
		r.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-req.Context().Done():
				return
			}
		}
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(r.srv.Close)
	s := startProcessSim(t, Options{Seed: 51, Configure: func(c *config.Config) {
		cutConfig(c)
		c.ReleaseKeys = map[string]string{"rel-1": msg.EncodeKey(pub)}
		c.UpdateHealthS = 15
		c.UpdateMaxStarts = 2
	}})
	r.harness = newHarness(t, s, s.Cabinets()[0].ID, 3*time.Minute)
	return r
}

// bundle signs the file at path as version and serves serve (the file's
// own bytes when nil).
func (r *otaRig) bundle(path, version, min string, serve []byte) msg.Bundle {
	r.t.Helper()
	b, err := os.ReadFile(path)
	r.must(err)
	h := sha256.Sum256(b)
	if serve == nil {
		serve = b
	}
	name := "/" + version + "-" + filepath.Base(path)
	r.mu.Lock()
	r.files[name] = serve
	r.mu.Unlock()
	return ota.Sign(msg.Bundle{Version: version, URL: r.srv.URL + name, Size: int64(len(b)), SHA256: hex.EncodeToString(h[:]), MinVersion: min},
		"rel-1", r.key)
}

func (r *otaRig) update(b msg.Bundle) msg.Reply {
	r.t.Helper()
	p := r.s.Platform
	cmd := p.NewCommand(msg.CmdUpdate, r.id)
	cmd.Bundle = &b
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	rep, err := p.Send(ctx, cmd, p.Signer())
	r.must(err)
	return rep
}

// heldUpdate sends an update whose download the mirror holds until
// release is called, so the test can set the scene for the switch.
func (r *otaRig) heldUpdate(b msg.Bundle) (release func()) {
	r.t.Helper()
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	if rep := r.update(b); !rep.OK {
		r.t.Fatalf("update refused: %+v", rep)
	}
	return func() { close(gate) }
}

func (r *otaRig) waitAlarm(kind string) msg.Alarm {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 90*time.Second)
	defer cancel()
	a, err := r.s.Platform.WaitAlarm(ctx, r.id, kind)
	if err != nil {
		r.t.Fatalf("no %s alarm: %v", kind, err)
	}
	return a.Alarm
}

// fw is the version of the cabinet's newest heartbeat.
func (r *otaRig) fw() string {
	var fw string
	for _, m := range r.s.Platform.Received() {
		if m.CabinetID == r.id && m.Leaf == "heartbeat" {
			var hb msg.Heartbeat
			if json.Unmarshal(m.Payload, &hb) == nil {
				fw = hb.FW
			}
		}
	}
	return fw
}

func (r *otaRig) waitFW(v string) {
	r.t.Helper()
	r.until(60*time.Second, "heartbeat fw "+v, func() bool { return r.fw() == v })
}

// sale makes one purchase and returns its session id.
func (r *otaRig) sale() string {
	r.t.Helper()
	r.waitReady()
	cmd, reply := r.unlock()
	r.must(<-reply)
	if !r.openDoor(5 * time.Second) {
		r.t.Fatal("door did not open")
	}
	r.must(r.s.Take(r.id, 1, "NM-0003", 1))
	// The shopper closes the door once the firmware has seen it open.
	r.until(30*time.Second, "the session to see the door open", func() bool {
		st, ok := r.c.Status()
		return ok && st.Session != nil && st.Session.State == fsm.DoorOpen
	})
	r.door("close")
	r.settle(60 * time.Second)
	return cmd.SessionID
}

// books checks that both sales are at the platform once each.
func (r *otaRig) books(sids ...string) {
	r.t.Helper()
	r.settle(60 * time.Second)
	r.must(r.checkBooks())
	for _, sid := range sids {
		if _, ok := r.saleOf(sid); !ok {
			r.t.Fatalf("sale of session %s lost", sid)
		}
	}
	if n := len(r.sales()); n != len(sids) {
		r.t.Fatalf("platform holds %d sales, want %d", n, len(sids))
	}
}

func (r *otaRig) stateOf() ota.State {
	st, err := ota.Load(ota.StatePath(r.c.Dir))
	r.must(err)
	return st
}

func TestUpdateGood(t *testing.T) {
	otaTimeouts(t)
	r := newOTARig(t)
	r.waitReady()
	before := r.sale()
	rep := r.update(r.bundle(otaBuilds.good, "0.4.0", "0.3.0", nil))
	if !rep.OK {
		t.Fatalf("update refused: %s %s", rep.Error, rep.Detail)
	}
	a := r.waitAlarm(msg.AlarmUpdateInstalled)
	if a.Detail["to"] != "0.4.0" {
		t.Fatalf("update_installed %v", a.Detail)
	}
	r.waitFW("0.4.0")
	after := r.sale()
	r.books(before, after)
	st := r.stateOf()
	if st.Trial != nil || st.Current.Version != "0.4.0" || st.Floor != "0.3.0" {
		t.Fatalf("state %+v", st)
	}
	// Below the floor now: refused, naming both versions.
	rep = r.update(r.bundle(otaBuilds.good, "0.2.9", "", nil))
	if rep.OK || !strings.Contains(rep.Detail, "0.2.9") || !strings.Contains(rep.Detail, "0.4.0") {
		t.Fatalf("downgrade: %+v", rep)
	}
}

func TestUpdateRefused(t *testing.T) {
	otaTimeouts(t)
	r := newOTARig(t)
	r.waitReady()
	before := r.sale()
	// Bad signature: refused before anything is downloaded.
	b := r.bundle(otaBuilds.good, "0.4.0", "", nil)
	b.SHA256 = strings.Repeat("0", 64)
	if rep := r.update(b); rep.OK || !strings.Contains(rep.Detail, "signature") {
		t.Fatalf("bad signature: %+v", rep)
	}
	// Downgrade below the running version.
	if rep := r.update(r.bundle(otaBuilds.good, "0.2.0", "", nil)); rep.OK || !strings.Contains(rep.Detail, "downgrade") {
		t.Fatalf("downgrade: %+v", rep)
	}
	// Corrupt bundle: accepted, downloaded, refused at the hash.
	good, err := os.ReadFile(otaBuilds.good)
	r.must(err)
	bad := append([]byte("X"), good[1:]...)
	if rep := r.update(r.bundle(otaBuilds.good, "0.4.0", "", bad)); !rep.OK {
		t.Fatalf("corrupt bundle refused up front: %+v", rep)
	}
	a := r.waitAlarm(msg.AlarmUpdateFailed)
	if !strings.Contains(a.Detail["reason"].(string), "sha256") {
		t.Fatalf("update_failed %v", a.Detail)
	}
	st := r.stateOf()
	if st.Trial != nil || st.Current.Slot == ota.A || st.Current.Slot == ota.B || st.Download != nil {
		t.Fatalf("something switched: %+v", st)
	}
	after := r.sale()
	r.books(before, after)
	if fw := r.fw(); fw != "0.3.0" {
		t.Fatalf("fw %s", fw)
	}
}

func TestUpdateRollsBack(t *testing.T) {
	otaTimeouts(t)
	for _, tc := range []struct{ name, bin string }{{"crash at start", "crash"}, {"hang at start", "hang"},
		{"hang after ready", "hangReady"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newOTARig(t)
			r.waitReady()
			before := r.sale()
			bin := map[string]string{"crash": otaBuilds.crash, "hang": otaBuilds.hang, "hangReady": otaBuilds.hangReady}[tc.bin]
			if rep := r.update(r.bundle(bin, "0.4.0", "", nil)); !rep.OK {
				t.Fatalf("update refused: %+v", rep)
			}
			a := r.waitAlarm(msg.AlarmUpdateRolledBack)
			if a.Detail["from"] != "0.4.0" || a.Detail["to"] != "0.3.0" || a.Severity != msg.SevWarning {
				t.Fatalf("update_rolled_back %v", a.Detail)
			}
			t.Logf("rolled back: %v", a.Detail["reason"])
			after := r.sale()
			r.books(before, after)
			if st := r.stateOf(); st.Trial != nil || st.Current.Slot != ota.Factory {
				t.Fatalf("state %+v", st)
			}
		})
	}
}

// TestUpdatePowerCut cuts the power at every step of an update: the update
// still ends committed once the power is back, and no sale is lost.
func TestUpdatePowerCut(t *testing.T) {
	otaTimeouts(t)
	for _, fp := range []string{failpoint.OTADownloading, failpoint.OTAInstalled, failpoint.OTASwitched,
		failpoint.OTATrialStart, failpoint.OTACommitted} {
		t.Run(fp, func(t *testing.T) {
			t.Parallel() // independent cabinets, brokers and mirrors; the wait is mostly restarts
			r := newOTARig(t)
			r.waitReady()
			before := r.sale()
			r.arm(fp)
			r.waitReady()
			if rep := r.update(r.bundle(otaBuilds.good, "0.4.0", "", nil)); !rep.OK {
				t.Fatalf("update refused: %+v", rep)
			}
			r.waitCut()
			r.power("restore")
			a := r.waitAlarm(msg.AlarmUpdateInstalled)
			if a.Detail["to"] != "0.4.0" {
				t.Fatalf("update_installed %v", a.Detail)
			}
			r.waitFW("0.4.0")
			for _, al := range r.s.Platform.Alarms() {
				if al.CabinetID == r.id && al.Kind == msg.AlarmUpdateRolledBack {
					t.Fatalf("a power cut counted as a failure: %v", al.Detail)
				}
			}
			after := r.sale()
			r.books(before, after)
		})
	}
}

// In-process mode has no service to restart into another binary: update
// is refused, plainly.
func TestUpdateInProcessRefused(t *testing.T) {
	s := startSim(t, Options{Seed: 51, Configure: cutConfig})
	h := newHarness(t, s, s.Cabinets()[0].ID, time.Minute)
	h.waitReady()
	p := s.Platform
	cmd := p.NewCommand(msg.CmdUpdate, h.id)
	cmd.Bundle = &msg.Bundle{Version: "0.4.0", URL: "http://127.0.0.1:1/x", Size: 1, SHA256: strings.Repeat("0", 64), KeyID: "k", Signature: "x"}
	rep, err := p.Send(h.ctx, cmd, p.Signer())
	h.must(err)
	if rep.OK || !strings.Contains(rep.Detail, "updates need the cabinet service (process mode)") {
		t.Fatalf("in-process update: %+v", rep)
	}
}

// A cabinet whose broker link is down when it switches does not need the
// broker to prove itself: the new version commits offline, and reports it
// once the link is back.
func TestUpdateOffline(t *testing.T) {
	otaTimeouts(t)
	r := newOTARig(t)
	r.waitReady()
	before := r.sale()
	release := r.heldUpdate(r.bundle(otaBuilds.good, "0.4.0", "", nil))
	r.must(r.s.Network(r.id, "down"))
	r.until(30*time.Second, "the link to drop", func() bool { st, ok := r.c.Status(); return ok && !st.Connected })
	release()
	r.until(60*time.Second, "the offline commit", func() bool {
		st, err := ota.Load(ota.StatePath(r.c.Dir))
		return err == nil && st.Current.Version == "0.4.0" && st.Trial == nil
	})
	r.must(r.s.Network(r.id, "up"))
	a := r.waitAlarm(msg.AlarmUpdateInstalled)
	if a.Detail["to"] != "0.4.0" {
		t.Fatalf("update_installed %v", a.Detail)
	}
	r.waitFW("0.4.0")
	after := r.sale()
	r.books(before, after)
}

// A new version that starts and runs but never proves itself healthy —
// here a shelf's load cell is dead from the switch on, so "scales
// reading" never holds — rolls itself back once update_health_s has
// passed, and the previous version serves again.
func TestUpdateUnhealthyRollsBack(t *testing.T) {
	otaTimeouts(t)
	r := newOTARig(t)
	r.waitReady()
	before := r.sale()
	release := r.heldUpdate(r.bundle(otaBuilds.good, "0.4.0", "", nil))
	r.must(r.c.HW.FaultScale(2, "dead"))
	release()
	a := r.waitAlarm(msg.AlarmUpdateRolledBack)
	reason, _ := a.Detail["reason"].(string)
	if a.Detail["from"] != "0.4.0" || a.Detail["to"] != "0.3.0" || !strings.Contains(reason, "not healthy within") {
		t.Fatalf("update_rolled_back %v", a.Detail)
	}
	t.Logf("rolled back: %s", reason)
	if st := r.stateOf(); st.Trial != nil || st.Current.Slot != ota.Factory || st.Current.Version != "0.3.0" {
		t.Fatalf("state %+v", st)
	}
	r.must(r.c.HW.FaultScale(2, ""))
	r.waitFW("0.3.0")
	after := r.sale()
	r.books(before, after)
}
