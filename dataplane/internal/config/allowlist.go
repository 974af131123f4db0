package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ImageFetchAllowList splits ImageFetchAllow into address ranges (a bare IP
// is a one-address range) and host names.
func (c Config) ImageFetchAllowList() ([]netip.Prefix, []string, error) {
	var prefixes []netip.Prefix
	var hosts []string
	for _, e := range c.ImageFetchAllow {
		if p, err := netip.ParsePrefix(e); err == nil {
			prefixes = append(prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		if !validHost(e) {
			return nil, nil, fmt.Errorf("%q is not a CIDR, an IP address or a host name", e)
		}
		hosts = append(hosts, strings.ToLower(e))
	}
	return prefixes, hosts, nil
}

// validHost accepts DNS names, optionally with a leading "." for subdomains.
func validHost(h string) bool {
	h = strings.TrimPrefix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// listValue is a comma-separated list; each Set replaces it.
type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }
func (v *listValue) Set(s string) error {
	*v = nil
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*v = append(*v, item)
		}
	}
	return nil
}

type boolValue bool

func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a boolean (true or false)")
	}
	*v = boolValue(b)
	return nil
}

// onOffValue is a switch written on or off (true and false are accepted too).
type onOffValue bool

func (v *onOffValue) String() string {
	if *v {
		return "on"
	}
	return "off"
}

func (v *onOffValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "1":
		*v = true
	case "off", "false", "0":
		*v = false
	default:
		return fmt.Errorf("not on or off")
	}
	return nil
}
