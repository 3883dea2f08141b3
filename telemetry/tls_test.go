package telemetry

// A throwaway PKI made with crypto/x509 (CAs, broker and cabinet
// certificates), and the unit tests of TLSFiles. The Mosquitto tests in
// mosquitto_tls_test.go use the same PKI.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pkiCA is a certificate authority for one test.
type pkiCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func pkiSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pkiKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newPKICA(t testing.TB, name string) *pkiCA {
	t.Helper()
	key := pkiKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          pkiSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pkiCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// pkiLeaf is a certificate and its key, PEM-encoded.
type pkiLeaf struct {
	certPEM, keyPEM []byte
	serial          *big.Int
}

// server issues a broker certificate for 127.0.0.1 and localhost.
func (ca *pkiCA) server(t testing.TB) pkiLeaf {
	t.Helper()
	return ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "test broker"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// client issues a client certificate with CN = cn (a cabinet id, or a
// platform service's name).
func (ca *pkiCA) client(t testing.TB, cn string) pkiLeaf {
	t.Helper()
	return ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *pkiCA) issue(t testing.TB, tmpl *x509.Certificate) pkiLeaf {
	t.Helper()
	key := pkiKey(t)
	tmpl.SerialNumber = pkiSerial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pkiLeaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		serial:  tmpl.SerialNumber,
	}
}

// pkiWrite writes data to dir/name with mode 0600 and returns the path.
func pkiWrite(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pkiFiles writes a cabinet's TLS files into a fresh directory: trust is
// the CA bundle that signs the broker, leaf the cabinet's certificate.
func pkiFiles(t testing.TB, trust []byte, leaf pkiLeaf) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	return TLSFiles{
		CAFile:   pkiWrite(t, dir, "ca.pem", trust),
		CertFile: pkiWrite(t, dir, "device-cert.pem", leaf.certPEM),
		KeyFile:  pkiWrite(t, dir, "device-key.pem", leaf.keyPEM),
	}
}

// pkiReplace swaps path's content the way a renewal should: write aside,
// rename over.
func pkiReplace(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestTLSFilesLoad(t *testing.T) {
	serverCA, deviceCA := newPKICA(t, "server CA"), newPKICA(t, "device CA")
	leaf := deviceCA.client(t, testCabinet)
	f := pkiFiles(t, serverCA.pem, leaf)

	c, err := f.Load("broker.example")
	if err != nil {
		t.Fatal(err)
	}
	want := x509.NewCertPool()
	want.AddCert(serverCA.cert)
	switch {
	case c.MinVersion < tls.VersionTLS12:
		t.Errorf("MinVersion %x, want TLS 1.2 or later", c.MinVersion)
	case c.InsecureSkipVerify:
		t.Error("InsecureSkipVerify set")
	case c.RootCAs == nil || !c.RootCAs.Equal(want):
		t.Error("RootCAs is not exactly the CA file (a nil pool would mean the system's)")
	case c.ServerName != "broker.example":
		t.Errorf("ServerName %q, want the URL's host", c.ServerName)
	case len(c.Certificates) != 1 || c.Certificates[0].Leaf == nil || c.Certificates[0].Leaf.SerialNumber.Cmp(leaf.serial) != 0:
		t.Error("the cabinet's certificate is not the one offered")
	}

	f.ServerName = "mqtt.bangfu.example"
	if c, err := f.Load("10.0.0.1"); err != nil || c.ServerName != "mqtt.bangfu.example" {
		t.Errorf("server_name not used: %v %q", err, c.ServerName)
	}
	// Read afresh on every call: a renewed certificate is what the next
	// connection offers.
	renewed := deviceCA.client(t, testCabinet)
	pkiReplace(t, f.KeyFile, renewed.keyPEM)
	pkiReplace(t, f.CertFile, renewed.certPEM)
	c, err = f.Load("broker.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Certificates[0].Leaf.SerialNumber; got.Cmp(renewed.serial) != 0 {
		t.Errorf("offered serial %v after renewal, want %v", got, renewed.serial)
	}
}

func TestTLSFilesLoadRefuses(t *testing.T) {
	ca := newPKICA(t, "device CA")
	leaf, other := ca.client(t, testCabinet), ca.client(t, "NM-OTHER")
	tests := []struct {
		name  string
		edit  func(t *testing.T, f *TLSFiles)
		is    error  // errors.Is target, or nil
		want  string // substring of the error
		empty bool   // Load with an empty host and no server name
	}{
		{name: "missing CA file", edit: func(t *testing.T, f *TLSFiles) { f.CAFile += ".none" }, is: fs.ErrNotExist, want: "ca_file"},
		{name: "CA file without a certificate", edit: func(t *testing.T, f *TLSFiles) {
			pkiReplace(t, f.CAFile, leaf.keyPEM)
		}, want: "no PEM certificate"},
		{name: "missing certificate", edit: func(t *testing.T, f *TLSFiles) { f.CertFile += ".none" }, is: fs.ErrNotExist, want: "cert_file"},
		{name: "missing key", edit: func(t *testing.T, f *TLSFiles) { f.KeyFile += ".none" }, is: fs.ErrNotExist, want: "key_file"},
		{name: "key readable by group", edit: func(t *testing.T, f *TLSFiles) {
			if err := os.Chmod(f.KeyFile, 0o640); err != nil {
				t.Fatal(err)
			}
		}, is: ErrKeyExposed, want: "chmod 600"},
		{name: "key readable by others", edit: func(t *testing.T, f *TLSFiles) {
			if err := os.Chmod(f.KeyFile, 0o604); err != nil {
				t.Fatal(err)
			}
		}, is: ErrKeyExposed},
		{name: "certificate of another key", edit: func(t *testing.T, f *TLSFiles) {
			pkiReplace(t, f.CertFile, other.certPEM)
		}, want: "does not match"},
		{name: "garbage certificate", edit: func(t *testing.T, f *TLSFiles) {
			pkiReplace(t, f.CertFile, []byte("not a certificate\n"))
		}, want: "cert_file"},
		{name: "no name to verify", edit: func(t *testing.T, f *TLSFiles) {}, empty: true, want: "server name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := pkiFiles(t, ca.pem, leaf)
			tc.edit(t, &f)
			host := "127.0.0.1"
			if tc.empty {
				host = ""
			}
			c, err := f.Load(host)
			if err == nil {
				t.Fatalf("loaded: %+v", c)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "telemetry: ") {
				t.Errorf("error %q: want the telemetry prefix and %q", err, tc.want)
			}
		})
	}
}

func TestCheckTLS(t *testing.T) {
	full := &TLSFiles{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}
	tests := []struct {
		broker string
		files  *TLSFiles
		want   error
	}{
		{"tcp://127.0.0.1:1883", nil, nil},
		{"tcp://127.0.0.1:1883", &TLSFiles{}, nil},
		{"tcp://127.0.0.1:1883", full, ErrTLSOnPlain},
		{"tcp://127.0.0.1:1883", &TLSFiles{ServerName: "b.example"}, ErrTLSOnPlain},
		{"ssl://b.example:8883", full, nil},
		{"tls://b.example:8883", full, nil},
		{"mqtts://b.example:8883", full, nil},
		{"ssl://b.example:8883", nil, ErrTLSRequired},
		{"mqtts://b.example:8883", &TLSFiles{CAFile: "ca.pem", CertFile: "c.pem"}, ErrTLSRequired},
		{"ssl://b.example:8883", &TLSFiles{CertFile: "c.pem", KeyFile: "k.pem"}, ErrTLSRequired},
	}
	for _, tc := range tests {
		err := CheckTLS(tc.broker, tc.files)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("CheckTLS(%s, %+v) = %v, want %v", tc.broker, tc.files, err, tc.want)
		}
	}
	// New applies the same rule: no link without the files a TLS broker
	// needs, and no silent plain link when TLS files are set.
	o := linkOpts("ssl://127.0.0.1:8883")
	if _, err := New(o); !errors.Is(err, ErrTLSRequired) {
		t.Errorf("New without TLS files for ssl:// = %v", err)
	}
	o = linkOpts("tcp://127.0.0.1:1883")
	o.TLS = full
	if _, err := New(o); !errors.Is(err, ErrTLSOnPlain) {
		t.Errorf("New with TLS files for tcp:// = %v", err)
	}
	if _, err := New(linkOpts("127.0.0.1:1883")); err == nil {
		t.Error("a broker address without a scheme was accepted")
	}
}
