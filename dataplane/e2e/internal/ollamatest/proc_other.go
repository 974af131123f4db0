//go:build unix && !linux

package ollamatest

import "syscall"

// sysProcAttr puts ollama serve (and the runners it starts) in a process
// group of its own, so Stop can end them all.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
