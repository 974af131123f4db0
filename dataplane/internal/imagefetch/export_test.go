package imagefetch

import "net/netip"

// Check exposes the address check to the tests.
func Check(p Policy, addr netip.Addr) string { return p.check(addr) }
