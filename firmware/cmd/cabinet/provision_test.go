package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bangfu/cabinet/firmware/catalog"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
)

const provID = "NM-150102-0007"

func provMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// provRig is a cabinet's file system: a config file naming a data dir
// that does not exist yet, and two platform key files, one in each
// accepted form.
type provRig struct {
	dir, cfg, data string
	pub1, pub2     ed25519.PublicKey
	key1, key2     string // files: base64url, PEM
}

func newProvRig(t *testing.T) *provRig {
	t.Helper()
	dir := t.TempDir()
	r := &provRig{dir: dir, cfg: filepath.Join(dir, "etc", "cabinet.json"), data: filepath.Join(dir, "data")}
	provMust(t, os.MkdirAll(filepath.Dir(r.cfg), 0o755))
	// A site's own settings, which provision must keep as they are.
	r.writeConfig(t, map[string]any{"broker": "ssl://127.0.0.1:8883", "data_dir": r.data, "site": "Hohhot station 3", "heartbeat_s": 30})
	var err error
	r.pub1, _, err = ed25519.GenerateKey(rand.Reader)
	provMust(t, err)
	r.pub2, _, err = ed25519.GenerateKey(rand.Reader)
	provMust(t, err)
	r.key1 = filepath.Join(dir, "plat-1.pub")
	provMust(t, os.WriteFile(r.key1, []byte(msg.EncodeKey(r.pub1)+"\n"), 0o644))
	der, err := x509.MarshalPKIXPublicKey(r.pub2)
	provMust(t, err)
	r.key2 = filepath.Join(dir, "plat-2.pem")
	provMust(t, os.WriteFile(r.key2, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	return r
}

func (r *provRig) writeConfig(t *testing.T, doc map[string]any) {
	t.Helper()
	b, err := json.Marshal(doc)
	provMust(t, err)
	provMust(t, os.WriteFile(r.cfg, b, 0o600))
}

func (r *provRig) args(extra ...string) []string {
	return append([]string{"--id", provID, "--platform-key", "plat-1=" + r.key1, "--platform-key", "plat-2=" + r.key2, "--config", r.cfg}, extra...)
}

func (r *provRig) path(parts ...string) string {
	return filepath.Join(append([]string{r.data}, parts...)...)
}

// provision runs the subcommand and returns its status, stdout and stderr.
func (r *provRig) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runProvision(args, &out, &errb)
	return code, out.String(), errb.String()
}

func provRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	provMust(t, err)
	return b
}

func provMode(t testing.TB, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	provMust(t, err)
	return st.Mode().Perm()
}

// provTestCA plays the platform's device CA.
type provTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newProvTestCA(t testing.TB) *provTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	provMust(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "platform device CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	provMust(t, err)
	cert, err := x509.ParseCertificate(der)
	provMust(t, err)
	return &provTestCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// sign issues a client certificate for the CSR, as the platform does.
func (ca *provTestCA) sign(t testing.TB, csr *x509.CertificateRequest) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: csr.Subject, URIs: csr.URIs,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	provMust(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func provDecodeOut(t testing.TB, stdout string) provisionOut {
	t.Helper()
	var out provisionOut
	if err := msg.DecodeStrict([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not the JSON a platform tool parses: %v\n%s", err, stdout)
	}
	return out
}

func TestProvisionFresh(t *testing.T) {
	r := newProvRig(t)
	code, stdout, stderr := r.run(r.args()...)
	if code != 0 {
		t.Fatalf("provision = %d\n%s", code, stderr)
	}
	out := provDecodeOut(t, stdout)

	for p, want := range map[string]fs.FileMode{
		r.data: 0o700, r.path("tls"): 0o700,
		r.path("device.key"): 0o600, r.path("tls", "device-key.pem"): 0o600, r.path("tls", "device.csr"): 0o600,
		r.cfg: 0o600,
	} {
		if got := provMode(t, p); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}

	// The signing key is what loadKey reads, and the JSON names its public half.
	key, err := loadKey(r.path("device.key"))
	provMust(t, err)
	if out.CabinetID != provID || out.Kid != provID || out.Alg != "Ed25519" ||
		out.Ed25519PublicKey != msg.EncodeKey(key.Public().(ed25519.PublicKey)) {
		t.Errorf("output does not name the device key: %+v", out)
	}

	// The CSR: same as the file, self-signed by the TLS key, CN and URI SAN.
	if out.CSRPEM != string(provRead(t, r.path("tls", "device.csr"))) {
		t.Error("the CSR printed differs from the one written")
	}
	blk, _ := pem.Decode([]byte(out.CSRPEM))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("CSR PEM: %q", out.CSRPEM)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	provMust(t, err)
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	if csr.Subject.CommonName != provID || len(csr.URIs) != 1 || csr.URIs[0].String() != "urn:bangfu:cabinet:"+provID ||
		len(csr.DNSNames) != 0 || out.CSRSubject != provID || out.CSRURISAN != csr.URIs[0].String() {
		t.Errorf("CSR subject %q, URIs %v, DNS %v; output %+v", csr.Subject.CommonName, csr.URIs, csr.DNSNames, out)
	}
	kb, _ := pem.Decode(provRead(t, r.path("tls", "device-key.pem")))
	tlsKey, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	provMust(t, err)
	ek, ok := tlsKey.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() || !ek.PublicKey.Equal(csr.PublicKey) {
		t.Fatalf("TLS key %T does not match the CSR", tlsKey)
	}

	// The config: the site's settings kept, identity, keys and TLS paths set.
	var doc map[string]json.RawMessage
	provMust(t, json.Unmarshal(provRead(t, r.cfg), &doc))
	if string(doc["site"]) != `"Hohhot station 3"` || string(doc["heartbeat_s"]) != "30" {
		t.Errorf("site settings changed: %s %s", doc["site"], doc["heartbeat_s"])
	}
	f, err := os.Open(r.cfg)
	provMust(t, err)
	cfg, err := config.Decode(f)
	f.Close()
	provMust(t, err)
	wantTLS := config.TLS{CAFile: r.path("tls", "ca.pem"), CertFile: r.path("tls", "device-cert.pem"), KeyFile: r.path("tls", "device-key.pem")}
	if cfg.CabinetID != provID || cfg.TLS != wantTLS || out.Install.CertFile != wantTLS.CertFile || out.Install.CAFile != wantTLS.CAFile {
		t.Errorf("config %+v / %+v, install %+v", cfg.CabinetID, cfg.TLS, out.Install)
	}
	if len(cfg.PlatformKeys) != 2 || cfg.PlatformKeys["plat-1"] != msg.EncodeKey(r.pub1) || cfg.PlatformKeys["plat-2"] != msg.EncodeKey(r.pub2) {
		t.Errorf("platform keys %v", cfg.PlatformKeys)
	}
	if out.Reprovisioned || len(out.Kept) != 0 {
		t.Errorf("a fresh cabinet reported as re-provisioned: %+v", out)
	}

	// Until the platform's certificate is installed the config does not
	// load; then it does, and the TLS key provision made is the one used.
	if _, err := config.Load(r.cfg); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("config loads without a certificate: %v", err)
	}
	if !strings.Contains(stderr, wantTLS.CertFile) {
		t.Errorf("stderr does not say where the certificate goes:\n%s", stderr)
	}
	ca := newProvTestCA(t)
	provMust(t, os.WriteFile(wantTLS.CertFile, ca.sign(t, csr), 0o600))
	provMust(t, os.WriteFile(wantTLS.CAFile, ca.pem, 0o600))
	if _, err := config.Load(r.cfg); err != nil {
		t.Fatalf("provisioned config with the signed certificate: %v", err)
	}
	if got := run([]string{"check-config", r.cfg}); got != 0 {
		t.Fatalf("check-config = %d", got)
	}
}

func TestProvisionRefusesReprovisioning(t *testing.T) {
	r := newProvRig(t)
	if code, _, stderr := r.run(r.args()...); code != 0 {
		t.Fatalf("provision = %d\n%s", code, stderr)
	}
	key, tlsKey, cfg := provRead(t, r.path("device.key")), provRead(t, r.path("tls", "device-key.pem")), provRead(t, r.cfg)
	code, stdout, stderr := r.run(r.args()...)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "--force") {
		t.Fatalf("second provision = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !bytes.Equal(key, provRead(t, r.path("device.key"))) || !bytes.Equal(tlsKey, provRead(t, r.path("tls", "device-key.pem"))) ||
		!bytes.Equal(cfg, provRead(t, r.cfg)) {
		t.Fatal("a refused provision changed files")
	}
}

func TestProvisionForceKeepsData(t *testing.T) {
	r := newProvRig(t)
	if code, _, stderr := r.run(r.args()...); code != 0 {
		t.Fatalf("provision = %d\n%s", code, stderr)
	}
	// The firmware has run: a real ledger and catalog exist.
	led, err := ledger.Open(r.path("ledger.db"))
	provMust(t, err)
	provMust(t, led.Close())
	cat, err := catalog.Open(r.path("catalog.db"), slog.New(slog.DiscardHandler))
	provMust(t, err)
	provMust(t, cat.Close())
	keyBefore, tlsBefore := provRead(t, r.path("device.key")), provRead(t, r.path("tls", "device-key.pem"))

	t.Run("refused while the firmware holds the ledger", func(t *testing.T) {
		led, err := ledger.Open(r.path("ledger.db"))
		provMust(t, err)
		defer led.Close()
		code, _, stderr := r.run(r.args("--force")...)
		if code != 1 || !strings.Contains(stderr, "in use") {
			t.Fatalf("provision --force with the ledger open = %d: %s", code, stderr)
		}
		if !bytes.Equal(keyBefore, provRead(t, r.path("device.key"))) {
			t.Fatal("keys replaced under a running firmware")
		}
	})
	t.Run("refused for another cabinet id over this ledger", func(t *testing.T) {
		args := r.args("--force")
		args[1] = "NM-150102-0099"
		code, _, stderr := r.run(args...)
		if code != 1 || !strings.Contains(stderr, "belongs to cabinet "+provID) {
			t.Fatalf("provision --force --id other = %d: %s", code, stderr)
		}
	})

	// (Opening the ledger above wrote to it: the baseline is taken now.)
	ledgerBefore, catalogBefore := provRead(t, r.path("ledger.db")), provRead(t, r.path("catalog.db"))
	code, stdout, stderr := r.run(r.args("--force")...)
	if code != 0 {
		t.Fatalf("provision --force = %d\n%s", code, stderr)
	}
	out := provDecodeOut(t, stdout)
	if !out.Reprovisioned || strings.Join(out.Kept, ",") != "ledger.db,catalog.db" || !strings.Contains(stderr, "nothing was deleted") {
		t.Errorf("output %+v, stderr %s", out, stderr)
	}
	if !bytes.Equal(ledgerBefore, provRead(t, r.path("ledger.db"))) || !bytes.Equal(catalogBefore, provRead(t, r.path("catalog.db"))) {
		t.Fatal("--force changed the ledger or the catalog")
	}
	if bytes.Equal(keyBefore, provRead(t, r.path("device.key"))) || bytes.Equal(tlsBefore, provRead(t, r.path("tls", "device-key.pem"))) {
		t.Fatal("--force kept the old keys")
	}
	key, err := loadKey(r.path("device.key"))
	provMust(t, err)
	if out.Ed25519PublicKey != msg.EncodeKey(key.Public().(ed25519.PublicKey)) {
		t.Error("output names another key than the new one")
	}
}

func TestProvisionRefusesExposedKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []string
		mode fs.FileMode
	}{
		{"device key readable by group", []string{"device.key"}, 0o640},
		{"TLS key readable by others", []string{"tls", "device-key.pem"}, 0o604},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newProvRig(t)
			if code, _, stderr := r.run(r.args()...); code != 0 {
				t.Fatalf("provision = %d\n%s", code, stderr)
			}
			p := r.path(tc.file...)
			provMust(t, os.Chmod(p, tc.mode))
			before := provRead(t, p)
			code, _, stderr := r.run(r.args("--force")...)
			if code != 1 || !strings.Contains(stderr, "readable by group or others") {
				t.Fatalf("provision --force over an exposed key = %d: %s", code, stderr)
			}
			if !bytes.Equal(before, provRead(t, p)) || provMode(t, p) != tc.mode {
				t.Fatal("the exposed key was touched")
			}
		})
	}
}

func TestProvisionBadArguments(t *testing.T) {
	r0 := newProvRig(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	provMust(t, err)
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	provMust(t, err)
	write := func(name, body string) string {
		p := filepath.Join(r0.dir, name)
		provMust(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	garbage := write("garbage", "not a key at all\n")
	short := write("short", msg.EncodeKey(r0.pub1[:16]))
	ecPEM := write("ec.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})))
	privPEM := write("priv.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})))
	missing := filepath.Join(r0.dir, "none.pub")

	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no id", []string{"--platform-key", "p=" + r0.key1}, 2, "usage"},
		{"bad id", []string{"--id", "NM/1#", "--platform-key", "p=" + r0.key1}, 2, "cabinet id"},
		{"no platform key", []string{"--id", provID}, 2, "usage"},
		{"platform key without kid", []string{"--id", provID, "--platform-key", r0.key1}, 2, "kid=FILE"},
		{"empty kid", []string{"--id", provID, "--platform-key", "=" + r0.key1}, 2, "kid"},
		{"kid with a space", []string{"--id", provID, "--platform-key", "plat 1=" + r0.key1}, 2, "kid"},
		{"kid twice", []string{"--id", provID, "--platform-key", "p=" + r0.key1, "--platform-key", "p=" + r0.key2}, 2, "twice"},
		{"missing key file", []string{"--id", provID, "--platform-key", "p=" + missing}, 1, "no such file"},
		{"garbage key", []string{"--id", provID, "--platform-key", "p=" + garbage}, 1, "neither PEM nor"},
		{"key too short", []string{"--id", provID, "--platform-key", "p=" + short}, 1, "neither PEM nor"},
		{"ECDSA key in PEM", []string{"--id", provID, "--platform-key", "p=" + ecPEM}, 1, "not an Ed25519 key"},
		{"private key PEM", []string{"--id", provID, "--platform-key", "p=" + privPEM}, 1, "PUBLIC KEY"},
		{"one bad among good", []string{"--id", provID, "--platform-key", "good=" + r0.key2, "--platform-key", "bad=" + garbage}, 1, `"bad"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newProvRig(t)
			cfgBefore := provRead(t, r.cfg)
			code, stdout, stderr := r.run(append(tc.args, "--config", r.cfg)...)
			if code != tc.want || stdout != "" || !strings.Contains(stderr, tc.msg) {
				t.Fatalf("= %d (want %d), stdout %q, stderr %q (want %q)", code, tc.want, stdout, stderr, tc.msg)
			}
			if _, err := os.Stat(r.data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused provision created the data dir: %v", err)
			}
			if !bytes.Equal(cfgBefore, provRead(t, r.cfg)) {
				t.Error("a refused provision changed the config")
			}
		})
	}
}

// The TLS settings as config.Load and check-config judge them.
func TestConfigTLSSettings(t *testing.T) {
	dir := t.TempDir()
	ca := newProvTestCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	provMust(t, err)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: provID}}, key)
	provMust(t, err)
	csr, err := x509.ParseCertificateRequest(csrDER)
	provMust(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	provMust(t, err)
	write := func(name string, b []byte, m fs.FileMode) string {
		p := filepath.Join(dir, name)
		provMust(t, os.WriteFile(p, b, m))
		provMust(t, os.Chmod(p, m))
		return p
	}
	caFile := write("ca.pem", ca.pem, 0o644)
	certFile := write("cert.pem", ca.sign(t, csr), 0o644)
	keyFile := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	openKey := write("open-key.pem", provRead(t, keyFile), 0o644)
	otherCert := write("other.pem", ca.pem, 0o644) // a certificate, but not for this key

	tlsOf := func(ca, cert, key, name string) map[string]string {
		m := map[string]string{"ca_file": ca, "cert_file": cert, "key_file": key}
		if name != "" {
			m["server_name"] = name
		}
		return m
	}
	tests := []struct {
		name   string
		broker string
		tls    map[string]string
		want   string // "" loads
	}{
		{"plain tcp", "tcp://127.0.0.1:1883", nil, ""},
		{"ssl with files", "ssl://127.0.0.1:8883", tlsOf(caFile, certFile, keyFile, ""), ""},
		{"mqtts with server name", "mqtts://10.1.2.3:8883", tlsOf(caFile, certFile, keyFile, "mqtt.bangfu.example"), ""},
		{"ssl without tls", "ssl://127.0.0.1:8883", nil, "needs tls.ca_file"},
		{"tls without a key", "tls://127.0.0.1:8883", tlsOf(caFile, certFile, "", ""), "needs tls.ca_file"},
		{"tcp with tls files", "tcp://127.0.0.1:8883", tlsOf(caFile, certFile, keyFile, ""), "plain tcp://"},
		{"tcp with only a server name", "tcp://127.0.0.1:8883", map[string]string{"server_name": "b.example"}, "plain tcp://"},
		{"missing certificate", "ssl://127.0.0.1:8883", tlsOf(caFile, certFile+".none", keyFile, ""), "cert_file"},
		{"key readable by others", "ssl://127.0.0.1:8883", tlsOf(caFile, certFile, openKey, ""), "readable by group or others"},
		{"certificate of another key", "ssl://127.0.0.1:8883", tlsOf(caFile, otherCert, keyFile, ""), "does not match"},
		{"CA file without a certificate", "ssl://127.0.0.1:8883", tlsOf(keyFile, certFile, keyFile, ""), "no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := map[string]any{"cabinet_id": provID, "broker": tc.broker, "data_dir": dir,
				"platform_keys": map[string]string{"plat-1": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}
			if tc.tls != nil {
				doc["tls"] = tc.tls
			}
			b, err := json.Marshal(doc)
			provMust(t, err)
			p := filepath.Join(t.TempDir(), "cabinet.json")
			provMust(t, os.WriteFile(p, b, 0o600))
			c, err := config.Load(p)
			status := run([]string{"check-config", p})
			if tc.want == "" {
				if err != nil || status != 0 {
					t.Fatalf("refused (%d): %v", status, err)
				}
				if files := c.TLS.Files(); (files == nil) != (tc.tls == nil) {
					t.Errorf("TLS files %+v for %v", files, tc.tls)
				}
				if err := telemetry.CheckTLS(c.Broker, c.TLS.Files()); err != nil {
					t.Errorf("config loads what the link refuses: %v", err)
				}
				return
			}
			if err == nil || status != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check-config = %d, error %v; want %q", status, err, tc.want)
			}
		})
	}
}
