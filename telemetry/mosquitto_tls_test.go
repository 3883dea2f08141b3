package telemetry

// Mutual TLS and the broker ACL end to end, against a real Mosquitto
// (Debian's package; .ci/run installs it) that each test starts on free
// loopback ports with a generated config and kills at cleanup. Also the
// connect and round-trip benchmarks, plain against TLS.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// platformCN is the certificate CN of the platform's services in
// docs/acl/mosquitto.acl.
const platformCN = "bangfu.platform"

// ---- a Mosquitto process ----

// mtlsListener is one listener of the test broker.
type mtlsListener struct {
	port  int
	plain bool   // plain TCP, anonymous clients allowed
	ca    string // TLS: the CA bundle client certificates must chain to
	cert  string // TLS: the broker's certificate and key
	key   string
	acl   string // acl_file, or none
}

type mtlsBroker struct {
	t       testing.TB
	bin     string
	conf    string
	ls      []mtlsListener
	nodelay bool // set_tcp_nodelay: Mosquitto's default leaves Nagle's algorithm on
	cmd     *exec.Cmd
	log     *mtlsLog
}

type mtlsLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *mtlsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *mtlsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func mtlsMosquittoBin(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("mosquitto not found: these tests need it (apt-get install mosquitto; .ci/run installs it)")
	return ""
}

func mtlsFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMTLSBroker starts Mosquitto with the given listeners (a zero port
// gets a free one) and kills it at cleanup.
func startMTLSBroker(t testing.TB, ls ...mtlsListener) *mtlsBroker {
	t.Helper()
	return startMTLSBrokerOpts(t, false, ls...)
}

func startMTLSBrokerOpts(t testing.TB, nodelay bool, ls ...mtlsListener) *mtlsBroker {
	t.Helper()
	RoutePahoLogs(discard) // the plain clients' connection-lost noise
	m := &mtlsBroker{t: t, bin: mtlsMosquittoBin(t), conf: filepath.Join(t.TempDir(), "mosquitto.conf"), nodelay: nodelay}
	for _, l := range ls {
		if l.port == 0 {
			l.port = mtlsFreePort(t)
		}
		m.ls = append(m.ls, l)
	}
	m.start()
	t.Cleanup(m.kill)
	return m
}

func (m *mtlsBroker) writeConf() {
	m.t.Helper()
	var b strings.Builder
	b.WriteString("per_listener_settings true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
	if m.nodelay {
		b.WriteString("set_tcp_nodelay true\n")
	}
	if os.Geteuid() == 0 {
		// As root Mosquitto drops to the "mosquitto" user, who cannot
		// read the test's 0700 temp dirs. Only a test does this.
		b.WriteString("user root\n")
	}
	for _, l := range m.ls {
		fmt.Fprintf(&b, "\nlistener %d 127.0.0.1\n", l.port)
		if l.plain {
			b.WriteString("allow_anonymous true\n")
		} else {
			fmt.Fprintf(&b, "cafile %s\ncertfile %s\nkeyfile %s\n", l.ca, l.cert, l.key)
			b.WriteString("require_certificate true\nuse_identity_as_username true\nuse_username_as_clientid true\nallow_anonymous false\n")
		}
		if l.acl != "" {
			fmt.Fprintf(&b, "acl_file %s\n", l.acl)
		}
	}
	if err := os.WriteFile(m.conf, []byte(b.String()), 0o600); err != nil {
		m.t.Fatal(err)
	}
}

func (m *mtlsBroker) start() {
	m.t.Helper()
	m.writeConf()
	m.log = &mtlsLog{}
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	for _, l := range m.ls {
		addr := fmt.Sprintf("127.0.0.1:%d", l.port)
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if ctx.Err() != nil {
				cancel()
				m.kill()
				m.t.Fatalf("mosquitto did not listen on %s: %v\n%s", addr, err, m.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}
}

// kill stops the broker at once (SIGKILL).
func (m *mtlsBroker) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait() // reaps it and its output copiers; the status is the kill
		m.cmd = nil
	}
}

func (m *mtlsBroker) url(i int) string {
	scheme := "ssl"
	if m.ls[i].plain {
		scheme = "tcp"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, m.ls[i].port)
}

// ---- the test PKI on disk ----

// mtlsPKI is the usual production split: one CA signs the broker's
// certificate (cabinets trust it), the platform's device CA signs the
// cabinets' and the platform services' certificates (the broker trusts
// it); rogue is a CA nobody trusts.
type mtlsPKI struct {
	dir                     string
	serverCA, deviceCA      *pkiCA
	rogue                   *pkiCA
	serverCert, serverKey   string // signed by serverCA
	rogueCert, rogueKey     string // a broker certificate signed by rogue
	deviceCAFile, serverCAs string
}

func newMTLSPKI(t testing.TB) *mtlsPKI {
	t.Helper()
	p := &mtlsPKI{dir: t.TempDir(), serverCA: newPKICA(t, "broker CA"), deviceCA: newPKICA(t, "device CA"), rogue: newPKICA(t, "rogue CA")}
	srv, rog := p.serverCA.server(t), p.rogue.server(t)
	p.serverCert, p.serverKey = pkiWrite(t, p.dir, "server.pem", srv.certPEM), pkiWrite(t, p.dir, "server-key.pem", srv.keyPEM)
	p.rogueCert, p.rogueKey = pkiWrite(t, p.dir, "rogue.pem", rog.certPEM), pkiWrite(t, p.dir, "rogue-key.pem", rog.keyPEM)
	p.deviceCAFile = pkiWrite(t, p.dir, "device-ca.pem", p.deviceCA.pem)
	p.serverCAs = pkiWrite(t, p.dir, "server-ca.pem", p.serverCA.pem)
	return p
}

// listener is a TLS listener with the good broker certificate.
func (p *mtlsPKI) listener(acl string) mtlsListener {
	return mtlsListener{ca: p.deviceCAFile, cert: p.serverCert, key: p.serverKey, acl: acl}
}

// files returns the TLS files of a client with CN cn signed by the device CA.
func (p *mtlsPKI) files(t testing.TB, cn string) TLSFiles {
	t.Helper()
	return pkiFiles(t, p.serverCA.pem, p.deviceCA.client(t, cn))
}

// ---- plain paho clients: the platform, a rogue ----

// mtlsRecorder records what a client receives, in order: paho calls the
// handler of a client with OrderMatters (its default) one message at a
// time, in the order the broker sent them, which the ACL tests' markers
// rely on.
type mtlsRecorder struct {
	mu   sync.Mutex
	msgs []message
}

func (r *mtlsRecorder) handle(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, message{m.Topic(), bytes.Clone(m.Payload()), m.Retained()})
	r.mu.Unlock()
}

// until waits for the first message matching pred and returns every
// message received up to and including it.
func (r *mtlsRecorder) until(t testing.TB, what string, pred func(message) bool) []message {
	t.Helper()
	var got []message
	waitUntil(t, what, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, m := range r.msgs {
			if pred(m) {
				got = append([]message(nil), r.msgs[:i+1]...)
				return true
			}
		}
		return false
	})
	return got
}

func mtlsIs(topic, payload string) func(message) bool {
	return func(m message) bool { return m.Topic == topic && string(m.Payload) == payload }
}

func mtlsClientOpts(url, id string, tc *tls.Config) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(5 * time.Second).SetTLSConfig(tc)
}

// mtlsConnect connects a plain client; it is disconnected at cleanup.
func mtlsConnect(t testing.TB, o *mqtt.ClientOptions) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(o)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := wait(ctx, c.Connect()); err != nil {
		t.Fatalf("connect %s: %v", o.ClientID, err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func mtlsTLS(t testing.TB, f TLSFiles) *tls.Config {
	t.Helper()
	tc, err := f.Load("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// mtlsSubscribe subscribes at QoS 1 and returns the SUBACK codes.
func mtlsSubscribe(t testing.TB, c mqtt.Client, h mqtt.MessageHandler, filters ...string) map[string]byte {
	t.Helper()
	fs := map[string]byte{}
	for _, f := range filters {
		fs[f] = 1
	}
	tok := c.SubscribeMultiple(fs, h)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := wait(ctx, tok); err != nil {
		t.Fatal(err)
	}
	return tok.(*mqtt.SubscribeToken).Result()
}

// mtlsPublish publishes at QoS 1 and waits for the PUBACK. Mosquitto
// acknowledges a publish its ACL denies just the same (MQTT 3.1.1 has no
// way to say no) and drops it.
func mtlsPublish(t testing.TB, c mqtt.Client, topic string, retained bool, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := wait(ctx, c.Publish(topic, 1, retained, []byte(payload))); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// mtlsConnectOnce makes one connection attempt of a Link, as its Run loop
// does, and disconnects on success.
func mtlsConnectOnce(t testing.TB, o Opts) error {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	c, err := l.connect(ctx, make(chan error, 1))
	if err == nil {
		c.Disconnect(0)
	}
	return err
}

func mtlsLinkOpts(broker string, f TLSFiles) Opts {
	o := linkOpts(broker)
	o.TLS = &f
	return o
}

// ---- tests ----

// The cabinet connects with its certificate, publishes and receives; the
// broker saw the certificate's CN as the client (use_username_as_clientid).
func TestMosquittoTLSLink(t *testing.T) {
	leakCheck(t)
	p := newMTLSPKI(t)
	m := startMTLSBroker(t, p.listener(""))
	plat := mtlsConnect(t, mtlsClientOpts(m.url(0), platformCN, mtlsTLS(t, p.files(t, platformCN))))
	seen := &mtlsRecorder{}
	mtlsSubscribe(t, plat, seen.handle, testTopics.Prefix+"/#")

	o := mtlsLinkOpts(m.url(0), p.files(t, testCabinet))
	o.Subscribe = []string{testTopics.Cmd()}
	l := runLink(t, o)
	waitUntil(t, "link up over TLS", l.Connected)
	online := seen.until(t, "online state", func(m message) bool { return m.Topic == testTopics.State() })
	if s := decodeState(t, online[len(online)-1].Payload); !s.Online {
		t.Fatalf("state %+v", s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := l.Publish(ctx, testTopics.Sale(), 1, false, []byte(`{"sale":1}`)); err != nil {
		t.Fatal(err)
	}
	seen.until(t, "sale over TLS", mtlsIs(testTopics.Sale(), `{"sale":1}`))

	mtlsPublish(t, plat, testTopics.Cmd(), false, `{"cmd":1}`)
	select {
	case in := <-l.Inbound():
		if in.Topic != testTopics.Cmd() || string(in.Payload) != `{"cmd":1}` {
			t.Fatalf("inbound %s %s", in.Topic, in.Payload)
		}
	case <-ctx.Done():
		t.Fatal("command not received over TLS")
	}
}

// Every way the handshake must fail does, and says who refused it. A good
// certificate on the same broker connects (the control case).
func TestMosquittoTLSRefusals(t *testing.T) {
	leakCheck(t)
	p := newMTLSPKI(t)
	m := startMTLSBroker(t,
		p.listener(""), // 0: the real broker
		mtlsListener{ca: p.deviceCAFile, cert: p.rogueCert, key: p.rogueKey}, // 1: an impostor with a certificate from another CA
		mtlsListener{plain: true}, // 2: plain
	)
	tlsPort := m.url(0)[len("ssl://"):]
	good := p.files(t, testCabinet)

	// Clean: the other side closes the connection at the first bytes it
	// cannot parse; the attempt does not wait for the connect timeout.
	failsCleanly := func(t *testing.T, err error) {
		t.Helper()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("attempt timed out instead of failing: %v", err)
		}
	}
	// The broker refused: with TLS 1.2 its alert ends the handshake; with
	// TLS 1.3 the client's handshake is over before the broker has checked
	// the certificate, so the client may see the alert or, if the broker
	// closed first, a reset while it sends CONNECT. Either way the
	// cabinet's own check of the broker passed.
	brokerRefused := func(t *testing.T, err error) {
		t.Helper()
		var op *net.OpError
		var ua x509.UnknownAuthorityError
		var he x509.HostnameError
		if !errors.As(err, &op) || errors.As(err, &ua) || errors.As(err, &he) {
			t.Errorf("want the broker to end the connection, got %v", err)
		}
	}
	brokerAlert := func(t *testing.T, err error) {
		t.Helper()
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "remote error" {
			t.Errorf("want a TLS alert from the broker, got %v", err)
		}
	}
	// rawAttempt connects a plain paho client once with tc.
	rawAttempt := func(tc *tls.Config) error {
		c := mqtt.NewClient(mtlsClientOpts(m.url(0), testCabinet, tc))
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		err := wait(ctx, c.Connect())
		c.Disconnect(0)
		return err
	}
	tls12 := func(tc *tls.Config) *tls.Config { tc.MaxVersion = tls.VersionTLS12; return tc }
	tests := []struct {
		name  string
		try   func(t *testing.T) error
		check func(t *testing.T, err error) // nil: must succeed
	}{
		{"good certificate", func(t *testing.T) error {
			return mtlsConnectOnce(t, mtlsLinkOpts(m.url(0), good))
		}, nil},
		{"client certificate from another CA", func(t *testing.T) error {
			return mtlsConnectOnce(t, mtlsLinkOpts(m.url(0), pkiFiles(t, p.serverCA.pem, p.rogue.client(t, testCabinet))))
		}, brokerRefused},
		{"client certificate from another CA, TLS 1.2", func(t *testing.T) error {
			return rawAttempt(tls12(mtlsTLS(t, pkiFiles(t, p.serverCA.pem, p.rogue.client(t, testCabinet)))))
		}, brokerAlert},
		{"no client certificate", func(t *testing.T) error {
			tc := mtlsTLS(t, good)
			tc.Certificates = nil
			return rawAttempt(tc)
		}, brokerRefused},
		{"no client certificate, TLS 1.2", func(t *testing.T) error {
			tc := tls12(mtlsTLS(t, good))
			tc.Certificates = nil
			return rawAttempt(tc)
		}, brokerAlert},
		{"broker certificate from another CA", func(t *testing.T) error {
			return mtlsConnectOnce(t, mtlsLinkOpts(m.url(1), good))
		}, func(t *testing.T, err error) {
			var ua x509.UnknownAuthorityError
			if !errors.As(err, &ua) {
				t.Errorf("want x509.UnknownAuthorityError from the cabinet's check, got %v", err)
			}
		}},
		{"broker certificate for another name", func(t *testing.T) error {
			f := good
			f.ServerName = "mqtt.bangfu.example"
			return mtlsConnectOnce(t, mtlsLinkOpts(m.url(0), f))
		}, func(t *testing.T, err error) {
			var he x509.HostnameError
			if !errors.As(err, &he) {
				t.Errorf("want x509.HostnameError from the cabinet's check, got %v", err)
			}
		}},
		{"plain MQTT to the TLS port", func(t *testing.T) error {
			return mtlsConnectOnce(t, linkOpts("tcp://"+tlsPort))
		}, failsCleanly},
		{"TLS to a plain port", func(t *testing.T) error {
			return mtlsConnectOnce(t, mtlsLinkOpts("ssl://"+m.url(2)[len("tcp://"):], good))
		}, failsCleanly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.try(t)
			switch {
			case tc.check == nil && err != nil:
				t.Fatalf("refused: %v\n%s", err, m.log)
			case tc.check != nil && err == nil:
				t.Fatal("connected")
			case tc.check != nil:
				t.Logf("refused as expected: %v", err)
				tc.check(t, err)
			}
		})
	}
	// The broker is still serving after all that.
	if err := mtlsConnectOnce(t, mtlsLinkOpts(m.url(0), good)); err != nil {
		t.Fatalf("good certificate refused after the failures: %v", err)
	}
}

// A certificate renewed on disk is used at the next reconnect, without a
// restart: here the platform moves cabinets to a new device CA, the broker
// comes back trusting only the new one, and the link, which read the new
// files when it reconnected, gets in.
func TestMosquittoTLSRenewedCertificate(t *testing.T) {
	leakCheck(t)
	p := newMTLSPKI(t)
	m := startMTLSBroker(t, p.listener(""))
	f := p.files(t, testCabinet)
	l := runLink(t, mtlsLinkOpts(m.url(0), f))
	waitUntil(t, "link up with the first certificate", l.Connected)

	next := newPKICA(t, "device CA 2")
	renewed := next.client(t, testCabinet)
	pkiReplace(t, f.KeyFile, renewed.keyPEM) // key first: see TLSFiles
	pkiReplace(t, f.CertFile, renewed.certPEM)

	m.kill()
	waitUntil(t, "link down", func() bool { return !l.Connected() })
	m.ls[0].ca = pkiWrite(t, t.TempDir(), "device-ca-2.pem", next.pem)
	m.start()
	waitUntil(t, "link up again with the renewed certificate", func() bool { return l.Epoch() == 2 && l.Connected() })

	// The old certificate would not have done: the broker now refuses it.
	old := p.files(t, testCabinet)
	if err := mtlsConnectOnce(t, mtlsLinkOpts(m.url(0), old)); err == nil {
		t.Fatal("the broker still accepts the old device CA; the test proves nothing")
	}
}

// docs/acl/mosquitto.acl, the file in the repository, confines a cabinet
// to its own topics. A rogue with a valid certificate for cabinet A
// publishes on B's topics and subscribes to B's commands: nothing of it
// reaches anyone, while A's own topics work. Mosquitto acknowledges the
// denied publishes and drops them, so a privileged subscriber and markers
// (an allowed message sent after the denied ones, on the same connection)
// show that nothing was delivered: what was not there before the marker
// arrived was never sent.
func TestMosquittoACL(t *testing.T) {
	leakCheck(t)
	acl, err := filepath.Abs(filepath.Join("..", "docs", "acl", "mosquitto.acl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(acl); err != nil {
		t.Fatal(err)
	}
	p := newMTLSPKI(t)
	m := startMTLSBroker(t, p.listener(acl))
	url := m.url(0)
	const idA, idB = "NM-150102-0007", "NM-150102-0008"
	A := msg.Topics{Prefix: msg.DefaultPrefix, Cabinet: idA}
	B := msg.Topics{Prefix: msg.DefaultPrefix, Cabinet: idB}
	filesA := p.files(t, idA)

	// The platform sees everything under the prefix.
	plat := mtlsConnect(t, mtlsClientOpts(url, platformCN, mtlsTLS(t, p.files(t, platformCN))))
	platSeen := &mtlsRecorder{}
	mtlsSubscribe(t, plat, platSeen.handle, msg.DefaultPrefix+"/#")
	// Cabinet B listens to its commands.
	cabB := mtlsConnect(t, mtlsClientOpts(url, idB, mtlsTLS(t, p.files(t, idB))))
	bSeen := &mtlsRecorder{}
	if codes := mtlsSubscribe(t, cabB, bSeen.handle, B.Cmd()); codes[B.Cmd()] == subRefused {
		t.Fatalf("B may not subscribe to its own commands: %v", codes)
	}

	// The rogue: A's certificate, any client id it likes.
	rogue := mtlsConnect(t, mtlsClientOpts(url, "anything", mtlsTLS(t, filesA)))
	rogueSeen := &mtlsRecorder{}
	codes := mtlsSubscribe(t, rogue, rogueSeen.handle, A.Cmd(), B.Cmd(), B.Ack(), B.Planogram(), msg.DefaultPrefix+"/c/+/cmd", "#")
	t.Logf("SUBACK codes for the rogue: %v", codes)
	if codes[A.Cmd()] == subRefused {
		t.Fatalf("A may not subscribe to its own commands: %v", codes)
	}

	t.Run("cannot publish as B", func(t *testing.T) {
		forged := []struct {
			topic    string
			retained bool
		}{
			{B.Sale(), false}, {B.Reply(), false}, {B.Alarm(), false}, {B.Heartbeat(), false},
			{B.State(), true}, {B.Cmd(), false}, {B.Ack(), false}, {B.Planogram(), true},
			{A.Cmd(), false},    // not even commands to itself
			{A.Catalog(), true}, // nor the catalog everyone trusts
			{msg.DefaultPrefix + "/c/" + idB + "/other", false},
		}
		for _, f := range forged {
			mtlsPublish(t, rogue, f.topic, f.retained, "forged")
		}
		mtlsPublish(t, rogue, A.Sale(), false, "marker-1")
		before := platSeen.until(t, "A's own sale at the platform", mtlsIs(A.Sale(), "marker-1"))
		for _, m := range before {
			if string(m.Payload) == "forged" {
				t.Errorf("the platform received a forged %s", m.Topic)
			}
		}
		// B's first command is the platform's, not the forged one.
		mtlsPublish(t, plat, B.Cmd(), false, "genuine-for-B")
		got := bSeen.until(t, "B's genuine command", mtlsIs(B.Cmd(), "genuine-for-B"))
		if len(got) != 1 {
			t.Errorf("B received %d messages before its genuine command: %+v", len(got)-1, got[:len(got)-1])
		}
	})

	t.Run("cannot read B's commands", func(t *testing.T) {
		mtlsPublish(t, plat, B.Cmd(), false, "only-for-B")
		mtlsPublish(t, plat, B.Ack(), false, "only-for-B")
		mtlsPublish(t, plat, B.Planogram(), false, "only-for-B")
		mtlsPublish(t, plat, A.Cmd(), false, "marker-A")
		got := rogueSeen.until(t, "A's own command", mtlsIs(A.Cmd(), "marker-A"))
		for _, m := range got {
			if m.Topic != A.Cmd() {
				t.Errorf("the rogue received %s %q", m.Topic, m.Payload)
			}
		}
		bSeen.until(t, "B's command delivered to B", mtlsIs(B.Cmd(), "only-for-B"))
	})

	t.Run("reads the catalog", func(t *testing.T) {
		mtlsPublish(t, plat, A.Catalog(), false, "catalog-v1")
		rogueSeen.until(t, "catalog at A", mtlsIs(A.Catalog(), "catalog-v1"))
	})

	t.Run("cannot take over B's session", func(t *testing.T) {
		// Asking for B's client id: the broker replaces it with the CN.
		mtlsConnect(t, mtlsClientOpts(url, idB, mtlsTLS(t, filesA)))
		// Had B been thrown off, this would never reach it (no reconnect,
		// clean session).
		mtlsPublish(t, plat, B.Cmd(), false, "still-connected")
		bSeen.until(t, "B still connected", mtlsIs(B.Cmd(), "still-connected"))
		if !cabB.IsConnectionOpen() {
			t.Fatal("B was disconnected")
		}
	})

	// The real link of cabinet A: everything the firmware does is allowed
	// (retained state and will, its subscriptions, its uplink), and a
	// subscription the ACL refuses is reported instead of going unnoticed.
	t.Run("the cabinet's link works", func(t *testing.T) {
		rogue.Disconnect(50) // same CN, so the same client id as the link
		logs := &mtlsLog{}
		o := mtlsLinkOpts(url, filesA)
		o.Topics = A
		o.ClientID = idA
		o.Subscribe = []string{A.Cmd(), A.Ack(), A.Planogram(), A.Catalog(), B.Cmd()}
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		l := runLink(t, o)
		waitUntil(t, "link A up", l.Connected)
		platSeen.until(t, "A online", func(m message) bool {
			return m.Topic == A.State() && strings.Contains(string(m.Payload), `"online":true`)
		})
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := l.Publish(ctx, A.Sale(), 1, false, []byte("sale-from-link")); err != nil {
			t.Fatal(err)
		}
		platSeen.until(t, "link A's sale", mtlsIs(A.Sale(), "sale-from-link"))
		mtlsPublish(t, plat, A.Planogram(), true, "planogram-A")
		select {
		case in := <-l.Inbound():
			if in.Topic != A.Planogram() {
				t.Fatalf("link A received %s", in.Topic)
			}
		case <-ctx.Done():
			t.Fatal("link A received nothing")
		}
		if refused := strings.Contains(logs.String(), "subscription refused"); refused != (codes[B.Cmd()] == subRefused) {
			t.Errorf("refused-subscription log %v, broker refused B's cmd %v; log:\n%s", refused, codes[B.Cmd()] == subRefused, logs)
		}
	})
}

// ---- benchmarks ----

// mtlsBenchBroker is one Mosquitto with a plain and a TLS listener.
func mtlsBenchBroker(b *testing.B, nodelay bool) (*mtlsBroker, *mtlsPKI) {
	p := newMTLSPKI(b)
	return startMTLSBrokerOpts(b, nodelay, mtlsListener{plain: true}, p.listener("")), p
}

// mtlsBrokerModes runs a benchmark against Mosquitto as installed (Nagle's
// algorithm on its sockets) and with set_tcp_nodelay true: small MQTT
// packets then wait for delayed ACKs, which dominates these numbers.
func mtlsBrokerModes(b *testing.B, f func(b *testing.B, nodelay bool)) {
	b.Run("mosquitto-default", func(b *testing.B) { f(b, false) })
	b.Run("set_tcp_nodelay", func(b *testing.B) { f(b, true) })
}

// BenchmarkConnectPlain and BenchmarkConnectTLS time one connection of the
// Link as its reconnect loop makes it: TCP (and the TLS handshake, after
// reading the certificate files), CONNECT, the retained online state and
// the subscriptions.
func BenchmarkConnectPlain(b *testing.B) {
	mtlsBrokerModes(b, func(b *testing.B, nd bool) { mtlsBenchConnect(b, false, nd) })
}
func BenchmarkConnectTLS(b *testing.B) {
	mtlsBrokerModes(b, func(b *testing.B, nd bool) { mtlsBenchConnect(b, true, nd) })
}

func mtlsBenchConnect(b *testing.B, useTLS, nodelay bool) {
	m, p := mtlsBenchBroker(b, nodelay)
	o := linkOpts(m.url(0))
	if useTLS {
		o = mtlsLinkOpts(m.url(1), p.files(b, testCabinet))
	}
	o.Subscribe = []string{testTopics.Cmd(), testTopics.Ack(), testTopics.Planogram(), testTopics.Catalog()}
	l, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		c, err := l.connect(ctx, make(chan error, 1))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Disconnect(0)
		b.StartTimer()
	}
}

// BenchmarkRoundTripPlain and BenchmarkRoundTripTLS time the unlock path's
// transport: the platform publishes a command (QoS 1), the cabinet's Link
// hands it over, the cabinet publishes its reply (QoS 1) and the platform
// receives it.
func BenchmarkRoundTripPlain(b *testing.B) {
	mtlsBrokerModes(b, func(b *testing.B, nd bool) { mtlsBenchRoundTrip(b, false, nd) })
}
func BenchmarkRoundTripTLS(b *testing.B) {
	mtlsBrokerModes(b, func(b *testing.B, nd bool) { mtlsBenchRoundTrip(b, true, nd) })
}

func mtlsBenchRoundTrip(b *testing.B, useTLS, nodelay bool) {
	m, p := mtlsBenchBroker(b, nodelay)
	o := linkOpts(m.url(0))
	platOpts := mtlsClientOpts(m.url(0), "platform-bench", nil)
	if useTLS {
		o = mtlsLinkOpts(m.url(1), p.files(b, testCabinet))
		platOpts = mtlsClientOpts(m.url(1), platformCN, mtlsTLS(b, p.files(b, platformCN)))
	}
	o.Subscribe = []string{testTopics.Cmd()}
	l := runLink(b, o)
	waitUntil(b, "link up", l.Connected)
	plat := mtlsConnect(b, platOpts)
	replies := make(chan struct{}, 1)
	mtlsSubscribe(b, plat, func(mqtt.Client, mqtt.Message) { replies <- struct{}{} }, testTopics.Reply())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd, reply := []byte(`{"id":"c","type":"unlock"}`), []byte(`{"cmd_id":"c","ok":true}`)
	b.ResetTimer()
	for range b.N {
		if err := wait(ctx, plat.Publish(testTopics.Cmd(), 1, false, cmd)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-l.Inbound():
		case <-ctx.Done():
			b.Fatal("command lost")
		}
		if err := l.Publish(ctx, testTopics.Reply(), 1, false, reply); err != nil {
			b.Fatal(err)
		}
		select {
		case <-replies:
		case <-ctx.Done():
			b.Fatal("reply lost")
		}
	}
}

// mtlsSubDenyHook lets every client in and refuses subscriptions to one
// filter, the way EMQX's authorization answers a denied SUBSCRIBE (0x80 in
// the SUBACK), which Mosquitto 2.0 does not do.
type mtlsSubDenyHook struct {
	mochi.HookBase
	deny string
}

func (h *mtlsSubDenyHook) ID() string { return "sub-deny" }
func (h *mtlsSubDenyHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (h *mtlsSubDenyHook) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *mtlsSubDenyHook) OnACLCheck(_ *mochi.Client, topic string, write bool) bool {
	return write || topic != h.deny
}

// A subscription the broker refuses is logged as an error naming the
// topic; the link stays up and its other subscriptions work.
func TestLinkReportsRefusedSubscription(t *testing.T) {
	leakCheck(t)
	b := startBrokerAuth(t, "127.0.0.1:0", false, func(b *testBroker) {
		if err := b.srv.AddHook(&mtlsSubDenyHook{deny: testTopics.Cmd()}, nil); err != nil {
			t.Fatal(err)
		}
	})
	logs := &mtlsLog{}
	o := linkOpts(b.URL())
	o.Subscribe = []string{testTopics.Cmd(), testTopics.Ack()}
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	l := runLink(t, o)
	waitUntil(t, "link up", l.Connected)
	out := logs.String()
	if !strings.Contains(out, "subscription refused") || !strings.Contains(out, testTopics.Cmd()) || strings.Contains(out, testTopics.Ack()) {
		t.Fatalf("log does not name exactly the refused subscription:\n%s", out)
	}
	if err := b.srv.Publish(testTopics.Ack(), []byte("ack"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-l.Inbound():
		if in.Topic != testTopics.Ack() {
			t.Fatalf("received %s", in.Topic)
		}
	case <-time.After(hangGuard):
		t.Fatal("the allowed subscription does not work")
	}
}
