package helm

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Settings are the flags and environment variables one binary accepts.
type Settings struct {
	Flags map[string]bool // without the leading dash
	Env   map[string]bool
}

// docSections maps a container name of the chart to its binary's section of docs/configuration.md.
// That page lists every flag and variable of each binary, and each binary's config tests
// (TestEveryVariableIsDocumented) fail when a flag is missing from it.
var docSections = map[string]string{
	"controlplane": "## Control plane (`mindrouter-controlplane`)",
	"dataplane":    "## Data plane (`mindrouter-dataplane`)",
	"nodeagent":    "## Node agent (`mindrouter-nodeagent`)",
}

var docRow = regexp.MustCompile("^\\| `-([a-z0-9-]+)` \\| `(MINDROUTER_[A-Z0-9_]+)` \\|")

// documentedSettings parses the flag tables of docs/configuration.md, one Settings per container.
func documentedSettings() (map[string]Settings, error) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		return nil, err
	}
	out := map[string]Settings{}
	for container, heading := range docSections {
		_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
		if !ok {
			return nil, fmt.Errorf("%s: no section %q", docPath, heading)
		}
		if next := strings.Index(rest, "\n## "); next >= 0 {
			rest = rest[:next]
		}
		s := Settings{Flags: map[string]bool{}, Env: map[string]bool{}}
		for _, line := range strings.Split(rest, "\n") {
			if m := docRow.FindStringSubmatch(line); m != nil {
				s.Flags[m[1]] = true
				s.Env[m[2]] = true
			}
		}
		if len(s.Flags) < 10 {
			return nil, fmt.Errorf("%s: only %d flags under %q; has the table changed shape?", docPath, len(s.Flags), heading)
		}
		out[container] = s
	}
	return out, nil
}

// flagName returns the name of a command-line argument such as -max-queue=5 or --tls.
func flagName(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "-") {
		return "", false
	}
	name := strings.TrimLeft(arg, "-")
	name, _, _ = strings.Cut(name, "=")
	return name, name != ""
}
