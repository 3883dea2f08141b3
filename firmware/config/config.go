// Package config is the cabinet's one typed configuration: defaults,
// strict decoding (unknown keys are errors) and validation. It owns no
// behaviour; calibration and catalogs are data in bbolt, not config, and
// prices never come from here.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/infer"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Config is everything a cabinet needs to run. Durations are whole seconds
// with the unit in the name, as the platform's `config` command sends them.
type Config struct {
	CabinetID   string `json:"cabinet_id"`
	Site        string `json:"site"`
	Region      string `json:"region"` // catalog region this cabinet accepts; empty: any
	Broker      string `json:"broker"`
	TopicPrefix string `json:"topic_prefix"`
	DataDir     string `json:"data_dir"`
	// PlatformKeys are the platform's Ed25519 public keys by kid
	// (base64url, no padding).
	PlatformKeys map[string]string `json:"platform_keys"`
	// ReleaseKeys are the Ed25519 public keys (base64url, by kid) whose
	// signature a firmware bundle of an `update` command must carry
	// (docs/updates.md). None: updates are refused. Fixed at run time.
	ReleaseKeys map[string]string `json:"release_keys,omitempty"`
	// UpdateHealthS is how long a new firmware version has to prove
	// itself healthy before the previous one comes back;
	// UpdateMaxStarts the failed starts of it in one boot that roll back.
	UpdateHealthS   int    `json:"update_health_s"`
	UpdateMaxStarts int    `json:"update_max_starts"`
	QRBase          string `json:"qr_base"`
	// TLS is required with an ssl://, tls:// or mqtts:// broker and
	// refused with tcp://.
	TLS TLS `json:"tls,omitzero"`

	QRRotateS      int     `json:"qr_rotate_s"`       // new QR nonce at least this often
	HeartbeatS     int     `json:"heartbeat_s"`       // heartbeat period
	AckWaitS       int     `json:"ack_wait_s"`        // republish an unacked sale after this
	AckMode        string  `json:"ack_mode"`          // platform | broker
	LedgerDays     int     `json:"ledger_days"`       // keep sales this long for resend and audit
	UnlockWindowS  int     `json:"unlock_window_s"`   // the door must open within this after unlock
	DoorOpenAlarmS int     `json:"door_open_alarm_s"` // alarm when a door stays open longer
	SettleTimeoutS int     `json:"settle_timeout_s"`  // give up waiting for a steady scale after this
	WeightAlarmG   float64 `json:"weight_alarm_g"`    // idle weight change that raises an alarm
	ForeignMinG    float64 `json:"foreign_min_g"`     // unexplained weight below this is noise, not an object
	MaxLimitFen    int64   `json:"max_limit_fen"`     // reject unlocks authorising more than this; 0: no cap
	ReceiptS       int     `json:"receipt_s"`         // show a sale's receipt this long before the QR returns; 0: none

	// How a sale's basket is decided (docs/inference.md). ChargeRule is
	// "shopper_safe" (the default: never exact while a cheaper basket is
	// plausible) or "revenue_first" (exact on ExactConfidence alone, an
	// operator's choice that charges more sales exactly at the price of a
	// few overcharges). ExactConfidence is the posterior an exact sale
	// needs; CheaperBound the posterior below which a cheaper basket no
	// longer counts as plausible.
	ChargeRule      string  `json:"charge_rule"`
	ExactConfidence float64 `json:"exact_confidence"`
	CheaperBound    float64 `json:"cheaper_bound"`

	// Cold chain (冷链): a refrigerated cabinet alarms when its air stays
	// outside [temp_min_c, temp_max_c] for temp_alarm_s (a door opening
	// warms it briefly; that is not an alarm).
	ColdChain  bool    `json:"cold_chain"`
	TempMinC   float64 `json:"temp_min_c"`
	TempMaxC   float64 `json:"temp_max_c"`
	TempAlarmS int     `json:"temp_alarm_s"`
}

// TLS names the files of the mutual-TLS connection to the broker (PEM).
// `cabinet provision` writes the paths: the key and the CSR it makes, and
// where the certificate the platform signs and the broker's CA bundle are
// to be installed.
type TLS struct {
	CAFile     string `json:"ca_file,omitempty"`     // the CAs that may sign the broker's certificate; the only trust anchors
	CertFile   string `json:"cert_file,omitempty"`   // the cabinet's certificate, signed by the platform's CA
	KeyFile    string `json:"key_file,omitempty"`    // its private key, mode 0600
	ServerName string `json:"server_name,omitempty"` // name in the broker's certificate; empty: the broker URL's host
}

// Files is the telemetry form of t; nil when no TLS setting is present.
func (t TLS) Files() *telemetry.TLSFiles {
	if t == (TLS{}) {
		return nil
	}
	return &telemetry.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
}

// Default returns the default configuration. The settings the contract
// names (intervals, ack_mode, ledger_days, …) default as docs/contract.md says.

// MaxUpdateStarts is the largest update_max_starts: the packaged service's
// start limit leaves room for that many failed starts and two more (the
// switch's and the rollback's), so systemd never stops a rollback.
const MaxUpdateStarts = 100

func Default() Config {
	return Config{
		Broker:          "tcp://127.0.0.1:1883",
		TopicPrefix:     msg.DefaultPrefix,
		DataDir:         "/var/lib/bangfu",
		PlatformKeys:    map[string]string{},
		ReleaseKeys:     map[string]string{},
		QRBase:          "https://pay.bangfu.example/q",
		QRRotateS:       30,
		HeartbeatS:      60,
		AckWaitS:        60,
		AckMode:         "platform",
		LedgerDays:      90,
		UnlockWindowS:   30,
		DoorOpenAlarmS:  120,
		ReceiptS:        10,
		SettleTimeoutS:  10,
		WeightAlarmG:    20,
		ForeignMinG:     10,
		ChargeRule:      ChargeShopperSafe,
		ExactConfidence: infer.DefaultConfidence,
		CheaperBound:    1e-4,
		TempMinC:        0, // chilled food: 0…8 °C
		TempMaxC:        8,
		TempAlarmS:      600,
		UpdateHealthS:   300,
		UpdateMaxStarts: 3,
	}
}

// Charge rules.
const (
	ChargeShopperSafe  = "shopper_safe"
	ChargeRevenueFirst = "revenue_first"
)

// UpdateHealth is the time a new firmware version has to prove itself.
func (c Config) UpdateHealth() time.Duration { return secs(c.UpdateHealthS) }

// Durations, for callers.
func (c Config) QRRotate() time.Duration     { return secs(c.QRRotateS) }
func (c Config) Heartbeat() time.Duration    { return secs(c.HeartbeatS) }
func (c Config) AckWait() time.Duration      { return secs(c.AckWaitS) }
func (c Config) UnlockWindow() time.Duration { return secs(c.UnlockWindowS) }
func (c Config) DoorOpenAlarm() time.Duration {
	return secs(c.DoorOpenAlarmS)
}
func (c Config) SettleTimeout() time.Duration { return secs(c.SettleTimeoutS) }
func (c Config) TempAlarm() time.Duration     { return secs(c.TempAlarmS) }

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if !msg.ValidCabinetID(c.CabinetID) {
		bad("cabinet_id %q: letters, digits and '-', 1 to 64 characters", c.CabinetID)
	}
	if u, err := url.Parse(c.Broker); err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtts") || u.Host == "" {
		bad("broker %q: want tcp://host:port or ssl://host:port", c.Broker)
	} else if err := telemetry.CheckTLS(c.Broker, c.TLS.Files()); err != nil {
		// No insecure fallback: a TLS broker without its files is an
		// error, and so are TLS files with tcp://, where a typo in the
		// scheme would silently drop the encryption.
		switch {
		case errors.Is(err, telemetry.ErrTLSOnPlain):
			bad("tls: set, but broker %q is plain tcp://; use ssl://host:port or remove tls", c.Broker)
		default:
			bad("tls: broker %q needs tls.ca_file, tls.cert_file and tls.key_file", c.Broker)
		}
	}
	if c.TopicPrefix == "" || strings.ContainsAny(c.TopicPrefix, "#+") || strings.HasSuffix(c.TopicPrefix, "/") {
		bad("topic_prefix %q: non-empty, no wildcards, no trailing '/'", c.TopicPrefix)
	}
	if c.DataDir == "" {
		bad("data_dir is empty")
	}
	if len(c.PlatformKeys) == 0 {
		bad("platform_keys: at least one platform key is needed to trust anything")
	}
	for kid, k := range c.PlatformKeys {
		if _, err := msg.DecodeKey(k); err != nil {
			bad("platform_keys[%q]: %v", kid, err)
		}
	}
	for kid, k := range c.ReleaseKeys {
		if _, err := msg.DecodeKey(k); err != nil {
			bad("release_keys[%q]: %v", kid, err)
		}
	}
	pos0 := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("%s = %d: want %d..%d", name, v, lo, hi)
		}
	}
	pos0("update_health_s", c.UpdateHealthS, 1, 86400)
	pos0("update_max_starts", c.UpdateMaxStarts, 1, MaxUpdateStarts)
	if u, err := url.Parse(c.QRBase); err != nil || u.Scheme != "https" && u.Scheme != "http" {
		bad("qr_base %q: want an http(s) URL", c.QRBase)
	}
	pos := func(name string, v int, max int) {
		if v <= 0 || v > max {
			bad("%s = %d: want 1..%d", name, v, max)
		}
	}
	pos("qr_rotate_s", c.QRRotateS, 3600)
	pos("heartbeat_s", c.HeartbeatS, 86400)
	pos("ack_wait_s", c.AckWaitS, 86400)
	pos("ledger_days", c.LedgerDays, 3650)
	pos("unlock_window_s", c.UnlockWindowS, 600)
	pos("door_open_alarm_s", c.DoorOpenAlarmS, 86400)
	pos("settle_timeout_s", c.SettleTimeoutS, 600)
	if c.ReceiptS < 0 || c.ReceiptS > 600 {
		bad("receipt_s = %d: want 0 (no receipt) to 600", c.ReceiptS)
	}
	if c.AckMode != "platform" && c.AckMode != "broker" {
		bad("ack_mode %q: want platform or broker", c.AckMode)
	}
	if c.WeightAlarmG <= 0 || c.WeightAlarmG > 10000 {
		bad("weight_alarm_g = %g: want (0, 10000]", c.WeightAlarmG)
	}
	if c.ForeignMinG <= 0 || c.ForeignMinG > 10000 {
		bad("foreign_min_g = %g: want (0, 10000]", c.ForeignMinG)
	}
	if c.ChargeRule != ChargeShopperSafe && c.ChargeRule != ChargeRevenueFirst {
		bad("charge_rule %q: want %s or %s", c.ChargeRule, ChargeShopperSafe, ChargeRevenueFirst)
	}
	if !(c.ExactConfidence >= 0.5 && c.ExactConfidence < 1) {
		bad("exact_confidence = %g: want [0.5, 1)", c.ExactConfidence)
	}
	if !(c.CheaperBound > 0 && c.CheaperBound <= 0.1) {
		bad("cheaper_bound = %g: want (0, 0.1]", c.CheaperBound)
	}
	if c.MaxLimitFen < 0 {
		bad("max_limit_fen = %d: negative", c.MaxLimitFen)
	}
	if !(c.TempMinC >= -40 && c.TempMaxC <= 60 && c.TempMinC < c.TempMaxC) {
		bad("temp_min_c %g, temp_max_c %g: want -40 ≤ min < max ≤ 60", c.TempMinC, c.TempMaxC)
	}
	pos("temp_alarm_s", c.TempAlarmS, 86400)
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// Decode reads a JSON config over the defaults, refusing unknown keys, and
// validates it.
func Decode(r io.Reader) (Config, error) {
	c := Default()
	data, err := io.ReadAll(io.LimitReader(r, msg.MaxPayloadBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("config: read: %w", err)
	}
	if len(data) > msg.MaxPayloadBytes {
		return Config{}, fmt.Errorf("config: file larger than %d KiB", msg.MaxPayloadBytes>>10)
	}
	// The same strict decoding as a signed message: unknown, duplicate or
	// case-folded keys and trailing data are errors, not guesses.
	if err := msg.DecodeStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load reads and validates the config file at path. Unlike Decode it also
// reads the TLS files, so that a missing or unparsable certificate, or a
// key others can read, is reported before the firmware starts.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := Decode(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if files := c.TLS.Files(); files != nil {
		u, _ := url.Parse(c.Broker) // Validate parsed it
		if _, err := files.Load(u.Hostname()); err != nil {
			return Config{}, fmt.Errorf("%s: config: tls: %w", path, err)
		}
	}
	return c, nil
}

// Apply merges run-time settings from a platform `config` command into a
// copy of c. Only the interval and threshold keys the firmware reads live
// may change at run time; identity, keys, broker, QR rotation and ack
// settings may not. The result is validated; on error c is
// unchanged.
func (c Config) Apply(settings map[string]json.RawMessage) (Config, error) {
	// Only what the running firmware reads afresh may change here; the
	// QR rotation and the outbox's ack settings are fixed at start-up
	// and change with the config file and a restart.
	allowed := map[string]bool{
		"heartbeat_s": true, "ledger_days": true, "unlock_window_s": true, "door_open_alarm_s": true,
		"settle_timeout_s": true, "weight_alarm_g": true, "foreign_min_g": true, "max_limit_fen": true,
		"temp_min_c": true, "temp_max_c": true, "temp_alarm_s": true,
		"charge_rule": true, "exact_confidence": true, "cheaper_bound": true, "receipt_s": true,
	}
	for k, v := range settings {
		if !allowed[k] {
			return c, fmt.Errorf("config: setting %q cannot be changed at run time", k)
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return c, fmt.Errorf("config: setting %q: null is not a value", k)
		}
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	n := c
	n.PlatformKeys = c.PlatformKeys
	if err := msg.DecodeStrict(raw, &n); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := n.Validate(); err != nil {
		return c, err
	}
	return n, nil
}
