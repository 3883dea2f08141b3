// Command tool builds the cabinet firmware's Debian package with nfpm's Go
// API, from packaging/nfpm.yaml. It is its own module so that nfpm and its
// dependencies stay out of the firmware's go.mod. `make package` runs it
// once per architecture:
//
//	go run . -root ../.. -arch armhf -version 0.1.0+git.abc1234 \
//	    -binary bin/pkg/armhf/bangfu-cabinet -out bin/pkg
//
// Paths are relative to -root. It prints the path of the .deb it wrote.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

// debArch is what the tool builds: Debian architecture names.
var debArch = map[string]bool{"armhf": true, "arm64": true, "amd64": true}

// debVersion is a Debian native version (no revision): it starts with a
// digit and uses no '-'.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", ".", "the repository's root")
	arch := flag.String("arch", "", "Debian architecture: armhf, arm64 or amd64")
	version := flag.String("version", "", "package version, e.g. 0.1.0+git.abc1234 (no '-')")
	binary := flag.String("binary", "", "the cabinet binary built for -arch")
	out := flag.String("out", "bin/pkg", "directory for the .deb")
	config := flag.String("config", "packaging/nfpm.yaml", "nfpm config")
	epoch := flag.String("mtime", "", "Unix time of the files in the package and of the changelog entry (default: SOURCE_DATE_EPOCH, else now)")
	flag.Parse()
	if !debArch[*arch] {
		return fmt.Errorf("-arch %q: want armhf, arm64 or amd64", *arch)
	}
	if !debVersion.MatchString(*version) {
		return fmt.Errorf("-version %q: want a Debian native version (starts with a digit; letters, digits, . + ~)", *version)
	}
	if *binary == "" {
		return fmt.Errorf("-binary is required")
	}
	if err := os.Chdir(*root); err != nil {
		return err
	}
	if st, err := os.Stat(*binary); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a file", *binary)
	}
	when := time.Now().UTC().Truncate(time.Second)
	if *epoch == "" {
		*epoch = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if *epoch != "" {
		n, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("-mtime %q: want Unix seconds", *epoch)
		}
		when = time.Unix(n, 0).UTC()
	}

	gen, err := os.MkdirTemp("", "bangfu-package-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gen)
	man, err := os.ReadFile("packaging/deb/bangfu-cabinet.1")
	if err != nil {
		return err
	}
	man = bytes.Replace(man, []byte(`.TH BANGFU-CABINET 1 ""`), fmt.Appendf(nil, `.TH BANGFU-CABINET 1 "%s"`, when.Format("2006-01-02")), 1)
	if err := writeGzip(filepath.Join(gen, "bangfu-cabinet.1.gz"), man, when); err != nil {
		return err
	}
	changelog := fmt.Sprintf("bangfu-cabinet (%s) unstable; urgency=medium\n\n"+
		"  * Built from the Bangfu cabinet firmware sources (make package).\n\n"+
		" -- Bangfu cabinet firmware <firmware@bangfu.example>  %s\n",
		*version, when.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	if err := writeGzip(filepath.Join(gen, "changelog.gz"), []byte(changelog), when); err != nil {
		return err
	}

	env := map[string]string{"NFPM_ARCH": *arch, "NFPM_VERSION": *version, "NFPM_BINARY": *binary, "NFPM_GEN": gen}
	cfg, err := nfpm.ParseFileWithEnvMapping(*config, func(k string) string { return env[k] })
	if err != nil {
		return fmt.Errorf("%s: %w", *config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return err
	}
	info.MTime = when
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return err
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	target := filepath.Join(*out, pkg.ConventionalFileName(info))
	f, err := os.Create(target + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(target + ".tmp")
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(target+".tmp", target); err != nil {
		return err
	}
	fmt.Println(target)
	return nil
}

// writeGzip writes b compressed at the best level, with no name and a
// fixed time in the header, so the same input gives the same bytes.
func writeGzip(path string, b []byte, when time.Time) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.ModTime = when
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
