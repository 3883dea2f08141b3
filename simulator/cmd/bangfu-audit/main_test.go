package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// archive builds a mosquitto_sub -v archive of two cabinets' traffic.
type archive struct {
	t       *testing.T
	signers map[string]msg.Signer
	lines   []string
}

func newArchive(t *testing.T, cabs ...string) *archive {
	a := &archive{t: t, signers: map[string]msg.Signer{}}
	for _, c := range cabs {
		seed := sha256.Sum256([]byte("audit test key " + c))
		a.signers[c] = msg.Signer{Kid: c, Key: ed25519.NewKeyFromSeed(seed[:])}
	}
	return a
}

func (a *archive) keysFile() string {
	var b strings.Builder
	b.WriteString("# cabinets registered at provisioning\n\n")
	for id, s := range a.signers {
		if id == "NM-150102-0008" {
			// as cabsim prints it
			fmt.Fprintf(&b, "cabsim: cabinet       %s key %s\n", id, msg.EncodeKey(s.Key.Public().(ed25519.PublicKey)))
			continue
		}
		fmt.Fprintf(&b, "%s %s  # site 1\n", id, msg.EncodeKey(s.Key.Public().(ed25519.PublicKey)))
	}
	path := filepath.Join(a.t.TempDir(), "cabinets.keys")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		a.t.Fatal(err)
	}
	return path
}

// sealed returns the topic line of a signed message.
func (a *archive) sealed(cab, leaf string, body any) string {
	data, err := a.signers[cab].Seal(body)
	if err != nil {
		a.t.Fatal(err)
	}
	return msg.DefaultPrefix + "/c/" + cab + "/" + leaf + " " + string(data)
}

func (a *archive) add(lines ...string) { a.lines = append(a.lines, lines...) }

func (a *archive) file() string {
	path := filepath.Join(a.t.TempDir(), "traffic.txt")
	if err := os.WriteFile(path, []byte(strings.Join(a.lines, "\n")+"\n"), 0o600); err != nil {
		a.t.Fatal(err)
	}
	return path
}

var t0 = time.Date(2026, 12, 4, 14, 15, 3, 0, time.UTC) // 22:15:03 in China

func sale(cab string, seq uint64, qty int) msg.Sale {
	l := msg.SaleLine{SKU: "CQ-0303", CertNo: "FP-500242-2024-0061", Name: "酉阳青花椒 250克", SupplierID: "S-500242-006",
		Supplier: "酉阳县桃花源花椒种植专业合作社", OriginCode: "500242", Shelf: 3, Qty: qty, UnitPriceFen: 3600, AmountFen: int64(qty) * 3600}
	at := t0.Add(time.Duration(seq) * time.Minute)
	return msg.Sale{SaleID: fmt.Sprintf("%s-%03d", cab, seq), Seq: seq, CabinetID: cab, SessionID: "s",
		Buyer: msg.Buyer{Ref: "u", Kind: msg.BuyerPerson}, OpenedAt: msg.At(at.Add(-time.Minute)), ClosedAt: msg.At(at),
		SettledAt: msg.At(at), Status: msg.SaleExact, Lines: []msg.SaleLine{l}, TotalFen: l.AmountFen,
		Evidence: []msg.Evidence{}, CatalogVersion: 1, FW: "1.2.0"}
}

func hbDoc(seq uint64, amount int64, at time.Time) msg.Heartbeat {
	return msg.Heartbeat{At: msg.At(at), FW: "1.2.0", Mode: msg.ModeIdle, Door: "closed", Shelves: []msg.HeartbeatShelf{},
		Counters: msg.Counters{Sales: seq, LastSeq: seq, AmountFen: amount}}
}

// healthy is five sales of cabinet 7 and two of cabinet 8, with state,
// a platform catalog and ack, an alarm and heartbeats.
func healthy(t *testing.T) *archive {
	a := newArchive(t, "NM-150102-0007", "NM-150102-0008")
	a.add(`bangfu/v1/c/NM-150102-0007/state {"online":true,"fw":"1.2.0","at":"2026-12-04T14:00:00.000Z"}`,
		`bangfu/v1/catalog {"v":1,"kid":"plat-sim-1","alg":"Ed25519","payload":"e30","sig":"`+strings.Repeat("A", 86)+`"}`)
	var amount int64
	for seq := uint64(1); seq <= 5; seq++ {
		s := sale("NM-150102-0007", seq, int(seq))
		amount += s.TotalFen
		a.add(a.sealed("NM-150102-0007", "sale", s))
		a.add(msg.DefaultPrefix + `/c/NM-150102-0007/ack {"v":1,"kid":"plat-sim-1","alg":"Ed25519","payload":"e30","sig":"x"}`)
	}
	a.add(a.sealed("NM-150102-0007", "heartbeat", hbDoc(5, amount, t0.Add(time.Hour))))
	a.add(a.sealed("NM-150102-0007", "alarm", msg.Alarm{AlarmID: "a-1", Kind: msg.AlarmDoorForced, Severity: msg.SevCritical,
		At: msg.At(t0), Detail: map[string]any{"door": 1}}))
	a.add(a.sealed("NM-150102-0008", "sale", sale("NM-150102-0008", 1, 1)),
		a.sealed("NM-150102-0008", "sale", sale("NM-150102-0008", 2, 1)),
		a.sealed("NM-150102-0008", "heartbeat", hbDoc(1, 3600, t0.Add(90*time.Second))))
	return a
}

func runAudit(t *testing.T, args ...string) (code int, form [][]string, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	data := out.Bytes()
	if code != 2 {
		if !bytes.HasPrefix(data, []byte("\uFEFF")) {
			t.Fatalf("form without a byte-order mark: %.40q (stderr %s)", data, errb.String())
		}
		var err error
		if form, err = csv.NewReader(bytes.NewReader(data[3:])).ReadAll(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(form[0], platform.ReportHeader) {
			t.Fatalf("header %q", form[0])
		}
	}
	t.Logf("exit %d, stderr:\n%s", code, errb.String())
	return code, form, errb.String()
}

// TestAuditHealthy: a clean archive passes, and its form is the
// platform's report writer's over the same sales.
func TestAuditHealthy(t *testing.T) {
	a := healthy(t)
	code, form, stderr := runAudit(t, "-keys", a.keysFile(), a.file())
	if code != 0 || !strings.Contains(stderr, "everything checks") {
		t.Fatalf("exit %d", code)
	}
	if len(form) != 1+7 {
		t.Fatalf("%d rows, want 7", len(form)-1)
	}
	var total int64
	for i, r := range form[1:] {
		var y, f int64
		fmt.Sscanf(r[5], "%d.%d", &y, &f)
		total += y*100 + f
		if r[0] != fmt.Sprint(i+1) || r[3] != platform.BuyerPerson || r[8] != "500242" || r[11] != msg.SaleExact {
			t.Errorf("row %q", r)
		}
	}
	if total != 3600*(1+2+3+4+5+1+1) || form[1][6] != "2026-12-04 22:16:03" {
		t.Fatalf("total %d fen, first time %q", total, form[1][6])
	}
	// -cabinet and -from narrow the form only.
	code, form, _ = runAudit(t, "-keys", a.keysFile(), "-cabinet", "NM-150102-0007", "-from", "2026-12-04T22:18:00+08:00", a.file())
	if code != 0 || len(form) != 1+3 || form[1][9] != "NM-150102-0007" || form[1][6] != "2026-12-04 22:18:03" {
		t.Fatalf("exit %d, filtered form %q", code, form)
	}
	// An identical redelivery is counted once; only -strict fails on it.
	a.add(a.lines[4])
	path := a.file()
	code, form, stderr = runAudit(t, "-keys", a.keysFile(), path)
	if code != 0 || len(form) != 1+7 || !strings.Contains(stderr, "redelivered") {
		t.Fatalf("redelivery: exit %d, %d rows", code, len(form)-1)
	}
	if code, _, _ = runAudit(t, "-keys", a.keysFile(), "-strict", path); code != 1 {
		t.Fatalf("-strict: exit %d", code)
	}
}

// tamper rewrites a signed line's payload, keeping its signature.
func tamper(t *testing.T, line string, edit func(*msg.Sale)) string {
	topic, env, _ := strings.Cut(line, " ")
	var e msg.Envelope
	if err := json.Unmarshal([]byte(env), &e); err != nil {
		t.Fatal(err)
	}
	body, err := base64.RawURLEncoding.DecodeString(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var s msg.Sale
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	edit(&s)
	body, _ = json.Marshal(s)
	e.Payload = base64.RawURLEncoding.EncodeToString(body)
	out, _ := json.Marshal(e)
	return topic + " " + string(out)
}

// TestAuditFindsProblems: a tampered sale, a missing one, a conflicting
// duplicate, a stranger's message, a malformed line and counters that
// disagree are each reported, the exit status is 1, and the form holds
// the verified sales only.
func TestAuditFindsProblems(t *testing.T) {
	a := healthy(t)
	keys := a.keysFile()
	stranger := newArchive(t, "NM-150102-0099")
	// Lines 2,4,6,8,10 are cabinet 7's sales 1–5 (line 0 state, 1 catalog).
	a.lines[8] = "" // seq 4 lost
	a.add(tamper(t, a.lines[2], func(s *msg.Sale) { s.Lines[0].Qty, s.Lines[0].AmountFen, s.TotalFen = 9, 9*3600, 9*3600 }))
	a.add(a.sealed("NM-150102-0008", "sale", func() msg.Sale { s := sale("NM-150102-0008", 2, 1); s.SaleID = "other"; return s }()))
	a.add(stranger.sealed("NM-150102-0099", "sale", sale("NM-150102-0099", 1, 1)))
	a.add("bangfu/v1/c/NM-150102-0007/sale")
	a.add(a.sealed("NM-150102-0008", "heartbeat", hbDoc(1, 3600, t0))) // older than the first: fine
	a.add(a.sealed("NM-150102-0008", "heartbeat", hbDoc(0, 0, t0.Add(2*time.Hour))))
	code, form, stderr := runAudit(t, "-keys", keys, a.file())
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"tampered: sale: msg: signature does not verify",
		"NM-150102-0007: missing: sale seq 4 missing",
		"duplicate: seq 2 given to two sales: NM-150102-0008-002 and other",
		"unregistered: sale from a cabinet with no key",
		"malformed: no space between topic and payload",
		"counters: heartbeat counters went backwards",
		"NM-150102-0007: counters: the heartbeat of 2026-12-04T15:15:03Z claims 5 sales (seq ≤ 5) worth 54000 fen; the archive holds 4 worth 39600 fen",
		"problems (1 counters-",
	} {
		if want == "problems (1 counters-" {
			if !strings.Contains(stderr, "problems (") || !strings.Contains(stderr, "1 tampered") || !strings.Contains(stderr, "1 missing") {
				t.Errorf("no summary of problem kinds")
			}
			continue
		}
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
	// The form: cabinet 7's verified sales 1, 2, 3, 5 and cabinet 8's two,
	// never the tampered copy (9 units) or the stranger's.
	if len(form) != 1+6 {
		t.Fatalf("%d rows, want 6", len(form)-1)
	}
	for _, r := range form[1:] {
		if r[4] == "9" || r[9] == "NM-150102-0099" || r[10] == "other" {
			t.Fatalf("unverified sale on the form: %q", r)
		}
	}
}

// TestAuditUsage: no keys, a bad keys file or an unreadable archive is
// exit 2.
func TestAuditUsage(t *testing.T) {
	a := healthy(t)
	bad := filepath.Join(t.TempDir(), "bad.keys")
	os.WriteFile(bad, []byte("NM-150102-0007 not-a-key\n"), 0o600)
	for _, args := range [][]string{
		{a.file()},
		{"-keys", bad, a.file()},
		{"-keys", a.keysFile(), filepath.Join(t.TempDir(), "none.txt")},
		{"-keys", a.keysFile(), "-from", "yesterday", a.file()},
	} {
		if code, _, _ := runAudit(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestAuditPlatformMessages: with -platform-keys the platform's side of
// the archive is checked as well — its signatures, that each command,
// planogram and bound ack names the cabinet of its topic, and that no ack
// releases sales the archive never saw; without it those lines are only
// counted.
func TestAuditPlatformMessages(t *testing.T) {
	seed := sha256.Sum256([]byte("audit test platform key"))
	plat := msg.Signer{Kid: "plat-1", Key: ed25519.NewKeyFromSeed(seed[:])}
	platLine := func(topic string, body any) string {
		data, err := plat.Seal(body)
		if err != nil {
			t.Fatal(err)
		}
		return msg.DefaultPrefix + topic + " " + string(data)
	}
	keysOf := func(kid string, s msg.Signer) string {
		path := filepath.Join(t.TempDir(), "platform.keys")
		os.WriteFile(path, []byte("# the platform\ncabsim: platform key  "+kid+"="+msg.EncodeKey(s.Key.Public().(ed25519.PublicKey))+"\n"), 0o600)
		return path
	}
	platKeys := keysOf("plat-1", plat)
	cab7, cab8 := "NM-150102-0007", "NM-150102-0008"
	build := func() *archive {
		a := newArchive(t, cab7, cab8)
		a.add(platLine("/catalog", msg.Catalog{Version: 1, Products: []msg.Product{}}))
		a.add(platLine("/c/"+cab7+"/planogram", msg.Planogram{Version: 1, CabinetID: cab7, Shelves: []msg.PlanogramShelf{}}))
		for seq := uint64(1); seq <= 3; seq++ {
			a.add(platLine("/c/"+cab7+"/cmd", msg.Command{ID: fmt.Sprintf("cmd-%d", seq), Type: msg.CmdUnlock, CabinetID: cab7,
				IssuedAt: msg.At(t0), ExpiresAt: msg.At(t0.Add(time.Minute)), SessionID: "s"}))
			a.add(a.sealed(cab7, "sale", sale(cab7, seq, 1)))
			a.add(platLine("/c/"+cab7+"/ack", msg.Ack{SalesUptoSeq: seq, At: msg.At(t0), CabinetID: cab7}))
		}
		a.add(a.sealed(cab8, "sale", sale(cab8, 1, 1)))
		a.add(platLine("/c/"+cab8+"/ack", msg.Ack{SalesUptoSeq: 1, At: msg.At(t0)})) // unbound: older firmware
		return a
	}

	a := build()
	code, form, stderr := runAudit(t, "-keys", a.keysFile(), "-platform-keys", platKeys, a.file())
	if code != 0 || len(form) != 1+4 || !strings.Contains(stderr, "1 platform catalog") || !strings.Contains(stderr, "3 platform cmd") ||
		!strings.Contains(stderr, "4 platform ack") || !strings.Contains(stderr, "1 platform planogram") {
		t.Fatalf("clean archive: exit %d, %d rows", code, len(form)-1)
	}
	// Without the platform's keys the same lines are counted, not checked.
	if code, _, stderr = runAudit(t, "-keys", a.keysFile(), a.file()); code != 0 || !strings.Contains(stderr, "9 lines not checked") {
		t.Fatalf("without -platform-keys: exit %d", code)
	}
	// Another platform key: every platform line fails.
	other := msg.Signer{Kid: "plat-1", Key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}
	if code, _, stderr = runAudit(t, "-keys", a.keysFile(), "-platform-keys", keysOf("plat-1", other), a.file()); code != 1 ||
		!strings.Contains(stderr, "9 tampered") {
		t.Fatalf("wrong platform key: exit %d", code)
	}

	a = build()
	// An ack's payload edited after signing; an ack for cabinet 8 replayed
	// on cabinet 7's topic; a command for cabinet 8 on cabinet 7's topic;
	// an ack of cabinet 8's sales that never came.
	topic, env, _ := strings.Cut(platLine("/c/"+cab7+"/ack", msg.Ack{SalesUptoSeq: 2, At: msg.At(t0), CabinetID: cab7}), " ")
	var e msg.Envelope
	if err := json.Unmarshal([]byte(env), &e); err != nil {
		t.Fatal(err)
	}
	e.Payload = base64.RawURLEncoding.EncodeToString([]byte(`{"sales_upto_seq":99,"at":"2026-12-04T14:15:03.000Z","cabinet_id":"` + cab7 + `"}`))
	forged, _ := json.Marshal(e)
	a.add(topic+" "+string(forged),
		platLine("/c/"+cab7+"/ack", msg.Ack{SalesUptoSeq: 1, At: msg.At(t0), CabinetID: cab8}),
		platLine("/c/"+cab7+"/cmd", msg.Command{ID: "cmd-x", Type: msg.CmdReboot, CabinetID: cab8,
			IssuedAt: msg.At(t0), ExpiresAt: msg.At(t0.Add(time.Minute))}),
		platLine("/c/"+cab8+"/ack", msg.Ack{SalesUptoSeq: 5, At: msg.At(t0), CabinetID: cab8}))
	code, _, stderr = runAudit(t, "-keys", a.keysFile(), "-platform-keys", platKeys, a.file())
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"tampered: platform ack: msg: signature does not verify",
		"misdirected: platform ack naming cabinet \"" + cab8 + "\"",
		"misdirected: platform cmd naming cabinet \"" + cab8 + "\"",
		cab8 + ": ack: the platform acked sales up to seq 5; the archive holds this cabinet's sales up to seq 1 only",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
	if strings.Contains(stderr, "up to seq 99") {
		t.Error("the forged ack counted as the platform's")
	}
	// A platform keys file that is not one is a usage error.
	bad := filepath.Join(t.TempDir(), "bad.keys")
	os.WriteFile(bad, []byte("plat-1 not-a-key\n"), 0o600)
	if code, _, _ := runAudit(t, "-keys", a.keysFile(), "-platform-keys", bad, a.file()); code != 2 {
		t.Fatalf("bad platform keys file: exit %d, want 2", code)
	}
}
