package main

// `cabinet provision`: make the device's keys on the device and tell the
// platform what to register.
//
// The cabinet gets two key pairs, and neither private key leaves it:
//
//   - data_dir/device.key: the Ed25519 seed that signs sales and the QR
//     code (the format loadKey reads). The platform registers the public
//     key under kid = cabinet id.
//   - data_dir/tls/device-key.pem: an ECDSA P-256 key (PKCS#8 PEM) for
//     mutual TLS to the broker. data_dir/tls/device.csr is its PKCS#10
//     request with subject CN = cabinet id and one URI SAN,
//     urn:bangfu:cabinet:<id>. The broker maps the CN to the MQTT username
//     (Mosquitto use_identity_as_username, EMQX peer_cert_as_username = cn)
//     and its ACL confines the cabinet to its own topics (docs/acl). The id
//     is deliberately not a DNS SAN: it is not a host name (a 64-character
//     id is no valid DNS label), and a certificate naming a "host" could
//     pass as a server certificate where a CA does not restrict key usage.
//
// The platform's CA signs the CSR (for client authentication only, after
// checking that the CN is a valid cabinet id) and the technician installs
// the certificate at data_dir/tls/device-cert.pem and the broker's CA
// bundle at data_dir/tls/ca.pem, the paths provision writes into the
// config.

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
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/internal/atomicfile"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Where provision puts things, relative to the config's data_dir.
const (
	provDeviceKeyFile = "device.key"
	provTLSDir        = "tls"
	provTLSKeyFile    = "device-key.pem"
	provCSRFile       = "device.csr"
	provCertFile      = "device-cert.pem" // installed later: the platform's signature on the CSR
	provCAFile        = "ca.pem"          // installed later: the CAs of the broker's certificate
)

// provCSRURI is the URI SAN the CSR carries for a cabinet id.
func provCSRURI(id string) *url.URL { return &url.URL{Scheme: "urn", Opaque: "bangfu:cabinet:" + id} }

// provKidRE bounds platform key ids: they end up in config keys and logs.
var provKidRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// provisionOut is what provision prints on stdout for the platform's tools.
type provisionOut struct {
	CabinetID string `json:"cabinet_id"`
	// Kid and Ed25519PublicKey are the cabinet's signing key as the
	// platform registers it (envelopes from the cabinet carry kid).
	Kid              string `json:"kid"`
	Alg              string `json:"alg"`
	Ed25519PublicKey string `json:"ed25519_public_key"` // base64url, no padding
	// CSRPEM is the TLS certificate request for the platform's CA.
	CSRPEM     string `json:"csr_pem"`
	CSRSubject string `json:"csr_subject_cn"`
	CSRURISAN  string `json:"csr_uri_san"`
	// Install says where the device expects the signed certificate and the
	// broker's CA bundle.
	Install struct {
		CertFile string `json:"cert_file"`
		CAFile   string `json:"ca_file"`
	} `json:"install"`
	// Reprovisioned is true with --force over existing keys; the ledger
	// and catalog were kept.
	Reprovisioned bool     `json:"reprovisioned"`
	Kept          []string `json:"kept,omitempty"`
}

// provKeyFlags collects repeated --platform-key kid=FILE flags.
type provKeyFlags map[string]string

func (p provKeyFlags) String() string { return fmt.Sprint(map[string]string(p)) }

func (p provKeyFlags) Set(v string) error {
	kid, file, ok := strings.Cut(v, "=")
	if !ok || file == "" {
		return fmt.Errorf("want kid=FILE, got %q", v)
	}
	if !provKidRE.MatchString(kid) {
		return fmt.Errorf("kid %q: 1 to 128 of letters, digits and . _ : -", kid)
	}
	if _, dup := p[kid]; dup {
		return fmt.Errorf("kid %q given twice", kid)
	}
	p[kid] = file
	return nil
}

// runProvision is `cabinet provision`; it returns the exit status: 0 done,
// 1 refused or failed, 2 bad usage.
func runProvision(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("provision", flag.ContinueOnError)
	fset.SetOutput(stderr)
	id := fset.String("id", "", "the cabinet id (letters, digits, '-')")
	keyFiles := provKeyFlags{}
	fset.Var(keyFiles, "platform-key", "kid=FILE: a platform public key to trust (repeat for several); FILE holds the Ed25519 key as base64url or as a PEM \"PUBLIC KEY\"")
	cfgPath := fset.String("config", "/etc/bangfu/cabinet.json", "config file to create or update")
	broker := fset.String("broker", "", "the MQTT broker, ssl://host:8883 (mutual TLS) or tcp://host:1883 (a lab); default: the config's")
	dataDir := fset.String("data-dir", "", "where keys, ledger and catalog live (an absolute path); default: the config's data_dir, else "+config.Default().DataDir)
	force := fset.Bool("force", false, "replace the keys of an already provisioned cabinet (the ledger and catalog are kept)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() != 0 || *id == "" || len(keyFiles) == 0 {
		fmt.Fprintln(stderr, "usage: cabinet provision --id C --platform-key kid=FILE [--platform-key kid=FILE …] [--broker URL] [--data-dir DIR] [--config FILE] [--force]")
		return 2
	}
	if !msg.ValidCabinetID(*id) {
		fmt.Fprintf(stderr, "cabinet: provision: cabinet id %q: letters, digits and '-', 1 to 64 characters\n", *id)
		return 2
	}
	if *broker != "" {
		if _, err := provBrokerTLS(*broker); err != nil {
			fmt.Fprintf(stderr, "cabinet: provision: --broker: %v\n", err)
			return 2
		}
	}
	if *dataDir != "" && !filepath.IsAbs(*dataDir) {
		fmt.Fprintf(stderr, "cabinet: provision: --data-dir %q: want an absolute path (the service does not run in this directory)\n", *dataDir)
		return 2
	}
	out, err := provision(provOpts{id: *id, keyFiles: keyFiles, cfgPath: *cfgPath, broker: *broker, dataDir: filepath.Clean(*dataDir), force: *force}, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, "cabinet: provision:", err)
		return 1
	}
	return 0
}

// provOpts is what `cabinet provision` was asked to do.
type provOpts struct {
	id       string
	keyFiles provKeyFlags
	cfgPath  string
	broker   string // "": the config's
	dataDir  string // "" or ".": the config's, else the default
	force    bool
	// keys are platform keys given as keys rather than files (firstboot's
	// boot file carries them inline); trusted as keyFiles are.
	keys map[string]ed25519.PublicKey
}

// provBrokerTLS checks a broker URL as config.Validate will and says
// whether it is a TLS one.
func provBrokerTLS(broker string) (bool, error) {
	u, err := url.Parse(broker)
	if err != nil || u.Host == "" || u.Port() == "" {
		return false, fmt.Errorf("%q: want ssl://host:port (or tcp://host:port in a lab)", broker)
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
		return true, nil
	case "tcp":
		return false, nil
	}
	return false, fmt.Errorf("%q: scheme %q: want ssl:// (or tcp:// in a lab)", broker, u.Scheme)
}

// errProvisioned is returned when the cabinet has a device key and
// --force was not given.
var errProvisioned = errors.New("cabinet: provision: already provisioned")

func provision(o provOpts, stderr io.Writer) (*provisionOut, error) {
	id, keyFiles, cfgPath, force := o.id, o.keyFiles, o.cfgPath, o.force
	fail := func(f string, a ...any) (*provisionOut, error) {
		return nil, fmt.Errorf("cabinet: provision: "+f, a...)
	}
	// Everything that can be refused is checked before anything is written.
	trusted := make(map[string]string, len(keyFiles)+len(o.keys))
	for kid, pub := range o.keys {
		if _, dup := keyFiles[kid]; dup {
			return fail("platform key %q given twice", kid)
		}
		trusted[kid] = msg.EncodeKey(pub)
	}
	for kid, file := range keyFiles {
		pub, err := provReadPlatformKey(file)
		if err != nil {
			return fail("platform key %q: %w", kid, err)
		}
		trusted[kid] = msg.EncodeKey(pub)
	}
	doc, mode, err := provReadConfig(cfgPath)
	if err != nil {
		return fail("%w", err)
	}
	dataDir, err := provDataDir(doc, o.dataDir, cfgPath)
	if err != nil {
		return fail("%w", err)
	}
	broker := o.broker
	if broker == "" {
		if raw, ok := doc["broker"]; ok {
			_ = json.Unmarshal(raw, &broker) // judged below
		}
	}
	if broker == "" {
		return fail("%s names no broker: give --broker ssl://host:8883", cfgPath)
	}
	useTLS, err := provBrokerTLS(broker)
	if err != nil {
		return fail("%s: broker %w", cfgPath, err)
	}
	var oldID string
	if raw, ok := doc["cabinet_id"]; ok {
		_ = json.Unmarshal(raw, &oldID) // a malformed id is simply replaced
	}
	tlsDir := filepath.Join(dataDir, provTLSDir)
	keyPath := filepath.Join(dataDir, provDeviceKeyFile)
	tlsKeyPath := filepath.Join(tlsDir, provTLSKeyFile)
	for _, p := range []string{keyPath, tlsKeyPath} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fail("%w", err)
		}
		// A key others could read may be copied already: someone must look
		// at this cabinet before it gets new keys in the same place.
		if st.Mode().Perm()&0o077 != 0 {
			return fail("%s is readable by group or others (mode %v): treat the key as exposed, check the device, chmod 600 it, then run again", p, st.Mode().Perm())
		}
	}
	_, err = os.Stat(keyPath)
	reprov := err == nil
	if reprov && !force {
		return nil, fmt.Errorf("%w: %s exists; --force makes new keys (the ledger and catalog are kept)", errProvisioned, keyPath)
	}
	var kept []string
	for _, name := range []string{"ledger.db", "catalog.db"} {
		p := filepath.Join(dataDir, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := provCheckNotInUse(p); err != nil {
			return fail("%w", err)
		}
		kept = append(kept, name)
	}
	if oldID != "" && oldID != id && slices.Contains(kept, "ledger.db") {
		return fail("the ledger in %s belongs to cabinet %s; a new cabinet id needs a new data_dir (move the old one aside, after the platform has all its sales)", dataDir, oldID)
	}

	// The config as it will be written, judged before anything is: a
	// provisioned cabinet's config validates (the TLS files the platform
	// has yet to sign are checked by Load, not here).
	certPath, caPath := filepath.Join(tlsDir, provCertFile), filepath.Join(tlsDir, provCAFile)
	tlsSet := config.TLS{CAFile: caPath, CertFile: certPath, KeyFile: tlsKeyPath}
	if raw, ok := doc["tls"]; ok {
		var old config.TLS
		if json.Unmarshal(raw, &old) == nil {
			tlsSet.ServerName = old.ServerName // the broker's name is the site's choice, not ours
		}
	}
	set := map[string]any{"cabinet_id": id, "platform_keys": trusted, "broker": broker, "data_dir": dataDir}
	if useTLS {
		set["tls"] = tlsSet
	} else {
		delete(doc, "tls") // refused with tcp://
	}
	for k, v := range set {
		if err := provSetDoc(doc, k, v); err != nil {
			return fail("%w", err)
		}
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fail("%w", err)
	}
	body = append(body, '\n')
	if _, err := config.Decode(bytes.NewReader(body)); err != nil {
		probs := configProblems(cfgPath, err)
		return fail("the config would not be valid; fix %s first:\n  %s", cfgPath, strings.Join(probs, "\n  "))
	}

	_, signKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fail("%w", err)
	}
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail("%w", err)
	}
	tlsKeyDER, err := x509.MarshalPKCS8PrivateKey(tlsKey)
	if err != nil {
		return fail("%w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id},
		URIs:    []*url.URL{provCSRURI(id)},
	}, tlsKey)
	if err != nil {
		return fail("CSR: %w", err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})

	for _, d := range []string{dataDir, tlsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fail("%w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fail("%w", err)
		}
	}
	// The TLS key and CSR first, the signing key after them: device.key is
	// what marks a cabinet as provisioned, so a run cut short before it can
	// simply be repeated.
	tlsKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: tlsKeyDER})
	if err := provWriteFile(tlsKeyPath, tlsKeyPEM, 0o600); err != nil {
		return fail("%w", err)
	}
	if err := provWriteFile(filepath.Join(tlsDir, provCSRFile), csrPEM, 0o600); err != nil {
		return fail("%w", err)
	}
	if err := provWriteFile(keyPath, signKey.Seed(), 0o600); err != nil {
		return fail("%w", err)
	}
	// Run as root over a data dir the service user owns (--force on an
	// installed cabinet), the new files go to that user, or the service
	// could not read its own keys.
	if err := provChownLike(dataDir, tlsDir, tlsKeyPath, filepath.Join(tlsDir, provCSRFile), keyPath); err != nil {
		return fail("%w", err)
	}

	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		return fail("%w", err)
	}
	if err := provWriteFile(cfgPath, body, mode); err != nil {
		return fail("config: %w", err)
	}

	out := &provisionOut{
		CabinetID: id, Kid: id, Alg: "Ed25519",
		Ed25519PublicKey: msg.EncodeKey(signKey.Public().(ed25519.PublicKey)),
		CSRPEM:           string(csrPEM), CSRSubject: id, CSRURISAN: provCSRURI(id).String(),
		Reprovisioned: reprov, Kept: kept,
	}
	out.Install.CertFile, out.Install.CAFile = certPath, caPath

	// What is left to do goes to stderr: stdout is for the platform's tools.
	if reprov {
		fmt.Fprintf(stderr, "cabinet: new keys made; kept %v in %s (nothing was deleted). Register the new public key before the firmware reconnects: sales still in the outbox go out signed with it.\n", kept, dataDir)
	}
	if useTLS {
		fmt.Fprintf(stderr, "cabinet: next: the platform signs %s; install the certificate as %s and the broker's CA bundle as %s, then run `cabinet check-config %s`\n",
			filepath.Join(tlsDir, provCSRFile), certPath, caPath, cfgPath)
	} else {
		fmt.Fprintf(stderr, "cabinet: warning: broker %s is plain tcp://: the link is neither encrypted nor authenticated; use ssl:// outside a lab (then run provision --force --broker ssl://… to get the TLS settings)\n", broker)
		fmt.Fprintf(stderr, "cabinet: next: register the public key with the platform, then run `cabinet check-config %s`\n", cfgPath)
	}
	return out, nil
}

// provDataDir is the data directory provision uses: flag (--data-dir) if
// given, else the config document's data_dir, else the default.
func provDataDir(doc map[string]json.RawMessage, flag, cfgPath string) (string, error) {
	dataDir := config.Default().DataDir
	if flag != "" && flag != "." {
		return flag, nil
	}
	if raw, ok := doc["data_dir"]; ok {
		if err := json.Unmarshal(raw, &dataDir); err != nil || dataDir == "" {
			return "", fmt.Errorf("%s: data_dir: want a non-empty string", cfgPath)
		}
	}
	return dataDir, nil
}

// provChownLike gives paths the owner of dir when this process runs as
// root and dir belongs to someone else; otherwise it does nothing.
func provChownLike(dir string, paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return nil
	}
	for _, p := range paths {
		if err := os.Lchown(p, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	return nil
}

// provReadPlatformKey reads an Ed25519 public key from a file holding either
// its base64url form (as in platform_keys; padding and surrounding white
// space allowed) or a PEM "PUBLIC KEY" block (PKIX, as `openssl pkey
// -pubout` writes it).
func provReadPlatformKey(path string) (ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "-----BEGIN") {
		blk, _ := pem.Decode([]byte(s))
		if blk == nil || blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("%s: want a PEM \"PUBLIC KEY\" block", path)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: a %T, not an Ed25519 key", path, k)
		}
		return pub, nil
	}
	pub, err := msg.DecodeKey(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%s: neither PEM nor a base64url Ed25519 key", path)
	}
	return pub, nil
}

// provReadConfig reads the config file as a JSON object, keeping every key
// as written (provision changes only its own keys), and the mode to write
// it back with. A missing file is an empty document.
func provReadConfig(path string) (map[string]json.RawMessage, fs.FileMode, error) {
	doc := map[string]json.RawMessage{}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, 0o600, nil
	}
	if err != nil {
		return nil, 0, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, 0, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	if doc == nil { // the file said null
		doc = map[string]json.RawMessage{}
	}
	return doc, st.Mode().Perm(), nil
}

func provSetDoc(doc map[string]json.RawMessage, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	doc[key] = b
	return nil
}

// provCheckNotInUse refuses when a running firmware holds the bbolt file:
// swapping keys under it would leave it signing with the old one until a
// restart. A read-only open takes a shared lock and writes nothing.
func provCheckNotInUse(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("%s is in use: stop the firmware first", path)
	}
	if err != nil {
		return nil // damaged or not bbolt: not ours to judge here, and never touched
	}
	return db.Close()
}

// provWriteFile replaces path with data atomically (internal/atomicfile):
// a power cut leaves either the old file or the new one. Mode 0 sets no
// mode (a FAT boot partition has none).
func provWriteFile(path string, data []byte, mode fs.FileMode) error {
	return atomicfile.WriteFile(path, data, mode)
}
