package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImages builds every image tarball as `make images` does, loads each
// back, checks its configuration (entrypoint, non-root user, exposed ports,
// labels, platform) and its filesystem (the binary, the passwd entry, no
// shell), then runs the binary extracted from the image's own layers.
func TestImages(t *testing.T) {
	out := t.TempDir()
	for _, im := range Images {
		t.Run(im.Name, func(t *testing.T) {
			path, err := Build("../..", out, "v9.8.7-test", im)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			if want := BinDir + "/" + im.Name; len(c.Entrypoint) != 1 || c.Entrypoint[0] != want {
				t.Errorf("entrypoint %v, want [%s]", c.Entrypoint, want)
			}
			if c.User != User || strings.HasPrefix(c.User, "0") || c.User == "root" {
				t.Errorf("user %q, want %q (non-root)", c.User, User)
			}
			for _, p := range im.Ports {
				if _, ok := c.ExposedPorts[p+"/tcp"]; !ok {
					t.Errorf("port %s/tcp not exposed: %v", p, c.ExposedPorts)
				}
			}
			if len(c.ExposedPorts) != len(im.Ports) {
				t.Errorf("exposed ports %v, want %v", c.ExposedPorts, im.Ports)
			}
			if c.Labels["org.opencontainers.image.version"] != "v9.8.7-test" || c.Labels["org.opencontainers.image.title"] != im.Name {
				t.Errorf("labels %v", c.Labels)
			}
			if cf.OS != "linux" {
				t.Errorf("os %q", cf.OS)
			}

			files := map[string][]byte{}
			modes := map[string]int64{}
			rc := mutate.Extract(img)
			defer rc.Close()
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				modes[h.Name] = h.Mode
				if h.Typeflag == tar.TypeReg {
					b, err := io.ReadAll(tr)
					if err != nil {
						t.Fatal(err)
					}
					files[h.Name] = b
				}
			}
			for _, sh := range []string{"bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"} {
				if _, ok := modes[sh]; ok {
					t.Errorf("the image has a shell: %s", sh)
				}
			}
			if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532:") {
				t.Errorf("no non-root user in /etc/passwd: %q", files["etc/passwd"])
			}
			binPath := strings.TrimPrefix(c.Entrypoint[0], "/")
			bin, ok := files[binPath]
			if !ok {
				t.Fatalf("the entrypoint %s is not in the layers", binPath)
			}
			if modes[binPath]&0o111 == 0 {
				t.Errorf("%s is not executable: %o", binPath, modes[binPath])
			}
			exe := filepath.Join(t.TempDir(), im.Name)
			if err := os.WriteFile(exe, bin, 0o755); err != nil {
				t.Fatal(err)
			}
			// -h prints the flags and exits; a static binary runs anywhere.
			got, _ := exec.Command(exe, "-h").CombinedOutput()
			wantFlag := map[string]string{"mindrouter-controlplane": "-grpc-listen", "mindrouter-dataplane": "-controlplane-addr"}[im.Name]
			if !strings.Contains(string(got), wantFlag) {
				t.Errorf("%s -h from the image's layer: %q lacks %s", im.Name, got, wantFlag)
			}
			if ldd, err := exec.Command("file", exe).CombinedOutput(); err == nil && !strings.Contains(string(ldd), "statically linked") {
				t.Errorf("not a static binary: %s", ldd)
			}
		})
	}
}
