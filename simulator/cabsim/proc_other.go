//go:build !linux

package cabsim

import (
	"os/exec"
)

// ownGroup leaves the child in the simulator's group: process groups and
// death signals are Linux-only here; Close still kills and waits for it.
func ownGroup(cmd *exec.Cmd) {
	cmd.Cancel = func() error { return killGroup(cmd) }
}

// killGroup kills the child: a power cut.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}

// killedBySIGKILL reports whether the child was killed by a signal.
func killedBySIGKILL(cmd *exec.Cmd) bool {
	return cmd.ProcessState != nil && !cmd.ProcessState.Exited()
}
