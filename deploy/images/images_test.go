package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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
			links := map[string]string{}
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
				if h.Typeflag == tar.TypeSymlink {
					links[h.Name] = h.Linkname
				}
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
			wantFlag := map[string]string{"mindrouter-controlplane": "-grpc-listen", "mindrouter-dataplane": "-controlplane-addr",
				"mindrouter-enginesim": "-engine", "mindrouter-nodeagent": "-control-plane"}[im.Name]
			if im.Cgo {
				checkCgoImage(t, im, c.Env, c.Labels, files, links, wantFlag)
				return
			}
			exe := filepath.Join(t.TempDir(), im.Name)
			if err := os.WriteFile(exe, bin, 0o755); err != nil {
				t.Fatal(err)
			}
			// -h prints the flags and exits; a static binary runs anywhere.
			got, _ := exec.Command(exe, "-h").CombinedOutput()
			if !strings.Contains(string(got), wantFlag) {
				t.Errorf("%s -h from the image's layer: %q lacks %s", im.Name, got, wantFlag)
			}
			if ldd, err := exec.Command("file", exe).CombinedOutput(); err == nil && !strings.Contains(string(ldd), "statically linked") {
				t.Errorf("not a static binary: %s", ldd)
			}
		})
	}
}

// checkCgoImage writes the image's filesystem into a directory and runs the
// binary there with the image's own program interpreter and libraries: the
// loader lists where it resolves every library (each must be inside the
// image, the host's cache and directories playing no part), then runs -h.
// NVML is not in the image (the NVIDIA container toolkit mounts it), and the
// binary needs it only once it collects.
func checkCgoImage(t *testing.T, im Image, env []string, labels map[string]string, files map[string][]byte, links map[string]string, wantFlag string) {
	t.Helper()
	for _, e := range []string{"NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=utility"} {
		if !slices.Contains(env, e) {
			t.Errorf("env %v lacks %s", env, e)
		}
	}
	if l := labels[LibrariesLabel]; !strings.Contains(l, "libc.so.6=") || !strings.HasPrefix(l, "debian ") {
		t.Errorf("label %s = %q: want the Debian release and libc", LibrariesLabel, l)
	}
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if filepath.IsAbs(target) {
			t.Errorf("symlink %s -> %s is absolute: it would leave an extracted image", name, target)
		}
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	for name := range files {
		if strings.Contains(name, "libnvidia-ml") {
			t.Errorf("NVML is in the image: %s", name)
		}
	}
	loader := filepath.Join(root, "lib64", "ld-linux-x86-64.so.2")
	if runtime.GOARCH != "amd64" {
		t.Skipf("the loader check knows x86-64's interpreter only, not %s", runtime.GOARCH)
	}
	if resolved, err := filepath.EvalSymlinks(loader); err != nil || !strings.HasPrefix(resolved, root+"/") {
		t.Fatalf("the image's program interpreter %s: %s, %v", loader, resolved, err)
	}
	var dirs []string
	for _, d := range SearchDirs() {
		dirs = append(dirs, filepath.Join(root, d))
	}
	exe := filepath.Join(root, BinDir, im.Name)
	args := []string{"--inhibit-cache", "--library-path", strings.Join(dirs, ":")}
	list, err := exec.Command(loader, append(args, "--list", exe)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s --list %s: %v\n%s", loader, exe, err, list)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		// "libc.so.6 => /root/usr/lib/.../libc.so.6 (0x...)", or the
		// interpreter and vDSO without an arrow.
		_, where, ok := strings.Cut(line, "=> ")
		if !ok {
			if strings.Contains(line, "linux-vdso") || strings.Contains(line, root+"/") {
				continue
			}
			t.Errorf("the loader resolved %q outside the image", line)
			continue
		}
		if !strings.HasPrefix(where, root+"/") {
			t.Errorf("the loader resolved %q outside the image", line)
		}
	}
	got, err := exec.Command(loader, append(args, exe, "-h")...).CombinedOutput()
	if err != nil || !strings.Contains(string(got), wantFlag) {
		t.Errorf("%s -h with the image's loader and libraries: %v, %q lacks %s", im.Name, err, got, wantFlag)
	}
}
