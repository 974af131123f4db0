package ollamatest

import "syscall"

// sysProcAttr puts ollama serve (and the runners it starts) in a process
// group of its own, so Stop can end them all, and has the kernel kill serve
// if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
