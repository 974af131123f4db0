package imagefetch

import (
	"net/netip"
	"strings"
)

// deniedRanges are the address ranges refused unless allow-listed, with the
// description a client reads.
var deniedRanges = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT (shared) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata services live there)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved (IETF protocol) address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a reserved (documentation) address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a reserved (benchmarking) address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a reserved (documentation) address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a reserved (documentation) address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"}, // includes 255.255.255.255
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fc00::/7"), "a private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a reserved (documentation) address"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address"},
}

// Prefixes that embed an IPv4 address, which is checked in its stead.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Policy decides which addresses and hosts may be fetched from.
type Policy struct {
	// AllowCIDRs are ranges allowed although they would be denied.
	AllowCIDRs []netip.Prefix
	// AllowHosts are host names (exact, case-insensitive; a leading "." allows
	// every subdomain) whose addresses are not checked.
	AllowHosts []string
}

// hostAllowed reports whether host is allow-listed by name.
func (p *Policy) hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range p.AllowHosts {
		h = strings.ToLower(h)
		if host == h || (strings.HasPrefix(h, ".") && strings.HasSuffix(host, h)) {
			return true
		}
	}
	return false
}

// check returns "" when addr may be dialled, or what kind of address it is.
func (p *Policy) check(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	for _, pre := range p.AllowCIDRs {
		if pre.Contains(addr) {
			return ""
		}
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64.Contains(addr):
			if why := p.check(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); why != "" {
				return why
			}
		case sixToFour.Contains(addr):
			if why := p.check(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); why != "" {
				return why
			}
		}
	}
	for _, d := range deniedRanges {
		if d.prefix.Contains(addr) {
			return d.what
		}
	}
	return ""
}
