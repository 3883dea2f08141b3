package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ledger"
)

// runStorage is `cabinet storage status|clear --config FILE`: the
// technician's side of a storage fault. When the firmware found its ledger
// corrupt (or missing beside an existing catalog) it set the old file aside,
// started a new ledger and refuses shoppers. `status` says what happened and
// where the old file is; `clear`, run with the firmware stopped once the old
// file has been copied off for recovery, lets the cabinet sell again.
func runStorage(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "status" && args[0] != "clear") {
		fmt.Fprintln(stderr, "usage: cabinet storage status|clear [--config FILE]")
		return 2
	}
	fs := flag.NewFlagSet("storage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/bangfu/cabinet.json", "config file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	l, err := ledger.Open(filepath.Join(cfg.DataDir, "ledger.db"))
	if err != nil {
		fmt.Fprintf(stderr, "cabinet: %v (stop the firmware first)\n", err)
		return 1
	}
	defer l.Close()
	f, err := l.Fault()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if f == nil {
		fmt.Fprintln(stdout, "no storage fault recorded")
		return 0
	}
	fmt.Fprintf(stdout, "storage fault recorded %s: %s\n", f.At.Format("2006-01-02 15:04:05Z"), f)
	if args[0] == "status" {
		return 0
	}
	if err := l.ClearFault(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "cleared: the cabinet takes shoppers again after its next start")
	return 0
}
