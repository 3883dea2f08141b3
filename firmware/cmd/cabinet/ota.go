package main

// The update launcher (`cabinet run` starts here, docs/updates.md) and
// `cabinet release-sign`.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/bangfu/cabinet/firmware"
	"github.com/bangfu/cabinet/firmware/config"
	"github.com/bangfu/cabinet/firmware/ota"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// launch decides which firmware version runs (ota.Decide) before anything
// else: it returns to run this binary, or execs a slot's binary with the
// same arguments and environment plus BANGFU_SLOT (which then runs
// without deciding again). It returns an exit status when the exec
// failed (the start is recorded: the next start counts it).
func launch(cfg config.Config, log *slog.Logger) (code int, exit bool) {
	if os.Getenv(ota.SlotEnv) != "" {
		return 0, false // exec'd by the launcher: run
	}
	path := ota.StatePath(cfg.DataDir)
	now := time.Now()
	st, err := ota.Load(path)
	if errors.Is(err, ota.ErrCorrupt) {
		// Safe default: the factory binary runs, and says so.
		aside, aerr := ota.SetAside(path, now)
		reason := fmt.Sprintf("%v; set aside as %s", err, aside)
		if aerr != nil {
			reason = fmt.Sprintf("%v; could not set it aside: %v", err, aerr)
		}
		log.Error("update state unreadable: the factory firmware runs", "err", reason)
		st = ota.State{Current: ota.Running{Slot: ota.Factory, Version: firmware.FW},
			Pending: []ota.Outcome{{ID: fmt.Sprintf("ota-state-%d", now.UnixNano()), Kind: ota.OutcomeRolledBack,
				To: firmware.FW, Reason: "state.json unreadable: " + reason, At: now.UTC()}}}
		if err := ota.Save(path, st); err != nil {
			log.Error("update state", "err", err)
		}
		return 0, false
	} else if err != nil {
		log.Error("update state", "err", err)
		return 0, false
	}
	boot := ota.BootID()
	d := ota.Decide(st, boot, firmware.FW, cfg.UpdateMaxStarts,
		func(slot string) error { return ota.SlotUsable(cfg.DataDir, slot) }, now)
	if d.Write {
		if err := ota.Save(path, d.State); err != nil {
			// An unrecorded start could not be counted: run the factory.
			log.Error("update state not written: the factory firmware runs", "err", err)
			return 0, false
		}
	}
	if d.Slot == ota.Factory {
		if d.Write || d.Why != "factory" {
			log.Info("firmware launcher", "runs", "factory", "version", d.Version, "why", d.Why)
		}
		return 0, false
	}
	bin := ota.SlotPath(cfg.DataDir, d.Slot)
	argv := append([]string{bin}, os.Args[1:]...)
	if w := strings.Fields(os.Getenv(ota.WrapperEnv)); len(w) > 0 {
		argv = append(w, argv...)
	}
	prog, err := exec.LookPath(argv[0])
	if err != nil {
		log.Error("firmware launcher: exec", "err", err)
		return 1, true
	}
	log.Info("firmware launcher", "runs", d.Slot, "version", d.Version, "why", d.Why, "boot", boot)
	env := append(os.Environ(), ota.SlotEnv+"="+d.Slot)
	err = syscall.Exec(prog, argv, env)
	log.Error("firmware launcher: exec", "bin", bin, "err", err)
	return 1, true
}

// runReleaseSign is `cabinet release-sign`: it prints the bundle of an
// update command for BINARY, signed with a release key.
func runReleaseSign(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("release-sign", flag.ContinueOnError)
	fset.SetOutput(stderr)
	keyFile := fset.String("key", "", "the release key's seed (cabinet keygen --out FILE)")
	kid := fset.String("kid", "release-1", "the key's id in the cabinets' release_keys")
	version := fset.String("version", "", "the version BINARY reports (firmware.FW)")
	minVersion := fset.String("min-version", "", "the least version a cabinet may later be updated to")
	url := fset.String("url", "", "where the cabinets download BINARY")
	const use = "usage: cabinet release-sign --key FILE [--kid ID] --version V [--min-version M] --url URL BINARY"
	if err := fset.Parse(args); err != nil || fset.NArg() != 1 || *keyFile == "" || *version == "" || *url == "" {
		fmt.Fprintln(stderr, use)
		return 2
	}
	if !ota.ValidVersion(*version) || *minVersion != "" && !ota.ValidVersion(*minVersion) {
		fmt.Fprintln(stderr, "cabinet: release-sign: versions are MAJOR.MINOR.PATCH")
		return 2
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	f, err := os.Open(fset.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "cabinet:", err)
		return 1
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		fmt.Fprintln(stderr, "cabinet:", err)
		return 1
	}
	b := ota.Sign(msg.Bundle{Version: *version, URL: *url, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), MinVersion: *minVersion},
		*kid, key)
	out, _ := json.MarshalIndent(b, "", "  ")
	fmt.Fprintln(stdout, string(out))
	fmt.Fprintf(stderr, "release key %s: %s (put it in the cabinets' release_keys)\n", *kid, msg.EncodeKey(key.Public().(ed25519.PublicKey)))
	return 0
}
