package cabsim

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the child in its own process group, so that a kill
// reaches anything it started and a terminal's Ctrl-C reaches only the
// simulator (which then kills its children itself); Pdeathsig kills it
// should the simulator die without cleaning up.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd) }
}

// killGroup SIGKILLs the child's process group: a power cut.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// killedBySIGKILL reports whether the child died of SIGKILL (a failpoint).
func killedBySIGKILL(cmd *exec.Cmd) bool {
	if cmd.ProcessState == nil {
		return false
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
