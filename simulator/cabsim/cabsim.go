// Package cabsim assembles the simulator: an embedded broker (or an
// external one), the virtual platform, and virtual cabinets each running
// the real firmware on simulated hardware; plus the HTTP API of
// docs/simulator.md and the scenario runner. simulator/cmd/cabsim is its binary;
// the end-to-end tests drive it in-process.
//
// Each cabinet's firmware runs either in the simulator's process
// (Options.Firmware InProcess) or as a real `cabinet` process on the
// sim-socket hardware backend (Process), which the simulator serves with
// hal/sim/remote on a unix socket in the cabinet's data directory. Either
// way a supervisor restarts a firmware that stops, except while the
// cabinet's power is cut (Sim.Power), and each cabinet reaches the broker
// through its own loopback relay, so its network can be cut alone
// (Sim.Network).
//
// cabsim owns the assembly and the virtual world's controls. It must not
// reach into the firmware's state: what it shows of a cabinet's firmware
// is the firmware's own Status.
package cabsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/hal/sim/remote"
	"github.com/bangfu/cabinet/simulator/broker"
	"github.com/bangfu/cabinet/simulator/demo"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/simulator/stock"
	"github.com/bangfu/cabinet/telemetry"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Options configure a simulation. Zero fields take the defaults.
type Options struct {
	MQTTAddr  string // embedded broker listen address, default 127.0.0.1:1883
	BrokerURL string // use this external broker instead of embedding one
	Cabinets  int    // default 1
	// CabinetOffset numbers the cabinets from CabinetID(CabinetOffset)
	// on (and seeds them alike), so that several simulators can drive one
	// broker cluster with cabinets that do not clash (cabsim
	// -cabinet-offset). Default 0.
	CabinetOffset int
	Seed          int64
	NoiseG        float64 // load-cell noise σ, default 0.5
	SampleRate    float64 // load-cell samples per second, default 10
	// DataDir is where each cabinet keeps its key and bbolt files
	// (DataDir/<cabinet id>) and the virtual platform its books
	// (DataDir/platform); default a temp dir removed on Close. Starting
	// again on the same DataDir resumes them all (cabsim -state).
	DataDir string
	Logger  *slog.Logger
	// ReceiptS is how long each cabinet shows a sale's receipt before its
	// QR code returns (the config's receipt_s). The default here is 0, no
	// receipt: scripted shoppers (tests, scenarios) scan the next QR at
	// once. Interactive cabsim sets the cabinets' own default.
	ReceiptS int
	// Configure, when set, adjusts each cabinet's config (tests shorten
	// timeouts with it).
	Configure func(*config.Config)
	// Physics, when set, adjusts each cabinet's virtual hardware before it
	// is built (tests switch imperfections off with it).
	Physics func(*sim.Config)
	// NoAcks makes the virtual platform send no acks.
	NoAcks bool
	// PlatformKeys, when set, means the platform is external
	// (-platform=external): no virtual platform runs, and the cabinets
	// trust these platform keys (kid → base64url Ed25519 public key). The
	// outside platform publishes the catalog and planograms and registers
	// the cabinets' keys (Cabinet.PublicKey).
	PlatformKeys map[string]string
	// Firmware is InProcess (default) or Process.
	Firmware string
	// CabinetBin is the device binary for Process mode; default a
	// `cabinet` next to the running executable, else one built with
	// `go build` into a temporary directory.
	CabinetBin string
	// StockFile, when set, is a stock file (docs/simulator.md): every
	// cabinet holds its goods instead of the demo's, and the virtual
	// platform's catalog and planograms are built from it.
	StockFile string
	// TwoCell (-two-cell) stands every shelf of every virtual cabinet on
	// two load cells, a left and a right one (hal.Shelf.Right reads the
	// right one). Each SKU stands in its lane: the stock file's "lanes",
	// or for a SKU without one its place when the shelf's SKUs are spread
	// evenly in SKU order; the virtual platform's planograms carry those
	// lanes, so the firmware knows them.
	TwoCell bool
	// SaleEvery (-sale-every), when positive, runs the sale-load driver
	// (load.go): shoppers come to each cabinet as a Poisson process with
	// this mean gap, seeded from Seed, buy 1–3 units and shut the door;
	// GET /api/load reports the purchases, the sales and heartbeats the
	// virtual platform received and the close→platform latency. It needs
	// the virtual platform: Start refuses it with PlatformKeys.
	SaleEvery time.Duration
}

// Cabinet is one virtual cabinet: its hardware and its firmware.
type Cabinet struct {
	ID        string
	HW        *sim.Cabinet
	PublicKey ed25519.PublicKey // the cabinet's signing key, for the platform to register
	Dir       string            // the firmware's data directory

	cfg     config.Config
	key     ed25519.PrivateKey
	cfgPath string // process mode: the config file the process reads
	socket  string // process mode: where the hardware is served
	proxy   *proxy // nil when the broker link cannot be relayed

	mu         sync.Mutex
	dev        *firmware.Device   // in-process firmware while it runs
	pid        int                // firmware process while it runs
	status     *firmware.Status   // its latest report
	powered    bool               // the supervisor runs the firmware only with power
	changed    chan struct{}      // closed when powered changes
	stopRun    context.CancelFunc // stops the firmware run in progress
	stopped    chan struct{}      // closed once that run has stopped
	failpoints []string           // armed for the next process start

	// Metrics hooks, filled by the firmware's callbacks (in-process only).
	metrics *Metrics
}

// Device returns the running in-process firmware (nil between restarts,
// and always in process mode: use Status there).
func (c *Cabinet) Device() *firmware.Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dev
}

// Sim is a running simulation.
type Sim struct {
	opts     Options
	Broker   *broker.Broker     // nil with an external broker
	Platform *platform.Platform // nil with an external platform
	goods    *stock.Goods       // the physical goods the virtual cabinets hold
	cabinets []*Cabinet
	byID     map[string]*Cabinet
	tmp      string // data dir made by Start, removed by Close
	binDir   string // where a built cabinet binary lives, removed by Close
	sockDir  string // short socket paths for deep data dirs, removed by Close
	log      *slog.Logger

	cabinetBin string
	load       *loadDriver // the sale-load driver (Options.SaleEvery), or nil

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
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
	telemetry.RoutePahoLogs(o.Logger) // paho's loggers are process-wide: its lines name no cabinet
	switch o.Firmware {
	case "":
		o.Firmware = InProcess
	case InProcess, Process:
	default:
		return nil, fmt.Errorf("cabsim: firmware mode %q: want %s or %s", o.Firmware, InProcess, Process)
	}
	if err := checkSaleLoad(o); err != nil {
		return nil, err
	}
	// The goods first: a bad stock file is refused before anything runs.
	now := time.Now()
	var goods *stock.Goods
	var err error
	if o.StockFile != "" {
		goods, err = stock.Load(o.StockFile, now)
	} else {
		goods, err = stock.Demo(now)
	}
	if err != nil {
		return nil, fmt.Errorf("cabsim: %w", err)
	}
	for _, w := range goods.Lint() {
		o.Logger.Warn("planogram lint: inference cannot tell these baskets apart", "shelf", w.Shelf, "skus", w.SKUs, "text", w.Text)
	}
	if o.TwoCell {
		goods = goods.WithLanes()
	}
	s := &Sim{opts: o, goods: goods, byID: map[string]*Cabinet{}, log: o.Logger}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if o.Firmware == Process {
		if err := s.findCabinetBin(ctx); err != nil {
			return nil, err
		}
	}
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
	cat := goods.Catalog(now, demo.Region)
	if len(o.PlatformKeys) == 0 {
		var onSale func(platform.SaleRecord)
		if o.SaleEvery > 0 {
			s.load = newLoadDriver(s)
			onSale = s.load.onSale
		}
		p, err := platform.New(platform.Opts{Broker: brokerURL, Logger: o.Logger, NoAcks: o.NoAcks,
			StateDir: filepath.Join(o.DataDir, "platform"), OnSale: onSale})
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
		n := o.CabinetOffset + i
		c, err := s.addCabinet(runCtx, CabinetID(n), o.Seed+int64(n), brokerURL)
		if err != nil {
			return nil, err
		}
		s.cabinets = append(s.cabinets, c)
		s.byID[c.ID] = c
	}
	if s.load != nil {
		s.wg.Go(func() { s.load.run(runCtx) })
	}
	ok = true
	return s, nil
}

func (s *Sim) addCabinet(ctx context.Context, id string, seed int64, brokerURL string) (*Cabinet, error) {
	plan := s.goods.Planogram(id)
	hwCfg := sim.Config{Seed: seed, NoiseG: s.opts.NoiseG, SampleRate: s.opts.SampleRate, Doors: s.goods.Doors()}
	for _, sh := range plan.Shelves {
		hwCfg.Shelves = append(hwCfg.Shelves, sim.ShelfConfig{Shelf: sh.Shelf, Door: sh.Door, TwoCell: s.opts.TwoCell})
	}
	if s.opts.Physics != nil {
		s.opts.Physics(&hwCfg)
	}
	hw, err := sim.New(hwCfg)
	if err != nil {
		return nil, err
	}
	// In shelf and SKU order: the units' true weights (and on two cells
	// their places) are drawn in the order loaded, so a seed replays only
	// if the order is fixed.
	for _, sh := range s.goods.Shelves() {
		if s.opts.TwoCell {
			for _, sku := range slices.Sorted(maps.Keys(sh.Lanes)) {
				if err := hw.SetLane(sh.Shelf, sku, sh.Lanes[sku]); err != nil {
					return nil, err
				}
			}
		}
		for _, sku := range slices.Sorted(maps.Keys(sh.Items)) {
			n := sh.Items[sku]
			if n == 0 {
				continue
			}
			p, _ := s.goods.Product(sku)
			if err := hw.Load(sh.Shelf, sku, p.UnitWeightG, p.WeightTolG, n); err != nil {
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
	px, err := newProxy(brokerURL, s.opts.Firmware == Process, s.log.With("cabinet", id))
	if err != nil {
		return nil, err
	}
	if px != nil && px.ln != nil {
		brokerURL = px.URL()
	} else if px == nil {
		s.log.Warn("broker link not relayed: POST …/network does not work for this cabinet", "cabinet", id, "broker", brokerURL)
	}
	cfg := config.Default()
	cfg.CabinetID = id
	cfg.Broker = brokerURL
	cfg.DataDir = dir
	cfg.ReceiptS = s.opts.ReceiptS
	cfg.PlatformKeys = s.opts.PlatformKeys
	if s.Platform != nil {
		cfg.Region = demo.Region
		cfg.PlatformKeys = map[string]string{s.Platform.KeyID(): msg.EncodeKey(s.Platform.PublicKey())}
	}
	if s.opts.Configure != nil {
		s.opts.Configure(&cfg)
	}
	c := &Cabinet{ID: id, HW: hw, PublicKey: key.Public().(ed25519.PublicKey), Dir: dir,
		cfg: cfg, key: key, proxy: px, powered: true, changed: make(chan struct{}), metrics: &Metrics{}}
	var ln net.Listener
	if s.opts.Firmware == Process {
		if ln, err = s.processFiles(c); err != nil {
			if px != nil && px.ln != nil {
				px.ln.Close()
			}
			return nil, err
		}
	}
	if s.Platform != nil {
		s.Platform.Register(id, c.PublicKey)
		if err := s.Platform.SetPlanogram(plan); err != nil {
			return nil, err
		}
	}
	s.wg.Go(func() {
		if err := hw.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("virtual hardware stopped", "cabinet", id, "err", err)
		}
	})
	if px != nil && px.ln == nil {
		px.Run(ctx) // closes the cabinet's dialled connection when ctx ends
	} else if px != nil {
		s.wg.Go(func() {
			if err := px.Run(ctx); err != nil {
				s.log.Error("network relay stopped", "cabinet", id, "err", err)
			}
		})
	}
	if ln != nil {
		srv, err := remote.NewServer(hw, &remote.ServerOpts{SampleRate: s.opts.SampleRate, OnStatus: c.onStatus,
			Logger: s.log.With("cabinet", id)})
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.wg.Go(func() {
			if err := srv.Serve(ctx, ln); err != nil {
				s.log.Error("hardware socket stopped", "cabinet", id, "err", err)
			}
		})
	}
	s.wg.Go(func() { s.supervise(ctx, c) })
	return c, nil
}

// processFiles writes what a firmware process reads — its config next to
// the device key — and listens on the cabinet's hardware socket.
func (s *Sim) processFiles(c *Cabinet) (net.Listener, error) {
	b, err := json.MarshalIndent(c.cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	c.cfgPath = filepath.Join(c.Dir, "cabinet.json")
	if err := os.WriteFile(c.cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	c.socket = filepath.Join(c.Dir, "sim.sock")
	if len(c.socket) > maxSocketPath {
		// A unix socket path is limited to about 104 bytes; a deep data
		// dir gets its socket in a short temporary directory instead.
		if s.sockDir == "" {
			if s.sockDir, err = os.MkdirTemp("", "cabsim-sock-"); err != nil {
				return nil, err
			}
		}
		c.socket = filepath.Join(s.sockDir, c.ID+".sock")
	}
	os.Remove(c.socket) // left by an earlier run on this data dir
	ln, err := net.Listen("unix", c.socket)
	if err != nil {
		return nil, fmt.Errorf("cabsim: hardware socket: %w", err)
	}
	return ln, nil
}

// maxSocketPath is the longest unix socket path used as is.
const maxSocketPath = 100

// findCabinetBin settles which device binary process mode starts.
func (s *Sim) findCabinetBin(ctx context.Context) error {
	if s.opts.CabinetBin != "" {
		s.cabinetBin = s.opts.CabinetBin
		return nil
	}
	if p, err := cabinetBeside(); err == nil {
		s.cabinetBin = p
		s.log.Info("firmware processes run the cabinet binary beside cabsim", "bin", p)
		return nil
	}
	dir, err := os.MkdirTemp("", "cabsim-bin-")
	if err != nil {
		return err
	}
	s.binDir = dir
	s.log.Info("no cabinet binary beside cabsim: building one with go build", "dir", dir)
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	p, err := BuildCabinet(bctx, dir)
	if err != nil {
		return err
	}
	s.cabinetBin = p
	return nil
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

// Close stops everything — no firmware process outlives it — and removes
// the temporary directories. Calling it again does nothing.
func (s *Sim) Close() { s.closeOnce.Do(s.close) }

func (s *Sim) close() {
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
	for _, dir := range []string{s.tmp, s.binDir, s.sockDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
}
