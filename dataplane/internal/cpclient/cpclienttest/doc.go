// Package cpclienttest provides a stateful fake control plane for tests: a real
// gRPC server on 127.0.0.1:0 implementing AdmissionService and SessionService
// that grants leases on scripted backends, records every Admit, Release, Hello
// and Heartbeat, and can refuse, hold or push on demand.
package cpclienttest
