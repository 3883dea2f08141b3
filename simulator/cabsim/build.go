package cabsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// cabinetPkg is the device binary's package.
const cabinetPkg = "github.com/bangfu/cabinet/firmware/cmd/cabinet"

// BuildCabinet builds the device binary into dir with `go build` and
// returns its path. It needs the module's source: run it from inside the
// repository (tests do, from their package directory).
func BuildCabinet(ctx context.Context, dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("cabsim: no go tool to build the cabinet binary (pass -cabinet-bin): %w", err)
	}
	out := filepath.Join(dir, "cabinet")
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, cabinetPkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cabsim: go build %s: %w\n%s", cabinetPkg, err, b)
	}
	return out, nil
}

// cabinetBeside returns the `cabinet` next to the running executable, as
// `make build` leaves it in bin/.
func cabinetBeside() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(exe), "cabinet")
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return "", errors.New("cabsim: " + p + " is not an executable")
	}
	return p, nil
}
