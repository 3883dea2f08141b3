// Package cabsim assembles the simulator: an embedded broker (or an
// external one), the virtual platform, and virtual cabinets each running
// the real firmware on simulated hardware; plus the HTTP API of
// SIMULATOR.md and the scenario runner. simulator/cmd/cabsim is its binary;
// the end-to-end tests drive it in-process.
package cabsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/simulator/broker"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Options configure a simulation. Zero fields take the defaults.
type Options struct {
	MQTTAddr   string // embedded broker listen address, default 127.0.0.1:1883
	BrokerURL  string // use this external broker instead of embedding one
	Cabinets   int    // default 1
	Seed       int64
	NoiseG     float64 // load-cell noise σ, default 0.5
	SampleRate float64 // load-cell samples per second, default 10
	DataDir    string  // where each cabinet keeps its bbolt files; default a temp dir removed on Close
	Logger     *slog.Logger
	// Configure, when set, adjusts each cabinet's config (tests shorten
	// timeouts with it).
	Configure func(*config.Config)
	// NoAcks makes the virtual platform send no acks.
	NoAcks bool
	// PlatformKeys, when set, means the platform is external
	// (-platform=external): no virtual platform runs, and the cabinets
	// trust these platform keys (kid → base64url Ed25519 public key). The
	// outside platform publishes the catalog and planograms and registers
	// the cabinets' keys (Cabinet.PublicKey).
	PlatformKeys map[string]string
}

// Cabinet is one virtual cabinet: its hardware and its firmware.
type Cabinet struct {
	ID        string
	HW        *sim.Cabinet
	PublicKey ed25519.PublicKey // the cabinet's signing key, for the platform to register

	mu  sync.Mutex
	dev *firmware.Device

	// Metrics hooks, filled by the firmware's callbacks.
	metrics *Metrics
}

// Device returns the running firmware (nil between restarts).
func (c *Cabinet) Device() *firmware.Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dev
}

// Sim is a running simulation.
type Sim struct {
	opts     Options
	Broker   *broker.Broker         // nil with an external broker
	Platform *platform.Platform     // nil with an external platform
	products map[string]msg.Product // the physical goods the virtual cabinets hold
	cabinets []*Cabinet
	byID     map[string]*Cabinet
	tmp      string
	log      *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// CabinetID is the id of the i-th (0-based) virtual cabinet.
func CabinetID(i int) string { return fmt.Sprintf("NM-150102-%04d", 7+i) }

// Start brings the simulation up and returns once every cabinet's firmware
// is running (not necessarily connected).
func Start(ctx context.Context, o Options) (*Sim, error) {
	if o.MQTTAddr == "" {
		o.MQTTAddr = "127.0.0.1:1883"
	}
	if o.Cabinets <= 0 {
		o.Cabinets = 1
	}
	if o.NoiseG == 0 {
		o.NoiseG = 0.5
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Sim{opts: o, byID: map[string]*Cabinet{}, log: o.Logger}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "cabsim-")
		if err != nil {
			return nil, err
		}
		s.tmp, o.DataDir = dir, dir
		s.opts.DataDir = dir
	}
	brokerURL := o.BrokerURL
	if brokerURL == "" {
		b, err := broker.Start(o.MQTTAddr, o.Logger)
		if err != nil {
			return nil, err
		}
		s.Broker = b
		brokerURL = b.URL()
	}
	cat := demo.Catalog(time.Now())
	s.products = map[string]msg.Product{}
	for _, p := range cat.Products {
		s.products[p.SKU] = p
	}
	if len(o.PlatformKeys) == 0 {
		p, err := platform.New(platform.Opts{Broker: brokerURL, Logger: o.Logger, NoAcks: o.NoAcks})
		if err != nil {
			return nil, err
		}
		s.Platform = p
		if err := p.SetCatalog(cat); err != nil {
			return nil, err
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = p.Start(sctx)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	s.cancel = cancelRun
	for i := range o.Cabinets {
		c, err := s.addCabinet(runCtx, CabinetID(i), o.Seed+int64(i), brokerURL)
		if err != nil {
			return nil, err
		}
		s.cabinets = append(s.cabinets, c)
		s.byID[c.ID] = c
	}
	ok = true
	return s, nil
}

func (s *Sim) addCabinet(ctx context.Context, id string, seed int64, brokerURL string) (*Cabinet, error) {
	plan := demo.Planogram(id)
	hwCfg := sim.Config{Seed: seed, NoiseG: s.opts.NoiseG, SampleRate: s.opts.SampleRate, Doors: 1}
	for _, sh := range plan.Shelves {
		hwCfg.Shelves = append(hwCfg.Shelves, sim.ShelfConfig{Shelf: sh.Shelf, Door: sh.Door})
	}
	hw, err := sim.New(hwCfg)
	if err != nil {
		return nil, err
	}
	for shelf, items := range demo.Stock() {
		for sku, n := range items {
			p := s.products[sku]
			if err := hw.Load(shelf, sku, p.UnitWeightG, p.WeightTolG, n); err != nil {
				return nil, err
			}
		}
	}
	dir := filepath.Join(s.opts.DataDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := deviceKey(filepath.Join(dir, "device.key"))
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.CabinetID = id
	cfg.Broker = brokerURL
	cfg.DataDir = dir
	cfg.PlatformKeys = s.opts.PlatformKeys
	if s.Platform != nil {
		cfg.Region = demo.Region
		cfg.PlatformKeys = map[string]string{s.Platform.KeyID(): msg.EncodeKey(s.Platform.PublicKey())}
	}
	if s.opts.Configure != nil {
		s.opts.Configure(&cfg)
	}
	c := &Cabinet{ID: id, HW: hw, PublicKey: key.Public().(ed25519.PublicKey), metrics: &Metrics{}}
	if s.Platform != nil {
		s.Platform.Register(id, c.PublicKey)
		if err := s.Platform.SetPlanogram(plan); err != nil {
			return nil, err
		}
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := hw.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("virtual hardware stopped", "cabinet", id, "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.runFirmware(ctx, c, cfg, key)
	}()
	return c, nil
}

// runFirmware runs the cabinet's firmware, starting it again after a
// platform `reboot`, until ctx ends.
func (s *Sim) runFirmware(ctx context.Context, c *Cabinet, cfg config.Config, key ed25519.PrivateKey) {
	for ctx.Err() == nil {
		dev, err := firmware.New(firmware.Opts{
			Config: cfg, Hardware: c.HW.Hardware(), DeviceKey: key,
			Logger:   s.log,
			OnUnlock: c.metrics.unlock,
			OnSale:   c.metrics.sale,
		})
		if err != nil {
			s.log.Error("firmware would not start", "cabinet", c.ID, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		c.mu.Lock()
		c.dev = dev
		c.mu.Unlock()
		err = dev.Run(ctx)
		c.mu.Lock()
		c.dev = nil
		c.mu.Unlock()
		if cerr := dev.Close(); cerr != nil {
			s.log.Error("firmware close", "cabinet", c.ID, "err", cerr)
		}
		if err != nil && !errors.Is(err, firmware.ErrReboot) {
			s.log.Error("firmware stopped", "cabinet", c.ID, "err", err)
		}
	}
}

// deviceKey loads the cabinet key from path or makes one (mode 0600).
func deviceKey(path string) (ed25519.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		if len(b) != ed25519.SeedSize {
			return nil, fmt.Errorf("cabsim: %s: not an Ed25519 seed", path)
		}
		return ed25519.NewKeyFromSeed(b), nil
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, k.Seed(), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// Cabinets lists the virtual cabinets.
func (s *Sim) Cabinets() []*Cabinet { return s.cabinets }

// Cabinet returns a cabinet by id.
func (s *Sim) Cabinet(id string) (*Cabinet, bool) {
	c, ok := s.byID[id]
	return c, ok
}

// BrokerAddr is the broker's host:port (embedded) or URL (external).
func (s *Sim) BrokerAddr() string {
	if s.Broker != nil {
		return s.Broker.Addr()
	}
	return s.opts.BrokerURL
}

// Close stops everything and removes the temporary data directory.
func (s *Sim) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.Platform != nil {
		s.Platform.Close()
	}
	if s.Broker != nil {
		if err := s.Broker.Close(); err != nil {
			s.log.Warn("broker close", "err", err)
		}
	}
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}
