// Package collector reads one NodeSample from NVML: every GPU's identity, utilisation,
// memory, temperature, power, clocks, fan and processes, plus the driver, CUDA and NVML
// versions.
//
// It owns the NVML session (Init on first use, retried on every collection while it
// fails, Shutdown on Close) and the translation of NVML return codes into absent or zero
// fields. A field NVML cannot read never drops its GPU, and a node without a driver or
// without GPUs still yields a sample, with no GPUs and NodeSample.nvml_error set.
//
// It must not send anything anywhere (the uplink does), keep history, or read anything
// about a process beyond its short command name (/proc/<pid>/comm): command lines and
// environments can hold secrets.
package collector
