package main

// `cabinet help`: what every subcommand does, for the technician at the
// board. The texts are written for people; help_test.go checks that every
// flag a subcommand accepts is explained here.

import (
	"fmt"
	"io"
	"strings"
)

type command struct {
	name    string
	summary string // one line, for the list
	usage   string // the synopsis lines
	text    string // what it does, its flags, its exit status
}

// commands in the order `cabinet help` lists them: the daemon, then what a
// technician runs while installing, then the rest.
var commands = []command{
	{
		name:    "run",
		summary: "the firmware daemon (what the bangfu-cabinet service runs)",
		usage: `cabinet run --board FILE [--config FILE] [-v]
cabinet run --hal sim [--shelves N] [--config FILE] [-v]
cabinet run --hal sim-socket --sim-socket PATH [--config FILE] [-v]`,
		text: `Runs the cabinet until SIGTERM or Ctrl-C: takes unlocks from the platform, watches
doors and shelves, records every sale in the ledger (<data_dir>/ledger.db) and reports it
over MQTT. With --board it drives the real hardware the board file describes; the shelves'
calibrations come from the ledger (an uncalibrated shelf reports a scale fault and the
cabinet sells nothing until ` + "`cabinet calibrate`" + ` has run). Under systemd it reports
READY once its device loop runs and feeds the service watchdog from that loop.

  --config FILE      the config (default /etc/bangfu/cabinet.json)
  --board FILE       the cabinet's board file, e.g. /etc/bangfu/board.yaml: run on real hardware
  --hal KIND         instead of --board: sim (a virtual cabinet in this process) or sim-socket
                     (the simulator's virtual hardware, reached over --sim-socket)
  --sim-socket PATH  with --hal sim-socket: the simulator's socket for this cabinet
  --shelves N        with --hal sim: shelves behind door 1 (default 4)
  -v                 debug logging

Exit status: 0 stopped by a signal, 1 failed (the error is on stderr), 2 bad flags,
3 the platform asked for a reboot (systemd starts it again).`,
	},
	{
		name:    "provision",
		summary: "make the device's keys and certificate request, write the config",
		usage:   `cabinet provision --id CABINET --platform-key KID=FILE [--platform-key KID=FILE …] [--broker URL] [--data-dir DIR] [--config FILE] [--force]`,
		text: `Makes the cabinet's two key pairs on the device (neither private key leaves it):
<data_dir>/device.key signs sales and the QR code; <data_dir>/tls/device-key.pem is the
key of its TLS client certificate, with the request <data_dir>/tls/device.csr for the
platform's CA. Writes the cabinet id, the trusted platform keys, the broker, the data
directory and the TLS file paths into the config, keeping every other setting as it is,
and refuses to write a config that would not validate. Prints JSON for the platform's
tools on stdout (the public key to register, the CSR) and what is left to do on stderr.

  --id CABINET           the cabinet id: letters, digits and '-', 1 to 64 characters
  --platform-key KID=FILE  a platform public key to trust (repeat for several); FILE holds
                         the Ed25519 key as base64url or as a PEM "PUBLIC KEY"
  --broker URL           the MQTT broker: ssl://host:8883 (mutual TLS: the certificate the
                         platform signs goes to <data_dir>/tls/device-cert.pem and the broker's
                         CA bundle to <data_dir>/tls/ca.pem) or tcp://host:1883 (no TLS, for a
                         lab only). Needed unless the config names one already.
  --data-dir DIR         where the keys, the ledger and the catalog live (default: the
                         config's data_dir, else /var/lib/bangfu)
  --config FILE          the config to create or update (default /etc/bangfu/cabinet.json)
  --force                replace the keys of a cabinet provisioned before; the ledger and the
                         catalog are kept. Refused while the firmware runs.

Exit status: 0 done, 1 refused or failed, 2 bad flags.`,
	},
	{
		name:    "firstboot",
		summary: "provision from the boot partition's bangfu.txt and show the registration QR code",
		usage: `cabinet firstboot [--boot DIR] [--etc DIR] [--data-dir DIR] [--show 10m]
cabinet firstboot --qr [--etc DIR] [--data-dir DIR] [--show 10m]`,
		text: `Provisions a freshly flashed cabinet from bangfu.txt on the SD card's boot partition, the
file a technician writes with any text editor: key = value lines, # starts a comment.

  cabinet_id   = NM-150102-0007                 the cabinet id (required)
  broker       = ssl://mqtt.example.net:8883    the MQTT broker (required)
  platform_key = KID:KEY                        a platform public key, base64url (required;
                                                repeat the line for several)
  board        = rpi4-fridge-2door              a board file in /etc/bangfu/boards: linked as
                                                /etc/bangfu/board.yaml (optional)

Does what ` + "`cabinet provision`" + ` does (the same keys, certificate request and config), links the
board file, writes the registration (cabinet id, public key, the CSR's SHA-256 and the CSR) to
bangfu-done.txt beside the boot file, removes bangfu.txt, then shows the registration QR code
on the display of the board file (and prints it on the console) for the technician to scan. A
bad boot file is refused whole, naming the line, and nothing is changed. Every step can be
repeated: after a power cut the next run finishes the job, and a run with no bangfu.txt does
nothing. Later, device-cert.pem (the certificate the platform signed) and ca.pem (the broker's
CA bundle) put on the boot partition are checked against the cabinet's TLS key and id, installed
where the config names them, and removed. The bangfu-firstboot service runs it at boot while
one of these files exists.

  --boot DIR       the boot partition (default /boot/firmware)
  --etc DIR        where cabinet.json, board.yaml and boards/ are (default /etc/bangfu)
  --data-dir DIR   where the keys, the ledger and the catalog live (default: the config's
                   data_dir, else /var/lib/bangfu)
  --show D         how long the QR code stays on the display, then it is blanked (default 10m)
  --qr             show the registration QR code of a provisioned cabinet again and change
                   nothing (stop the bangfu-cabinet service first: the display is its)

Exit status: 0 done or nothing to do, 1 refused or failed, 2 bad flags.`,
	},
	{
		name:    "check-config",
		summary: "validate a config file and exit",
		usage:   `cabinet check-config FILE`,
		text: `Reads FILE as the daemon would (unknown keys are errors) and checks every setting,
and the TLS files it names (present, parsable, the key readable only by its owner).
Prints "config ok", or each problem on a line of its own naming the setting and what it
must be. Every setting is described in docs/config.md.

Exit status: 0 valid, 1 not valid or unreadable, 2 bad usage.`,
	},
	{
		name:    "diag",
		summary: "check every lock, door, shelf, display, thermometer and indicator (service stopped)",
		usage: `cabinet diag --board FILE [--config FILE] [--yes] [--sample 5s] [--door-timeout 30s]
cabinet diag --hal sim [--yes]`,
		text: `Walks through the cabinet's hardware with the technician: opens each lock and asks
that the door be opened and shut, watches each shelf's scale, draws a test pattern on the
display, reads the thermometer. Stop the service first (systemctl stop bangfu-cabinet):
diag drives the same pins.

  --board FILE        the cabinet's board file
  --hal sim           instead of --board: a virtual cabinet
  --config FILE       with --board: the config, for the shelves' stored calibrations
                      (default /etc/bangfu/cabinet.json)
  --yes               answer yes to every question (the doors still need a person)
  --sample D          how long each shelf's scale is watched (default 5s)
  --door-timeout D    how long to wait for each door move (default 30s)

Exit status: 0 every part passed, 1 something failed, 2 bad flags.`,
	},
	{
		name:    "calibrate",
		summary: "tare a shelf, fit it to reference weights, store the result in the ledger (service stopped)",
		usage:   `cabinet calibrate (--board FILE | --hal sim) --shelf N [--cell left|right] [--ref 500] [--ref 1000] [--config FILE] [--samples 20] [--settle 2s]`,
		text: `Tares the empty shelf, then asks for each reference weight in turn and reports the
residual error at each. The factor is stored in the ledger (<data_dir>/ledger.db) with the
date and a counter; restart the service to use it. Stop the service first.

A shelf carried by two load cells (hx711_right in the board file) is calibrated one cell
at a time: run --cell left, then --cell right, placing the reference weights directly over
that cell (at its end of the tray). The shelf reports a scale fault until both are stored.

  --board FILE     the cabinet's board file
  --hal sim        instead of --board: a virtual cabinet
  --shelf N        the shelf to calibrate
  --cell C         left (default; a one-cell shelf's only cell) or right
  --ref G          a reference weight in grams, the total on the shelf; repeat for more points
                   (default 500 and 1000)
  --config FILE    the config, for data_dir (default /etc/bangfu/cabinet.json)
  --samples N      raw samples averaged at each point
  --settle D       wait after each confirmation before sampling

Exit status: 0 stored, 1 failed, 2 bad flags.`,
	},
	{
		name:    "storage",
		summary: "show or clear a storage fault (a corrupt or lost ledger set aside)",
		usage:   `cabinet storage status|clear [--config FILE]`,
		text: `When the firmware finds its ledger corrupt (or missing beside an existing catalog) it
sets the old file aside, starts a new ledger and refuses shoppers. "status" says what
happened and where the old file is; "clear", run with the service stopped once the old file
has been copied off for recovery, lets the cabinet sell again.

  --config FILE    the config, for data_dir (default /etc/bangfu/cabinet.json)

Exit status: 0 done, 1 failed, 2 bad usage.`,
	},
	{
		name:    "keygen",
		summary: "make a device signing key (Ed25519, mode 0600) and print its public key",
		usage:   `cabinet keygen --out FILE`,
		text: `Writes a new Ed25519 seed to FILE with mode 0600, refusing to replace an existing
file, and prints the public key (base64url, no padding) on stdout: the key the platform
registers for the cabinet. ` + "`cabinet provision`" + ` does this and more; keygen is for
labs and the simulator.

  --out FILE       where to write the key (the daemon reads <data_dir>/device.key)

Exit status: 0 written, 1 refused or failed, 2 bad usage.`,
	},
	{
		name:    "release-sign",
		summary: "sign a firmware build and print the bundle of an update command",
		usage:   `cabinet release-sign --key FILE [--kid ID] --version V [--min-version M] --url URL BINARY`,
		text: `Hashes BINARY (a cabinet binary that reports version V) and prints, as JSON, the bundle an
` + "`update`" + ` command carries: version, url, size, sha256, min_version and the Ed25519
signature of the release key (docs/updates.md). The url is not signed: any mirror may serve
the file. Make a release key with ` + "`cabinet keygen`" + `; its public key, printed on stderr,
goes into the cabinets' release_keys under the same kid.

  --key FILE         the release key's seed (mode 0600), as cabinet keygen writes it
  --kid ID           the key's id in release_keys (default release-1)
  --version V        the version BINARY reports (MAJOR.MINOR.PATCH)
  --min-version M    after this update commits, no update below M is accepted
  --url URL          where cabinets download BINARY (http or https)

Exit status: 0 printed, 1 failed, 2 bad usage.`,
	},
	{
		name:    "check-planogram",
		summary: "lint a stock file's planogram: warnings, predicted exact rate, worst confusions",
		usage:   `cabinet check-planogram [--noise-g 0.5] [--sessions 2000] [--seed 1] [--two-cell] [--revenue-first] STOCKFILE`,
		text: `Reads a stock file (products and shelves, docs/simulator.md), warns about products
the scales cannot tell apart, and simulates shopping sessions to predict how many sales will
be charged exactly.

  --noise-g G       load-cell noise σ per settled reading, grams (default 0.5)
  --sessions N      simulated sessions (default 2000)
  --seed N          simulation seed (default 1)
  --two-cell        every shelf on two load cells, SKUs at their lanes
  --revenue-first   judge with the revenue-first charge rule

Exit status: 0 the planogram passes, 1 it does not or the file is bad, 2 bad usage.`,
	},
	{
		name:    "version",
		summary: "print the firmware version",
		usage:   `cabinet version`,
		text:    `Prints the firmware version (the one reported in sales and heartbeats) and the package build.`,
	},
	{
		name:    "help",
		summary: "this list, or one subcommand's help",
		usage:   `cabinet help [SUBCOMMAND]`,
		text:    `Prints what every subcommand does, or one subcommand's usage and flags (as does "cabinet SUBCOMMAND -h").`,
	},
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// printHelp writes the list of subcommands.
func printHelp(w io.Writer) {
	fmt.Fprintln(w, "cabinet: the Bangfu cabinet firmware and the technician's tools.")
	fmt.Fprintln(w, "\nusage: cabinet SUBCOMMAND [flags]\n\nsubcommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n`cabinet help SUBCOMMAND` or `cabinet SUBCOMMAND -h` tells more. Installed from the")
	fmt.Fprintln(w, "package, the binary is /usr/bin/bangfu-cabinet (`cabinet` links to it), the config")
	fmt.Fprintln(w, "/etc/bangfu/cabinet.json, the board files /etc/bangfu/boards/, the data /var/lib/bangfu.")
}

// printCommandHelp writes one subcommand's help.
func printCommandHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "cabinet %s: %s\n\nusage:\n", c.name, c.summary)
	for _, l := range strings.Split(c.usage, "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "\n%s\n", c.text)
}

// helpAsked reports whether args ask for help (-h, -help, --help) before
// any "--".
func helpAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}
