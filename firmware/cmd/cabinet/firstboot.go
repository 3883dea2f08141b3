package main

// `cabinet firstboot`: provision a freshly flashed cabinet from a small
// text file the technician wrote onto the SD card's boot partition
// (bangfu.txt; the FAT partition a PC can write, /boot/firmware on
// Debian and Raspberry Pi OS), then show the registration QR code on the
// cabinet's display for the technician to scan.
//
// The boot file is key = value lines (docs/hardware.md, "First boot"):
//
//	# Bangfu cabinet
//	cabinet_id   = NM-150102-0007
//	broker       = ssl://mqtt.example.net:8883
//	platform_key = plat-2026a:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo
//	board        = rpi4-fridge-2door
//
// The provisioning itself is provision's (the same checks, keys, CSR and
// config). Every step can be repeated: a power cut at any point leaves
// either the state before the step or after it (files are written to a
// temporary name and renamed), and the next boot's run finishes the job.
// The steps, in order:
//
//  1. read and check the whole boot file (and the board file it names);
//     a bad file changes nothing;
//  2. provision, unless the config and the keys already say what the boot
//     file says (an earlier run got that far);
//  3. link /etc/bangfu/board.yaml to the board file named;
//  4. write the registration receipt next to the boot file
//     (bangfu-done.txt: the same data as the QR code, and the CSR);
//  5. remove the boot file;
//  6. show the registration QR code on the display (and the console) for
//     --show, then blank the display.
//
// Later, once the platform's CA has signed the CSR, the technician puts the
// certificate (device-cert.pem) and the broker's CA bundle (ca.pem) on the
// boot partition too; the next run checks them against the cabinet's key
// and id, installs them where the config names them, and removes them.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/hal"
	"github.com/bangfu/cabinet/hal/board"
	"github.com/bangfu/cabinet/telemetry/msg"
)

const (
	// fbBootFile is the technician's file on the boot partition.
	fbBootFile = "bangfu.txt"
	// fbReceiptFile replaces it once the cabinet is provisioned.
	fbReceiptFile = "bangfu-done.txt"
	// fbBoardLink is the board file the service runs, in the etc dir.
	fbBoardLink = "board.yaml"
	// fbMaxBootFile bounds what is read of the boot file and the PEM files.
	fbMaxBootFile = 64 << 10
)

// fbCertFiles are the files the platform's answer arrives in on the boot
// partition: the same names as in <data_dir>/tls.
var fbCertFiles = []string{provCertFile, provCAFile}

// fbBoardRE bounds a board name: a file in <etc>/boards, without a path.
var fbBoardRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// bootFile is what the technician's boot file says.
type bootFile struct {
	id     string
	broker string
	keys   map[string]ed25519.PublicKey // kid → key, at least one
	board  string                       // "": the file names none
}

// fbKeys are the boot file's keys, for the error that names an unknown one.
const fbKeys = "cabinet_id, broker, platform_key, board"

// parseBootFile reads the boot file's key = value lines. Blank lines and
// lines starting with # or ; are skipped; keys are case-insensitive;
// values may be in double quotes; a UTF-8 byte order mark and CRLF line
// ends (Notepad's) are accepted. Every error names the file and line.
func parseBootFile(name string, data []byte) (bootFile, error) {
	bf := bootFile{keys: map[string]ed25519.PublicKey{}}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	seen := map[string]int{} // key → line, for the single-valued keys
	errAt := func(n int, f string, a ...any) (bootFile, error) {
		return bootFile{}, fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(f, a...))
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return errAt(n, "%q: want key = value", line)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if k != "platform_key" {
			if prev, dup := seen[k]; dup {
				return errAt(n, "%s given again (first on line %d)", k, prev)
			}
			seen[k] = n
		}
		switch k {
		case "cabinet_id":
			if !msg.ValidCabinetID(v) {
				return errAt(n, "cabinet_id %q: letters, digits and '-', 1 to 64 characters", v)
			}
			bf.id = v
		case "broker":
			if _, err := provBrokerTLS(v); err != nil {
				return errAt(n, "broker %v", err)
			}
			bf.broker = v
		case "platform_key":
			// The kid may hold ':' but base64url never does: the last one splits.
			i := strings.LastIndexByte(v, ':')
			if i < 0 {
				return errAt(n, "platform_key %q: want KID:KEY (the key as base64url)", v)
			}
			kid, enc := strings.TrimSpace(v[:i]), strings.TrimSpace(v[i+1:])
			if !provKidRE.MatchString(kid) {
				return errAt(n, "platform_key: kid %q: 1 to 128 of letters, digits and . _ : -", kid)
			}
			if _, dup := bf.keys[kid]; dup {
				return errAt(n, "platform_key: kid %q given twice", kid)
			}
			pub, err := msg.DecodeKey(strings.TrimRight(enc, "="))
			if err != nil {
				return errAt(n, "platform_key %s: %q is not an Ed25519 public key in base64url (43 characters)", kid, enc)
			}
			bf.keys[kid] = pub
		case "board":
			v = strings.TrimSuffix(v, ".yaml")
			if !fbBoardRE.MatchString(v) {
				return errAt(n, "board %q: want a board file's name from /etc/bangfu/boards, e.g. rpi4-fridge-2door", v)
			}
			bf.board = v
		default:
			return errAt(n, "unknown key %q (the keys are %s)", k, fbKeys)
		}
	}
	var missing []string
	if bf.id == "" {
		missing = append(missing, "cabinet_id")
	}
	if bf.broker == "" {
		missing = append(missing, "broker")
	}
	if len(bf.keys) == 0 {
		missing = append(missing, "platform_key")
	}
	if len(missing) > 0 {
		return bootFile{}, fmt.Errorf("%s: no %s line (every boot file needs cabinet_id, broker and at least one platform_key)", name, strings.Join(missing, ", no "))
	}
	return bf, nil
}

// fbOpts is what `cabinet firstboot` was asked to do.
type fbOpts struct {
	bootDir string        // the boot partition
	etcDir  string        // cabinet.json, board.yaml and boards/
	dataDir string        // "": the config's, else the default
	show    time.Duration // how long the QR code stays on the display
	qrOnly  bool          // --qr: show the registration of a provisioned cabinet
	host    boardHost     // how the board file reaches the display
}

// registration is what the platform needs to register the cabinet, as the
// QR code carries it.
type registration struct {
	// V marks the payload as a Bangfu registration, version 1.
	V         int    `json:"bangfu_registration"`
	CabinetID string `json:"cabinet_id"`
	Kid       string `json:"kid"`
	// Ed25519 is the cabinet's signing key, base64url without padding.
	Ed25519 string `json:"ed25519"`
	// CSRSHA256 is the SHA-256 of the CSR (DER), in hex: the CSR that
	// reaches the platform's CA by any other way must match it (`openssl
	// req -in device.csr -outform DER | sha256sum`). The CSR holds the TLS
	// key's public half.
	CSRSHA256 string `json:"csr_sha256"`

	csrPEM []byte
}

// fbResult says what a run did.
type fbResult struct {
	provisioned bool // keys made and config written in this run
	consumed    bool // the boot file was removed in this run
	reg         *registration
}

// errNoBootFile: nothing to do.
var errNoBootFile = errors.New("no boot file")

// firstboot provisions the cabinet from the boot file, if there is one.
// A missing boot file is errNoBootFile. Nothing is written before the
// whole boot file has been judged.
func firstboot(ctx context.Context, o fbOpts, log *slog.Logger, stdout, stderr io.Writer) (fbResult, error) {
	var res fbResult
	bootPath := filepath.Join(o.bootDir, fbBootFile)
	cfgPath := filepath.Join(o.etcDir, "cabinet.json")
	fail := func(f string, a ...any) (fbResult, error) {
		return res, fmt.Errorf("cabinet: firstboot: "+f, a...)
	}
	if o.qrOnly {
		reg, err := fbRegistration(cfgPath, o.dataDir)
		if err != nil {
			return fail("%w", err)
		}
		res.reg = reg
		fbShow(ctx, o, reg, log, stdout)
		return res, nil
	}

	// 1. The boot file, whole, and what it names.
	data, err := fbReadBootFile(bootPath)
	if errors.Is(err, fs.ErrNotExist) {
		// No boot file: perhaps the platform's certificate.
		did, err := fbInstallCerts(o, log)
		if err != nil {
			return fail("%w", err)
		}
		if !did {
			return res, errNoBootFile
		}
		return res, nil
	}
	if err != nil {
		return fail("%w", err)
	}
	bf, err := parseBootFile(bootPath, data)
	if err != nil {
		return fail("%w (nothing was changed)", err)
	}
	var boardTarget string
	if bf.board != "" {
		boardTarget = filepath.Join("boards", bf.board+".yaml")
		if _, err := board.Load(filepath.Join(o.etcDir, boardTarget)); err != nil {
			return fail("%s: board %s: %w (nothing was changed)", bootPath, bf.board, err)
		}
		if err := fbCheckBoardLink(filepath.Join(o.etcDir, fbBoardLink)); err != nil {
			return fail("%w (nothing was changed)", err)
		}
	}
	doc, _, err := provReadConfig(cfgPath)
	if err != nil {
		return fail("%w (nothing was changed)", err)
	}
	dataDir, err := provDataDir(doc, o.dataDir, cfgPath)
	if err != nil {
		return fail("%w (nothing was changed)", err)
	}

	// 2. Provision, unless an earlier run did.
	if !fbDone(doc, bf, dataDir) {
		force := false
		keyPath := filepath.Join(dataDir, provDeviceKeyFile)
		_, err := os.Stat(keyPath)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail("%w (nothing was changed)", err)
		}
		if err == nil {
			var oldID string
			if raw, ok := doc["cabinet_id"]; ok {
				_ = json.Unmarshal(raw, &oldID)
			}
			_, lerr := os.Stat(filepath.Join(dataDir, "ledger.db"))
			if lerr == nil {
				return fail("%s names cabinet %s, but this cabinet is provisioned already (as %q, keys in %s) and its firmware has run (it has a ledger); firstboot does not replace its keys. Remove the boot file, or run `cabinet provision --force` by hand (nothing was changed)",
					bootPath, bf.id, oldID, dataDir)
			}
			// Keys, but no ledger: the firmware never ran with them. Either
			// an earlier run was cut short before the config named them (so
			// its QR code was never shown), or the technician corrects the
			// boot file before the cabinet went into service. Make them
			// again; provision keeps whatever else is there.
			force = true
			log.Info("keys of a cabinet that never ran found; making new ones", "data_dir", dataDir, "was", oldID)
		}
		out, err := provision(provOpts{id: bf.id, keys: bf.keys, cfgPath: cfgPath, broker: bf.broker, dataDir: o.dataDir, force: force}, stderr)
		if err != nil {
			return res, err
		}
		res.provisioned = true
		log.Info("provisioned", "cabinet", out.CabinetID, "config", cfgPath, "data_dir", dataDir)
	} else {
		log.Info("already provisioned as the boot file says", "cabinet", bf.id)
	}

	// 3. The board the service runs.
	if boardTarget != "" {
		if err := fbLinkBoard(filepath.Join(o.etcDir, fbBoardLink), boardTarget); err != nil {
			return fail("board: %w", err)
		}
	}

	reg, err := fbRegistration(cfgPath, o.dataDir)
	if err != nil {
		return fail("%w", err)
	}
	res.reg = reg

	// 4. The receipt: a PC reading the card sees what was done. Not
	// having it is no reason to stop.
	if err := fbWriteReceipt(filepath.Join(o.bootDir, fbReceiptFile), reg); err != nil {
		log.Warn("could not write the registration receipt on the boot partition", "err", err)
	}

	// 5. The boot file has done its work.
	if err := os.Remove(bootPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("remove %s: %w (the next boot finishes the job)", bootPath, err)
	}
	if err := fbSyncDir(o.bootDir); err != nil {
		log.Warn("sync boot partition", "err", err)
	}
	res.consumed = true

	// The certificate may be on the card already (a cabinet re-flashed
	// with its answer at hand); a bad one does not undo the provisioning.
	if _, err := fbInstallCerts(o, log); err != nil {
		log.Error("certificate on the boot partition not installed", "err", err)
	}

	// 6. The QR code, for the technician.
	fbShow(ctx, o, reg, log, stdout)
	return res, nil
}

// fbInstallCerts installs the certificate and the broker's CA bundle
// found on the boot partition at the paths the config names, after
// checking the certificate against the cabinet's TLS key and id, then
// removes them from the boot partition. It reports whether there was
// anything to install. Nothing is installed unless every file found
// passes; a failed check leaves the files where they are.
func fbInstallCerts(o fbOpts, log *slog.Logger) (bool, error) {
	found := map[string][]byte{}
	for _, name := range fbCertFiles {
		b, err := fbReadBootFile(filepath.Join(o.bootDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return true, err
		}
		found[name] = b
	}
	if len(found) == 0 {
		return false, nil
	}
	cfgPath := filepath.Join(o.etcDir, "cabinet.json")
	doc, _, err := provReadConfig(cfgPath)
	if err != nil {
		return true, err
	}
	var id string
	var files config.TLS
	if raw, ok := doc["cabinet_id"]; ok {
		_ = json.Unmarshal(raw, &id)
	}
	if raw, ok := doc["tls"]; ok {
		_ = json.Unmarshal(raw, &files)
	}
	if id == "" || files.CertFile == "" || files.CAFile == "" || files.KeyFile == "" {
		return true, fmt.Errorf("%s names no cabinet or no TLS files (is the cabinet provisioned, with an ssl:// broker?); %v left on the boot partition",
			cfgPath, fbCertFiles)
	}
	dst := map[string]string{provCertFile: files.CertFile, provCAFile: files.CAFile}
	if b, ok := found[provCertFile]; ok {
		if err := fbCheckCert(b, id, files.KeyFile); err != nil {
			return true, fmt.Errorf("%s: %w (left on the boot partition, nothing installed)", filepath.Join(o.bootDir, provCertFile), err)
		}
	}
	if b, ok := found[provCAFile]; ok {
		if n := fbCountCerts(b); n == 0 {
			return true, fmt.Errorf("%s: no PEM CERTIFICATE in it (left on the boot partition, nothing installed)", filepath.Join(o.bootDir, provCAFile))
		}
	}
	for _, name := range fbCertFiles {
		b, ok := found[name]
		if !ok {
			continue
		}
		if err := provWriteFile(dst[name], b, 0o644); err != nil {
			return true, err
		}
		if err := provChownLike(filepath.Dir(filepath.Dir(dst[name])), dst[name]); err != nil {
			return true, err
		}
		log.Info("installed from the boot partition", "file", dst[name])
	}
	for name := range found {
		if err := os.Remove(filepath.Join(o.bootDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, err
		}
	}
	if err := fbSyncDir(o.bootDir); err != nil {
		log.Warn("sync boot partition", "err", err)
	}
	if _, err := config.Load(cfgPath); err != nil {
		log.Warn("the config does not load yet", "err", err)
	} else {
		log.Info("config ok: the firmware can start", "config", cfgPath)
	}
	return true, nil
}

// fbCheckCert checks that certPEM is a certificate for the cabinet id,
// of the TLS key at keyPath.
func fbCheckCert(certPEM []byte, id, keyPath string) error {
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return errors.New("no PEM CERTIFICATE in it")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return err
	}
	if cert.Subject.CommonName != id {
		return fmt.Errorf("the certificate is for %q, this cabinet is %q", cert.Subject.CommonName, id)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return fmt.Errorf("%s: no PEM key", keyPath)
	}
	key, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%s: not a signing key", keyPath)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the certificate is not for this cabinet's TLS key (signed from another CSR?)")
	}
	return nil
}

// fbCountCerts counts the parsable certificates in a PEM bundle.
func fbCountCerts(b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err == nil {
			n++
		}
	}
}

// fbReadBootFile reads the boot file, refusing one too big to be ours.
func fbReadBootFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, fbMaxBootFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > fbMaxBootFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not ours", path, fbMaxBootFile)
	}
	return b, nil
}

// fbDone reports whether the config and the data dir already hold what
// the boot file says: the same cabinet, broker, data dir and platform keys,
// and the keys provision makes.
func fbDone(doc map[string]json.RawMessage, bf bootFile, dataDir string) bool {
	str := func(k string) string {
		var s string
		if raw, ok := doc[k]; ok {
			_ = json.Unmarshal(raw, &s)
		}
		return s
	}
	if str("cabinet_id") != bf.id || str("broker") != bf.broker || str("data_dir") != dataDir {
		return false
	}
	var keys map[string]string
	if raw, ok := doc["platform_keys"]; !ok || json.Unmarshal(raw, &keys) != nil || len(keys) != len(bf.keys) {
		return false
	}
	for kid, pub := range bf.keys {
		if keys[kid] != msg.EncodeKey(pub) {
			return false
		}
	}
	for _, p := range []string{
		filepath.Join(dataDir, provDeviceKeyFile),
		filepath.Join(dataDir, provTLSDir, provTLSKeyFile),
		filepath.Join(dataDir, provTLSDir, provCSRFile),
	} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// fbCheckBoardLink refuses a board.yaml that is a file of its own (a
// technician's board, not one of the shipped ones): firstboot only ever
// replaces a link.
func fbCheckBoardLink(link string) error {
	st, err := os.Lstat(link)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s is a file of its own, not a link to a shipped board: remove the board line from the boot file, or the file", link)
	}
	return nil
}

// fbLinkBoard points link at target (relative to link's directory): a new
// link under a temporary name, renamed over the old one.
func fbLinkBoard(link, target string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	tmp := link + ".tmp-firstboot"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return fbSyncDir(filepath.Dir(link))
}

// fbRegistration reads a provisioned cabinet's registration from its
// config and keys.
func fbRegistration(cfgPath, dataDirFlag string) (*registration, error) {
	doc, _, err := provReadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	dataDir, err := provDataDir(doc, dataDirFlag, cfgPath)
	if err != nil {
		return nil, err
	}
	var id string
	if raw, ok := doc["cabinet_id"]; ok {
		_ = json.Unmarshal(raw, &id)
	}
	if !msg.ValidCabinetID(id) {
		return nil, fmt.Errorf("%s names no cabinet: not provisioned", cfgPath)
	}
	key, err := loadKey(filepath.Join(dataDir, provDeviceKeyFile))
	if err != nil {
		return nil, err
	}
	csrPath := filepath.Join(dataDir, provTLSDir, provCSRFile)
	csrPEM, err := os.ReadFile(csrPath)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE REQUEST", csrPath)
	}
	sum := sha256.Sum256(blk.Bytes)
	return &registration{
		V: 1, CabinetID: id, Kid: id,
		Ed25519:   msg.EncodeKey(key.Public().(ed25519.PublicKey)),
		CSRSHA256: hex.EncodeToString(sum[:]),
		csrPEM:    csrPEM,
	}, nil
}

// payload is the QR code's text: compact JSON.
func (r *registration) payload() string {
	b, _ := json.Marshal(r) // plain strings and an int: cannot fail
	return string(b)
}

// fbWriteReceipt writes the receipt on the boot partition: a temporary
// file renamed into place, with no mode (FAT has none).
func fbWriteReceipt(path string, reg *registration) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Bangfu cabinet: provisioned from %s.\r\n", fbBootFile)
	fmt.Fprintf(&b, "# Register it with the platform (the QR code on its display says the same).\r\n")
	fmt.Fprintf(&b, "cabinet_id = %s\r\nkid = %s\r\ned25519_public_key = %s\r\ncsr_sha256 = %s\r\n", reg.CabinetID, reg.Kid, reg.Ed25519, reg.CSRSHA256)
	fmt.Fprintf(&b, "# The certificate request for the platform's CA:\r\n%s", strings.ReplaceAll(string(reg.csrPEM), "\n", "\r\n"))
	return provWriteFile(path, b.Bytes(), 0)
}

func fbSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// fbShow prints the registration QR code on stdout (the console and the
// journal) and, when a board file is configured, draws it on the display
// for o.show or until ctx ends. A display that cannot be driven is logged,
// not fatal: the cabinet is provisioned either way.
func fbShow(ctx context.Context, o fbOpts, reg *registration, log *slog.Logger, stdout io.Writer) {
	text := reg.payload()
	if q, err := qrcode.New(text, qrcode.Medium); err == nil {
		fmt.Fprint(stdout, q.ToSmallString(false))
	}
	fmt.Fprintf(stdout, "cabinet %s: scan this registration code with the platform's app\n  ed25519 %s\n  csr_sha256 %s\n", reg.CabinetID, reg.Ed25519, reg.CSRSHA256)
	log.Info("registration", "cabinet", reg.CabinetID, "kid", reg.Kid, "ed25519", reg.Ed25519, "csr_sha256", reg.CSRSHA256, "qr", text)

	boardPath := filepath.Join(o.etcDir, fbBoardLink)
	if _, err := os.Stat(boardPath); err != nil {
		log.Info("no board file: the registration code is on the console only", "board", boardPath)
		return
	}
	b, err := board.Load(boardPath)
	if err != nil {
		log.Warn("board file unreadable: the registration code is on the console only", "err", err)
		return
	}
	hw, err := o.host.build(b, nil, log)
	if err != nil {
		log.Warn("display unavailable: the registration code is on the console only", "err", err)
		return
	}
	defer func() {
		if err := hw.Halt(); err != nil {
			log.Warn("halt hardware", "err", err)
		}
	}()
	scr := hal.Screen{QR: text, Status: "SCAN TO REGISTER\n" + reg.CabinetID}
	if err := hw.Cabinet.Display.Show(ctx, scr); err != nil {
		log.Warn("display", "err", err)
		return
	}
	log.Info("registration code on the display", "for", o.show)
	if o.show <= 0 {
		return
	}
	t := time.NewTimer(o.show)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// runFirstboot is `cabinet firstboot`: 0 done or nothing to do, 1 failed,
// 2 bad usage.
func runFirstboot(args []string, stdout, stderr io.Writer) int {
	return runFirstbootHost(args, realHost, stdout, stderr)
}

func runFirstbootHost(args []string, host boardHost, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("firstboot", flag.ContinueOnError)
	fset.SetOutput(stderr)
	bootDir := fset.String("boot", "/boot/firmware", "the boot partition holding "+fbBootFile)
	etcDir := fset.String("etc", "/etc/bangfu", "the directory of cabinet.json, board.yaml and boards/")
	dataDir := fset.String("data-dir", "", "where keys, ledger and catalog live (an absolute path); default: the config's data_dir, else /var/lib/bangfu")
	show := fset.Duration("show", 10*time.Minute, "how long the registration QR code stays on the display")
	qrOnly := fset.Bool("qr", false, "show the registration QR code of a provisioned cabinet again, and do nothing else")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: cabinet firstboot [--boot DIR] [--etc DIR] [--data-dir DIR] [--show 10m] [--qr]")
		return 2
	}
	if *dataDir != "" && !filepath.IsAbs(*dataDir) {
		fmt.Fprintf(stderr, "cabinet: firstboot: --data-dir %q: want an absolute path\n", *dataDir)
		return 2
	}
	if *dataDir != "" {
		*dataDir = filepath.Clean(*dataDir)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := fbOpts{bootDir: *bootDir, etcDir: *etcDir, dataDir: *dataDir, show: *show, qrOnly: *qrOnly, host: host}
	_, err := firstboot(ctx, o, log, stdout, stderr)
	if errors.Is(err, errNoBootFile) {
		fmt.Fprintf(stderr, "cabinet: firstboot: no %s, %s or %s in %s: nothing to do\n", fbBootFile, provCertFile, provCAFile, *bootDir)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
