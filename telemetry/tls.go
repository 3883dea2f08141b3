package telemetry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Errors of the TLS setup. Callers branch on them to tell a configuration
// mistake (fix the config) from a file that is missing or bad (fix the
// device's files).
var (
	// ErrTLSRequired: an ssl://, tls:// or mqtts:// broker without the
	// CA, certificate and key files. There is no insecure fallback.
	ErrTLSRequired = errors.New("telemetry: a TLS broker needs ca_file, cert_file and key_file")
	// ErrTLSOnPlain: TLS files for a tcp:// broker, most likely a typo in
	// the URL that would otherwise silently drop the encryption.
	ErrTLSOnPlain = errors.New("telemetry: TLS files set for a plain tcp:// broker")
	// ErrKeyExposed: the private key file is readable by group or others.
	ErrKeyExposed = errors.New("telemetry: private key file is readable by group or others")
)

// TLSFiles names the PEM files of the mutual-TLS connection to the
// broker. They are read again at every connection attempt, so that a
// renewed certificate (or a new CA bundle) is used from the next reconnect
// on without restarting the firmware. Renew by writing a new file and
// renaming it over the old one; replace the key before the certificate (a
// mismatched pair fails one attempt, which is retried with backoff).
type TLSFiles struct {
	// CAFile is the PEM bundle of the CAs that may sign the broker's
	// certificate. It is the only trust anchor: the system pool is never
	// consulted, so a certificate some public CA issued for the broker's
	// name is not enough.
	CAFile string
	// CertFile is the cabinet's certificate (PEM; a chain may follow the
	// leaf), signed by the platform's device CA from the CSR that
	// `cabinet provision` wrote.
	CertFile string
	// KeyFile is the certificate's private key (PEM, PKCS#8, SEC 1 or
	// PKCS#1); it must not be readable by group or others.
	KeyFile string
	// ServerName is the name checked in the broker's certificate; empty
	// means the host of the broker URL.
	ServerName string
}

// tlsScheme reports whether a broker URL scheme means TLS (the schemes
// paho dials with TLS and config accepts).
func tlsScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "ssl", "tls", "mqtts":
		return true
	}
	return false
}

// TLSScheme reports whether the broker URL asks for TLS (ssl://, tls:// or
// mqtts://).
func TLSScheme(broker string) bool {
	u, err := url.Parse(broker)
	return err == nil && tlsScheme(u.Scheme)
}

// CheckTLS reports whether files fit the broker URL: a TLS URL needs all
// three files, a plain one none at all. It does not read the files.
func CheckTLS(broker string, files *TLSFiles) error {
	set := files != nil && (files.CAFile != "" || files.CertFile != "" || files.KeyFile != "" || files.ServerName != "")
	if !TLSScheme(broker) {
		if set {
			return fmt.Errorf("%w (%s)", ErrTLSOnPlain, broker)
		}
		return nil
	}
	if !set || files.CAFile == "" || files.CertFile == "" || files.KeyFile == "" {
		return fmt.Errorf("%w (%s)", ErrTLSRequired, broker)
	}
	return nil
}

// Load reads the files now and returns the client configuration for a
// broker at host (the URL's host name, used when ServerName is empty):
// TLS 1.2 or later, the broker verified against CAFile only, and the
// cabinet's certificate offered to the broker.
func (f TLSFiles) Load(host string) (*tls.Config, error) {
	pool, err := loadCAs(f.CAFile)
	if err != nil {
		return nil, err
	}
	if err := checkKeyMode(f.KeyFile); err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("telemetry: tls cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("telemetry: tls key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("telemetry: tls cert_file %s with key_file %s: %w", f.CertFile, f.KeyFile, err)
	}
	name := f.ServerName
	if name == "" {
		name = host
	}
	if name == "" {
		return nil, errors.New("telemetry: tls: no server name to verify the broker against")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   name,
	}, nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("telemetry: tls ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("telemetry: tls ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

func checkKeyMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("telemetry: tls key_file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("telemetry: tls key_file %s: not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %v; chmod 600 it", ErrKeyExposed, path, st.Mode().Perm())
	}
	return nil
}

// certNotAfter is when the configured client certificate expires, for the
// connect log line; zero when unknown.
func certNotAfter(c *tls.Config) time.Time {
	if c == nil || len(c.Certificates) == 0 || c.Certificates[0].Leaf == nil {
		return time.Time{}
	}
	return c.Certificates[0].Leaf.NotAfter
}
