package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// fbRig is a freshly flashed cabinet: a boot partition, /etc/bangfu as the
// package installs it (the sample config, a board file) and a data dir
// that does not exist yet.
type fbRig struct {
	boot, etc, data string
	host            boardHost
	pub             ed25519.PublicKey
	sample          []byte // the config before firstboot
}

func newFbRig(t *testing.T) *fbRig {
	t.Helper()
	dir := t.TempDir()
	r := &fbRig{boot: filepath.Join(dir, "boot"), etc: filepath.Join(dir, "etc"), data: filepath.Join(dir, "data")}
	provMust(t, os.MkdirAll(filepath.Join(r.etc, "boards"), 0o755))
	provMust(t, os.MkdirAll(r.boot, 0o755))
	sample, err := os.ReadFile(filepath.Join("..", "..", "..", "packaging", "cabinet.json"))
	provMust(t, err)
	r.sample = sample
	provMust(t, os.WriteFile(filepath.Join(r.etc, "cabinet.json"), sample, 0o644))
	provMust(t, os.WriteFile(filepath.Join(r.etc, "boards", "bench.yaml"), fmt.Appendf(nil, benchBoard, "gpiochip0"), 0o644))
	r.pub, _, err = ed25519.GenerateKey(rand.Reader)
	provMust(t, err)
	r.host = (&fakeHost{pins: map[string]*recPin{}}).host(t)
	return r
}

func (r *fbRig) cfg() string { return filepath.Join(r.etc, "cabinet.json") }

func (r *fbRig) bootPath() string { return filepath.Join(r.boot, fbBootFile) }

// bootText is a boot file as a technician types it in Notepad: a byte
// order mark, CRLF, comments, spaces, a key in capitals.
func (r *fbRig) bootText(broker string) string {
	return "\ufeff# Bangfu cabinet, Hohhot station 3\r\n\r\nCabinet_ID = " + provID + "\r\n" +
		"broker=" + broker + "\r\n" +
		"; the platform's key\r\nplatform_key = plat-2026a:" + msg.EncodeKey(r.pub) + "\r\n" +
		"board = \"bench\"\r\n"
}

func (r *fbRig) writeBoot(t *testing.T, text string) {
	t.Helper()
	provMust(t, os.WriteFile(r.bootPath(), []byte(text), 0o644))
}

func (r *fbRig) run(args ...string) (int, string, string) {
	var out, errs bytes.Buffer
	base := []string{"--boot", r.boot, "--etc", r.etc, "--data-dir", r.data, "--show", "0"}
	code := runFirstbootHost(append(base, args...), r.host, &out, &errs)
	return code, out.String(), errs.String()
}

// snapshot is every file under the rig, by path: what "nothing changed"
// compares.
func (r *fbRig) snapshot(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, root := range []string{r.boot, r.etc, r.data} {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if os.IsNotExist(err) && p == root {
				return filepath.SkipDir
			}
			if err != nil {
				return err
			}
			switch {
			case d.Type()&os.ModeSymlink != 0:
				l, lerr := os.Readlink(p)
				if lerr != nil {
					return lerr
				}
				files[p] = "link:" + l
			case d.IsDir():
				files[p] = "dir"
			default:
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				files[p] = string(b)
			}
			return err
		})
		provMust(t, err)
	}
	return files
}

func sameFiles(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range after {
		if w, ok := before[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		} else if w != v {
			t.Errorf("%s: %s changed", what, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s: %s vanished", what, p)
		}
	}
}

// checkProvisioned checks the end state of a successful firstboot and
// returns the registration the QR code carries.
func (r *fbRig) checkProvisioned(t *testing.T, stdout, stderr string) registration {
	t.Helper()
	if _, err := os.Stat(r.bootPath()); !os.IsNotExist(err) {
		t.Errorf("boot file not consumed: %v", err)
	}
	for _, p := range []string{"device.key", "tls/device-key.pem", "tls/device.csr"} {
		if m := provMode(t, filepath.Join(r.data, p)); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, m)
		}
	}
	if l, err := os.Readlink(filepath.Join(r.etc, "board.yaml")); err != nil || l != filepath.Join("boards", "bench.yaml") {
		t.Errorf("board.yaml link: %q, %v", l, err)
	}
	// The QR code's payload is logged; it names the keys on disk.
	m := regexp.MustCompile(`qr="((?:[^"\\]|\\.)*)"`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no registration logged:\n%s", stderr)
	}
	var payload string
	provMust(t, json.Unmarshal([]byte(`"`+m[1]+`"`), &payload))
	var reg registration
	if err := msg.DecodeStrict([]byte(payload), &reg); err != nil {
		t.Fatalf("QR payload %q: %v", payload, err)
	}
	key, err := loadKey(filepath.Join(r.data, "device.key"))
	provMust(t, err)
	blk, _ := pem.Decode(provRead(t, filepath.Join(r.data, "tls", "device.csr")))
	sum := sha256.Sum256(blk.Bytes)
	if reg.V != 1 || reg.CabinetID != provID || reg.Kid != provID || reg.Ed25519 != msg.EncodeKey(key.Public().(ed25519.PublicKey)) ||
		reg.CSRSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("registration %+v does not match the keys on disk", reg)
	}
	if !strings.Contains(stdout, "█") || !strings.Contains(stdout, reg.Ed25519) {
		t.Errorf("no QR code on the console:\n%s", stdout)
	}
	if !strings.Contains(stderr, "registration code on the display") {
		t.Errorf("the QR code was not drawn on the board's display:\n%s", stderr)
	}
	receipt := string(provRead(t, filepath.Join(r.boot, fbReceiptFile)))
	for _, want := range []string{reg.CabinetID, reg.Ed25519, reg.CSRSHA256, "BEGIN CERTIFICATE REQUEST"} {
		if !strings.Contains(receipt, want) {
			t.Errorf("receipt lacks %q:\n%s", want, receipt)
		}
	}
	return reg
}

func TestFirstbootPlainBroker(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, r.bootText("tcp://10.0.0.5:1883"))
	code, stdout, stderr := r.run()
	if code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	r.checkProvisioned(t, stdout, stderr)
	cfg, err := config.Load(r.cfg())
	if err != nil {
		t.Fatalf("the config firstboot wrote: %v", err)
	}
	provMust(t, cfg.Validate())
	if cfg.CabinetID != provID || cfg.Broker != "tcp://10.0.0.5:1883" || cfg.DataDir != r.data ||
		len(cfg.PlatformKeys) != 1 || cfg.PlatformKeys["plat-2026a"] != msg.EncodeKey(r.pub) {
		t.Errorf("config %+v", cfg)
	}
	// The sample's other settings are kept.
	var sample, now map[string]json.RawMessage
	provMust(t, json.Unmarshal(r.sample, &sample))
	provMust(t, json.Unmarshal(provRead(t, r.cfg()), &now))
	for k, v := range sample {
		switch k {
		case "cabinet_id", "broker", "platform_keys", "data_dir", "tls":
			continue
		}
		if string(now[k]) != string(v) {
			t.Errorf("%s: %s, was %s", k, now[k], v)
		}
	}
}

// With mutual TLS the config validates once the platform's certificate is
// installed, as after `cabinet provision`.
func TestFirstbootTLSBroker(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, r.bootText("ssl://mqtt.example.net:8883"))
	code, stdout, stderr := r.run()
	if code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	r.checkProvisioned(t, stdout, stderr)
	f, err := os.Open(r.cfg())
	provMust(t, err)
	cfg, err := config.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("config does not decode: %v", err)
	}
	blk, _ := pem.Decode(provRead(t, filepath.Join(r.data, "tls", "device.csr")))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	provMust(t, err)
	ca := newProvTestCA(t)
	provMust(t, os.WriteFile(cfg.TLS.CertFile, ca.sign(t, csr), 0o600))
	provMust(t, os.WriteFile(cfg.TLS.CAFile, ca.pem, 0o600))
	loaded, err := config.Load(r.cfg())
	if err != nil {
		t.Fatalf("config with the signed certificate: %v", err)
	}
	provMust(t, loaded.Validate())
}

func TestFirstbootRefusesMalformedFile(t *testing.T) {
	key := msg.EncodeKey(make(ed25519.PublicKey, ed25519.PublicKeySize))
	good := "cabinet_id = " + provID + "\nbroker = tcp://10.0.0.5:1883\nplatform_key = plat-1:" + key + "\n"
	tests := []struct {
		name, text, want string
	}{
		{"no equals sign", good + "board rpi4\n", fbBootFile + ":4: \"board rpi4\": want key = value"},
		{"unknown key", "# x\n" + good + "colour = red\n", fbBootFile + ":5: unknown key \"colour\""},
		{"bad id", "cabinet_id = NM 0007\nbroker = tcp://h:1\nplatform_key = p:" + key + "\n", fbBootFile + ":1: cabinet_id"},
		{"id twice", good + "cabinet_id = X-1\n", fbBootFile + ":4: cabinet_id given again (first on line 1)"},
		{"bad broker", "cabinet_id = A-1\nbroker = http://h:80\nplatform_key = p:" + key + "\n", fbBootFile + ":2: broker"},
		{"broker without port", "cabinet_id = A-1\r\nbroker = ssl://host\r\nplatform_key = p:" + key + "\r\n", fbBootFile + ":2: broker"},
		{"key without kid", good + "platform_key = " + key + "\n", fbBootFile + ":4: platform_key"},
		{"short key", good + "platform_key = plat-2:abc\n", fbBootFile + ":4: platform_key plat-2: \"abc\" is not an Ed25519 public key"},
		{"kid twice", good + "platform_key = plat-1:" + key + "\n", fbBootFile + ":4: platform_key: kid \"plat-1\" given twice"},
		{"board with a path", good + "board = ../../etc/passwd\n", fbBootFile + ":4: board"},
		{"no such board", good + "board = rpi9-moon\n", "board rpi9-moon"},
		{"no platform key", "cabinet_id = A-1\nbroker = tcp://h:1\n", fbBootFile + ": no platform_key line"},
		{"empty", "", fbBootFile + ": no cabinet_id, no broker, no platform_key line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newFbRig(t)
			r.writeBoot(t, tc.text)
			before := r.snapshot(t)
			code, _, stderr := r.run()
			if code != 1 {
				t.Fatalf("firstboot = %d, want 1\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "nothing was changed") {
				t.Errorf("stderr does not say %q and that nothing changed:\n%s", tc.want, stderr)
			}
			sameFiles(t, "after a refused boot file", before, r.snapshot(t))
			if _, err := os.Stat(r.data); !os.IsNotExist(err) {
				t.Errorf("data dir made: %v", err)
			}
		})
	}
}

func TestFirstbootAgainIsNoop(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, r.bootText("tcp://10.0.0.5:1883"))
	if code, _, stderr := r.run(); code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	before := r.snapshot(t)
	code, stdout, stderr := r.run()
	if code != 0 || stdout != "" || !strings.Contains(stderr, "nothing to do") {
		t.Fatalf("second firstboot = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	sameFiles(t, "after a second run", before, r.snapshot(t))

	// --qr shows the same registration again and changes nothing.
	code, stdout, stderr = r.run("--qr")
	if code != 0 {
		t.Fatalf("firstboot --qr = %d\n%s", code, stderr)
	}
	r.checkProvisioned(t, stdout, stderr)
	sameFiles(t, "after --qr", before, r.snapshot(t))
}

// A power cut between any two steps: the next boot's run finishes the job,
// and keys that may have been shown (the config names them) are kept.
func TestFirstbootRecoversFromCrash(t *testing.T) {
	t.Run("config written, boot file not yet removed", func(t *testing.T) {
		r := newFbRig(t)
		text := r.bootText("tcp://10.0.0.5:1883")
		r.writeBoot(t, text)
		if code, _, stderr := r.run(); code != 0 {
			t.Fatalf("firstboot = %d\n%s", code, stderr)
		}
		key := provRead(t, filepath.Join(r.data, "device.key"))
		cfg := provRead(t, r.cfg())
		// Put back what the cut left: the boot file, the board link not yet
		// made, a temporary file of the receipt.
		r.writeBoot(t, text)
		provMust(t, os.Remove(filepath.Join(r.etc, "board.yaml")))
		provMust(t, os.Remove(filepath.Join(r.boot, fbReceiptFile)))
		provMust(t, os.WriteFile(filepath.Join(r.boot, "bangfu-done-123.tmp"), []byte("half"), 0o644))
		code, stdout, stderr := r.run()
		if code != 0 {
			t.Fatalf("firstboot after the cut = %d\n%s", code, stderr)
		}
		r.checkProvisioned(t, stdout, stderr)
		if !bytes.Equal(key, provRead(t, filepath.Join(r.data, "device.key"))) || !bytes.Equal(cfg, provRead(t, r.cfg())) {
			t.Error("the keys or the config were made again")
		}
	})
	t.Run("keys written, config not", func(t *testing.T) {
		r := newFbRig(t)
		r.writeBoot(t, r.bootText("tcp://10.0.0.5:1883"))
		// What provision leaves when cut after device.key: keys, the sample
		// config, and a config temp file.
		provMust(t, os.MkdirAll(filepath.Join(r.data, "tls"), 0o700))
		_, seed, err := ed25519.GenerateKey(rand.Reader)
		provMust(t, err)
		provMust(t, os.WriteFile(filepath.Join(r.data, "device.key"), seed.Seed(), 0o600))
		provMust(t, os.WriteFile(filepath.Join(r.data, "tls", "device-key.pem"), []byte("partial"), 0o600))
		provMust(t, os.WriteFile(filepath.Join(r.etc, ".cabinet.json.tmp-1"), []byte("{"), 0o600))
		code, stdout, stderr := r.run()
		if code != 0 {
			t.Fatalf("firstboot = %d\n%s", code, stderr)
		}
		r.checkProvisioned(t, stdout, stderr)
		if bytes.Equal(seed.Seed(), provRead(t, filepath.Join(r.data, "device.key"))) {
			t.Error("the unregistered key of the cut run was kept")
		}
		if _, err := config.Load(r.cfg()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("TLS key written, signing key not", func(t *testing.T) {
		r := newFbRig(t)
		r.writeBoot(t, r.bootText("tcp://10.0.0.5:1883"))
		provMust(t, os.MkdirAll(filepath.Join(r.data, "tls"), 0o700))
		provMust(t, os.WriteFile(filepath.Join(r.data, "tls", "device-key.pem"), []byte("partial"), 0o600))
		provMust(t, os.WriteFile(filepath.Join(r.etc, "board.yaml.tmp-firstboot"), nil, 0o644))
		code, stdout, stderr := r.run()
		if code != 0 {
			t.Fatalf("firstboot = %d\n%s", code, stderr)
		}
		r.checkProvisioned(t, stdout, stderr)
	})
}

// A cabinet that has run keeps its keys: a boot file cannot re-key it.
func TestFirstbootRefusesRunningCabinet(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, r.bootText("tcp://10.0.0.5:1883"))
	if code, _, stderr := r.run(); code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	provMust(t, os.WriteFile(filepath.Join(r.data, "ledger.db"), nil, 0o600))
	r.writeBoot(t, strings.Replace(r.bootText("tcp://10.0.0.6:1883"), provID, "NM-150102-0008", 1))
	before := r.snapshot(t)
	code, _, stderr := r.run()
	if code != 1 || !strings.Contains(stderr, "provisioned already") {
		t.Fatalf("firstboot over a running cabinet = %d\n%s", code, stderr)
	}
	sameFiles(t, "after the refusal", before, r.snapshot(t))
}

// A board.yaml of the technician's own is never replaced.
func TestFirstbootKeepsOwnBoardFile(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, r.bootText("tcp://10.0.0.5:1883"))
	provMust(t, os.WriteFile(filepath.Join(r.etc, "board.yaml"), []byte("model: mine\n"), 0o644))
	before := r.snapshot(t)
	code, _, stderr := r.run()
	if code != 1 || !strings.Contains(stderr, "a file of its own") {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	sameFiles(t, "after the refusal", before, r.snapshot(t))
}

// Without a display the QR code is on the console only.
func TestFirstbootWithoutBoard(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, strings.Replace(r.bootText("tcp://10.0.0.5:1883"), "board = \"bench\"\r\n", "", 1))
	code, stdout, stderr := r.run()
	if code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "█") || !strings.Contains(stderr, "console only") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	if _, err := os.Lstat(filepath.Join(r.etc, "board.yaml")); !os.IsNotExist(err) {
		t.Errorf("board.yaml made: %v", err)
	}
}

// Every flag firstboot defines is explained in its help.
func TestFirstbootHelpNamesEveryFlag(t *testing.T) {
	var b bytes.Buffer
	runFirstboot([]string{"-h"}, io.Discard, &b)
	c, ok := lookupCommand("firstboot")
	if !ok {
		t.Fatal("no help for firstboot")
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(b.String(), -1)
	if len(flags) < 5 {
		t.Fatalf("firstboot -h: %s", b.String())
	}
	for _, f := range flags {
		if !strings.Contains(c.text, "--"+f[1]+" ") {
			t.Errorf("cabinet help firstboot does not explain --%s", f[1])
		}
	}
	if code, _, _ := cli("firstboot", "--show", "soon"); code != 2 {
		t.Errorf("bad flag = %d, want 2", code)
	}
}

// The sample boot file the image carries is one firstboot accepts.
func TestFirstbootSampleBootFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "packaging", "image", "bangfu.txt.example"))
	provMust(t, err)
	crlf := bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) // as the image has it
	bf, err := parseBootFile(fbBootFile, crlf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("..", "..", "..", "hal", "board", "boards", bf.board+".yaml")); err != nil {
		t.Errorf("the sample names board %q, which is not shipped: %v", bf.board, err)
	}
}

// The unit runs firstboot with flags it accepts, on the file its condition
// names.
func TestFirstbootUnit(t *testing.T) {
	unit := string(provRead(t, filepath.Join("..", "..", "..", "packaging", "deb", "bangfu-firstboot.service")))
	exec := regexp.MustCompile(`(?m)^ExecStart=/usr/bin/bangfu-cabinet (firstboot .*)$`).FindStringSubmatch(unit)
	cond := regexp.MustCompile(`(?m)^ConditionPathExists=\|(.*/` + fbBootFile + `)$`).FindStringSubmatch(unit)
	if exec == nil || cond == nil {
		t.Fatalf("no ExecStart running firstboot, or no ConditionPathExists:\n%s", unit)
	}
	args := strings.Fields(exec[1])[1:]
	var boot string
	for i, a := range args {
		if a == "--boot" && i+1 < len(args) {
			boot = args[i+1]
		}
	}
	if cond[1] != filepath.Join(boot, fbBootFile) {
		t.Errorf("ConditionPathExists=%s, but firstboot reads %s", cond[1], filepath.Join(boot, fbBootFile))
	}
	for _, f := range fbCertFiles {
		if !strings.Contains(unit, "ConditionPathExists=|"+filepath.Join(boot, f)+"\n") {
			t.Errorf("the unit does not run for %s", filepath.Join(boot, f))
		}
	}
	if !strings.Contains(unit, "Before=bangfu-cabinet.service") {
		t.Error("the unit does not run before the cabinet's service")
	}
	// The same flags, the directories moved to a test's: nothing to do.
	dir := t.TempDir()
	var out, errs bytes.Buffer
	code := runFirstbootHost(append(args, "--boot", dir, "--etc", dir, "--show", "0"), boardHost{}, &out, &errs)
	if code != 0 || !strings.Contains(errs.String(), "nothing to do") {
		t.Errorf("firstboot %q = %d\n%s", args, code, errs.String())
	}
}

// The platform's answer, put on the boot partition later, is checked
// against the cabinet's key and installed where the config says.
func TestFirstbootInstallsCertificate(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, r.bootText("ssl://mqtt.example.net:8883"))
	if code, _, stderr := r.run(); code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	if _, err := config.Load(r.cfg()); err == nil {
		t.Fatal("config loads without a certificate")
	}
	blk, _ := pem.Decode(provRead(t, filepath.Join(r.data, "tls", "device.csr")))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	provMust(t, err)
	ca := newProvTestCA(t)

	// A certificate of another key is refused, and nothing is installed.
	other := newFbRig(t)
	other.writeBoot(t, other.bootText("ssl://mqtt.example.net:8883"))
	if code, _, stderr := other.run(); code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	oblk, _ := pem.Decode(provRead(t, filepath.Join(other.data, "tls", "device.csr")))
	ocsr, err := x509.ParseCertificateRequest(oblk.Bytes)
	provMust(t, err)
	provMust(t, os.WriteFile(filepath.Join(r.boot, "device-cert.pem"), ca.sign(t, ocsr), 0o644))
	provMust(t, os.WriteFile(filepath.Join(r.boot, "ca.pem"), ca.pem, 0o644))
	before := r.snapshot(t)
	code, _, stderr := r.run()
	if code != 1 || !strings.Contains(stderr, "not for this cabinet's TLS key") {
		t.Fatalf("firstboot with another cabinet's certificate = %d\n%s", code, stderr)
	}
	sameFiles(t, "after the refusal", before, r.snapshot(t))

	// Its own: installed, removed from the boot partition, the config loads.
	provMust(t, os.WriteFile(filepath.Join(r.boot, "device-cert.pem"), ca.sign(t, csr), 0o644))
	code, _, stderr = r.run()
	if code != 0 || !strings.Contains(stderr, "config ok") {
		t.Fatalf("firstboot with the certificate = %d\n%s", code, stderr)
	}
	for _, f := range fbCertFiles {
		if _, err := os.Stat(filepath.Join(r.boot, f)); !os.IsNotExist(err) {
			t.Errorf("%s left on the boot partition: %v", f, err)
		}
	}
	cfg, err := config.Load(r.cfg())
	if err != nil {
		t.Fatalf("config after the certificate: %v", err)
	}
	provMust(t, cfg.Validate())
	if !bytes.Equal(provRead(t, cfg.TLS.CAFile), ca.pem) {
		t.Error("CA bundle not installed")
	}
	// And again: nothing to do.
	if code, _, stderr := r.run(); code != 0 || !strings.Contains(stderr, "nothing to do") {
		t.Fatalf("again = %d\n%s", code, stderr)
	}
}

// A boot file corrected before the cabinet ever ran (a typo in the id):
// the cabinet is provisioned again under the new id.
func TestFirstbootCorrectedBeforeService(t *testing.T) {
	r := newFbRig(t)
	r.writeBoot(t, strings.Replace(r.bootText("tcp://10.0.0.5:1883"), provID, "NM-150102-0070", 1))
	if code, _, stderr := r.run(); code != 0 {
		t.Fatalf("firstboot = %d\n%s", code, stderr)
	}
	old := provRead(t, filepath.Join(r.data, "device.key"))
	r.writeBoot(t, r.bootText("tcp://10.0.0.5:1883"))
	code, stdout, stderr := r.run()
	if code != 0 {
		t.Fatalf("corrected firstboot = %d\n%s", code, stderr)
	}
	r.checkProvisioned(t, stdout, stderr)
	if bytes.Equal(old, provRead(t, filepath.Join(r.data, "device.key"))) {
		t.Error("the old id's key was kept")
	}
	cfg, err := config.Load(r.cfg())
	provMust(t, err)
	if cfg.CabinetID != provID {
		t.Errorf("cabinet id %q", cfg.CabinetID)
	}
}

// The packaged service's start limit must never stop an update's
// rollback: within its interval it allows the switch's start, the most
// failed trial starts a config may ask for and the rollback's start.
func TestServiceStartLimitAllowsRollback(t *testing.T) {
	unit := string(provRead(t, filepath.Join("..", "..", "..", "packaging", "deb", "bangfu-cabinet.service")))
	burst := -1
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "StartLimitBurst="); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("StartLimitBurst=%q: %v", v, err)
			}
			burst = n
		}
	}
	if burst < config.MaxUpdateStarts+2 {
		t.Errorf("StartLimitBurst=%d: a rollback after %d failed starts needs %d starts", burst, config.MaxUpdateStarts, config.MaxUpdateStarts+2)
	}
}
