// Command cabsim runs the Bangfu simulator: an embedded MQTT broker, the
// virtual platform and virtual cabinets running the real firmware, with the
// HTTP API and web UI of docs/simulator.md; or, with -scenario, one scripted
// session headless, exiting non-zero if any expectation fails.
//
// With -firmware=process each cabinet's firmware is a real `cabinet`
// process (`cabinet run --hal sim-socket`) reaching its virtual hardware
// over a unix socket in the cabinet's data directory; -cabinet-bin names
// the binary (default: the `cabinet` beside cabsim, as `make build` puts
// it in bin/, else one built with `go build`). Its output goes to cabsim's
// log with the cabinet id. A firmware that exits (a platform `reboot`
// exits with 3) is started again, except while the power is cut.
//
// Breaking things, in either firmware mode (see usageText for the API):
//
//	POST /api/cabinets/{id}/power   {"action":"cut"|"restore"}
//	POST /api/cabinets/{id}/network {"action":"down"|"up"}
//
// A power cut darkens the virtual hardware (locks drop, display blank;
// doors, shelves and weights stay) and stops the firmware at once: kill -9
// in process mode; in-process, its context is cancelled, so its deferred
// clean-ups still run and no bbolt write can be torn (process mode is the
// real power-cut test). Restore starts it again from its bbolt files.
// Network down closes the cabinet's connections through its own loopback
// relay to the broker and refuses new ones until up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/simulator/cabsim"
	"github.com/bangfu/cabinet/simulator/stock"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// keyFlags collects -platform-key kid=KEY flags.
type keyFlags map[string]string

func (k keyFlags) String() string { return fmt.Sprint(map[string]string(k)) }

func (k keyFlags) Set(v string) error {
	kid, key, ok := strings.Cut(v, "=")
	if !ok || kid == "" {
		return fmt.Errorf("want kid=BASE64URL, got %q", v)
	}
	if _, err := msg.DecodeKey(key); err != nil {
		return err
	}
	k[kid] = key
	return nil
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		httpAddr = flag.String("http", "127.0.0.1:8080", "HTTP API and web UI listen address")
		mqttAddr = flag.String("mqtt", "127.0.0.1:1883", "embedded MQTT broker listen address")
		brokerU  = flag.String("broker", "", "use this external broker (tcp://HOST:PORT) instead of the embedded one")
		plat     = flag.String("platform", "sim", "sim: run the virtual platform; external: cabinets only, for an outside platform (needs -broker and -platform-key)")
		platKeys = keyFlags{}
		n        = flag.Int("cabinets", 1, "number of virtual cabinets")
		seed     = flag.Int64("seed", 1, "random seed of the virtual hardware")
		noise    = flag.Float64("noise-g", 0.5, "load-cell noise σ in grams")
		scenario = flag.String("scenario", "", "run this scenario file headless and exit")
		stockF   = flag.String("stock", "", "stock every virtual cabinet with the goods of this stock file (JSON, docs/simulator.md) instead of the demo's; the virtual platform's catalog and planograms come from it too")
		fwMode   = flag.String("firmware", cabsim.InProcess, "where each cabinet's firmware runs: inprocess, or process (a `cabinet` process per cabinet, kill -9 on power cut)")
		fwBin    = flag.String("cabinet-bin", "", "with -firmware=process: the cabinet binary (default: the one beside cabsim, else built with go build)")
		twoCell  = flag.Bool("two-cell", false, "stand every shelf on two load cells (left and right); SKUs stand in their lanes: the stock file's \"lanes\", else spread evenly, and the planograms carry them")
		stateDir = flag.String("state", "", "keep the simulation's state in this directory and resume it on the next start: each cabinet's key and ledger (DIR/<cabinet id>) and the virtual platform's key and books (DIR/platform/); default a temporary directory removed on exit (with -platform=external: the user's cache directory, bangfu-cabsim/external, so that the cabinets' keys stay registered)")
		verbose  = flag.Bool("v", false, "log at debug level")
		offset   = flag.Int("cabinet-offset", 0, "number the cabinets from this one on (ids NM-150102-<7+offset>, …), so that several simulators can drive one broker without clashing")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
		memProf  = flag.String("memprofile", "", "at exit, before the cabinets stop, write a heap profile to this file (go tool pprof), the goroutines grouped by stack to FILE.goroutines, and log the goroutine count")
		saleEv   = flag.Duration("sale-every", 0, "sale load: shoppers come to each cabinet at random (Poisson, seeded by -seed) on average once in this time, e.g. 10m, and buy 1–3 units; GET /api/load reports sales/s, heartbeats/s and close→platform latency, and a summary is logged every minute (needs the virtual platform)")
	)
	flag.Var(platKeys, "platform-key", "with -platform=external: a platform key the cabinets trust, as kid=BASE64URL (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: cabsim [flags]\n\nflags:\n")
		flag.PrintDefaults()
		fmt.Fprint(flag.CommandLine.Output(), usageText)
	}
	flag.Parse()
	if *offset < 0 || *n < 1 {
		fmt.Fprintln(os.Stderr, "cabsim: -cabinets must be at least 1 and -cabinet-offset at least 0")
		return 2
	}
	if *saleEv < 0 || (*saleEv > 0 && (*plat != "sim" || *scenario != "")) {
		fmt.Fprintln(os.Stderr, "cabsim: -sale-every wants a positive duration, the virtual platform (-platform=sim) and no -scenario")
		return 2
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cabsim: -cpuprofile:", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	if *scenario != "" && !*verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	switch *plat {
	case "sim":
		if len(platKeys) > 0 {
			fmt.Fprintln(os.Stderr, "cabsim: -platform-key goes with -platform=external")
			return 2
		}
	case "external":
		if *brokerU == "" || len(platKeys) == 0 || *scenario != "" {
			fmt.Fprintln(os.Stderr, "cabsim: -platform=external needs -broker and at least one -platform-key, and cannot run a scenario")
			return 2
		}
		if *stateDir == "" {
			// An outside platform registers the cabinets' keys once: keep
			// them (and the ledgers) from one start to the next.
			dir, err := externalStateDir()
			if err != nil {
				fmt.Fprintln(os.Stderr, "cabsim: -platform=external: no -state and", err)
				return 2
			}
			*stateDir = dir
			log.Info("cabinet keys and ledgers kept across starts", "state", dir)
		}
	default:
		fmt.Fprintf(os.Stderr, "cabsim: -platform=%s: want sim or external\n", *plat)
		return 2
	}
	if *fwMode != cabsim.InProcess && *fwMode != cabsim.Process {
		fmt.Fprintf(os.Stderr, "cabsim: -firmware=%s: want %s or %s\n", *fwMode, cabsim.InProcess, cabsim.Process)
		return 2
	}
	if *stockF != "" {
		// A bad stock file is a usage error, said before anything starts.
		if _, err := stock.Load(*stockF, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, "cabsim:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := cabsim.Options{MQTTAddr: *mqttAddr, BrokerURL: *brokerU, Cabinets: *n, CabinetOffset: *offset, Seed: *seed, NoiseG: *noise, Logger: log,
		Firmware: *fwMode, CabinetBin: *fwBin, StockFile: *stockF, TwoCell: *twoCell, DataDir: *stateDir, SaleEvery: *saleEv}
	if len(platKeys) > 0 {
		opts.PlatformKeys = platKeys
	}
	if *scenario != "" {
		return runScenario(ctx, opts, *scenario)
	}
	// A person at the web page sees each sale's receipt, as a shopper at a
	// cabinet does.
	opts.ReceiptS = config.Default().ReceiptS
	sim, err := cabsim.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cabsim:", err)
		return 1
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cabsim:", err)
		return 1
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("cabsim: MQTT broker   %s\n", sim.BrokerAddr())
	fmt.Printf("cabsim: web UI and API http://%s\n", ln.Addr())
	if sim.Platform != nil {
		// What an auditor checks the platform's messages with (bangfu-audit -platform-keys).
		fmt.Printf("cabsim: platform key  %s=%s\n", sim.Platform.KeyID(), msg.EncodeKey(sim.Platform.PublicKey()))
	}
	for _, c := range sim.Cabinets() {
		// The key is what a platform registers to verify the cabinet's messages.
		fmt.Printf("cabsim: cabinet       %s key %s\n", c.ID, msg.EncodeKey(c.PublicKey))
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "cabsim:", err)
		return 1
	}
	if *memProf != "" {
		if err := writeHeap(*memProf); err != nil {
			fmt.Fprintln(os.Stderr, "cabsim: -memprofile:", err)
			return 1
		}
		log.Info("heap profile written", "file", *memProf, "goroutines", runtime.NumGoroutine())
	}
	return 0
}

// writeHeap writes the live heap, after a collection, to path.
func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Beside it, the goroutines grouped by stack: where a fleet's stacks go.
	g, err := os.Create(path + ".goroutines")
	if err != nil {
		return err
	}
	if err := pprof.Lookup("goroutine").WriteTo(g, 1); err != nil {
		g.Close()
		return err
	}
	return g.Close()
}

func runScenario(ctx context.Context, opts cabsim.Options, path string) int {
	sc, err := cabsim.LoadScenario(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cabsim:", err)
		return 2
	}
	opts = sc.Apply(opts)
	if opts.BrokerURL == "" {
		opts.MQTTAddr = "127.0.0.1:0" // headless: never clash with a running simulator
	}
	sim, err := cabsim.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cabsim:", err)
		return 1
	}
	defer sim.Close()
	fmt.Printf("scenario %q (seed %d, noise %.1f g)\n", sc.Name, opts.Seed, opts.NoiseG)
	if opts.StockFile != "" {
		fmt.Printf("stock %s\n", opts.StockFile)
	}
	if opts.TwoCell {
		fmt.Println("two load cells a shelf")
	}
	fails := sim.RunScenario(ctx, sc, os.Stdout)
	if len(fails) > 0 {
		fmt.Printf("scenario %q: %d expectation(s) failed\n", sc.Name, len(fails))
		return 1
	}
	fmt.Printf("scenario %q: all expectations held\n", sc.Name)
	return 0
}

// usageText is the HTTP API, for -help.
const usageText = `
HTTP API (JSON, on the -http address; errors are non-2xx with {"error":…}):
  GET  /api/cabinets                    every cabinet's state
  GET  /api/cabinets/{id}               doors, locks, shelves, display, session, mode,
                                        power ("on"/"off"), network ("up"/"down"), firmware;
                                        with -two-cell a shelf's right cell: right_g, read_right_g
  POST /api/cabinets/{id}/scan          {"buyer":{"ref":"u1","kind":"person"}}
  POST /api/cabinets/{id}/door          {"door":1,"action":"open"|"close","force":false}
  POST /api/cabinets/{id}/take          {"shelf":1,"sku":"NM-0001","qty":1}
  POST /api/cabinets/{id}/put           {"shelf":2,"sku":"NM-0001","qty":1} or {"shelf":2,"object_g":350}
  POST /api/cabinets/{id}/lean          {"shelf":1,"g":3000}: a shopper leans on a shelf (door open);
        {"shelf":1,"g":0} lets go, as does closing the door; letting go leaves the
        load cell a hysteresis offset of 0.5–3 g (seeded); with -two-cell "x" (0 left
        … 1 right, default 0.5) says where along the shelf
  POST /api/cabinets/{id}/power         {"action":"cut"|"restore"}
        cut: the hardware goes dark (locks drop, display blank; doors, shelves and
        weights stay) and the firmware stops at once — kill -9 with -firmware=process;
        in-process its context is cancelled (no torn bbolt write: process mode is the
        real test). restore: the firmware starts again from its bbolt files.
  POST /api/cabinets/{id}/network       {"action":"down"|"up"}
        down: the cabinet's connections through its own relay to the broker are
        closed and new ones refused until up (tcp:// brokers).
  GET  /api/platform/catalog | sales | alarms | reconciliation
  GET  /api/platform/report?format=csv|xlsx&from=RFC3339&to=RFC3339&cabinet=ID
                                        the county sales form, one row per sale line
  POST /api/platform/sales/{sale_id}/review
        {"decision":"accept","reviewer":"r1"} or
        {"decision":"recharge","lines":[{"shelf":1,"sku":"…","qty":1}],"reviewer":"r1"}
  GET  /api/load                        with -sale-every: purchases (started, completed, skipped,
        empty, failed by reason), sales and heartbeats the platform received and their
        rates, close→platform latency_ms {p50,p90,p99,max,n}, pending and lost sales;
        404 without -sale-every
`

// externalStateDir is where -platform=external keeps its state without
// -state: the user's cache directory, bangfu-cabsim/external.
func externalStateDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory for the cabinets' keys: %w", err)
	}
	return filepath.Join(base, "bangfu-cabsim", "external"), nil
}
