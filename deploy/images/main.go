// Command images builds the OCI image tarballs of MindRouter's binaries
// without a container engine: each image is a single layer on an empty base
// (no shell, no package manager) holding the binary, a passwd entry for the
// non-root user it runs as, and a writable working directory. The node
// agent's binary needs cgo, so its layer also holds the C libraries it links
// against, copied from the build host (Debian), and the program interpreter;
// NVML itself is not in it (see libs.go). The layout matches
// deploy/images/Dockerfile.
//
//	go run . -out ../../bin/images -version v1.2.3
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image describes one image: the package built into it and what its
// configuration says.
type Image struct {
	// Name is the binary's and the image's name.
	Name string
	// Package is the main package, relative to the repository root.
	Package string
	// VersionVar is the -X linker target that receives the version (none:
	// the version is in the labels only).
	VersionVar string
	// Ports are exposed as <port>/tcp.
	Ports       []string
	Description string
	// Cgo builds with CGO_ENABLED=1 and puts the binary's shared libraries
	// and program interpreter into the layer.
	Cgo bool
	// Env is added to the image's environment after PATH.
	Env []string
}

// Images are the images `make images` builds. The node agent loads NVML
// (libnvidia-ml.so.1) with dlopen, so it is built with cgo and its image
// carries glibc; on a GPU host the NVIDIA container toolkit mounts the
// driver's libnvidia-ml.so.1 into the container, as the two NVIDIA_ variables
// ask (utility: NVML and nvidia-smi, no CUDA). It exposes no port: its
// metrics listener is off unless -metrics-addr is set.
var Images = []Image{
	{Name: "mindrouter-controlplane", Package: "./controlplane/cmd/mindrouter-controlplane",
		Ports:       []string{"9090", "9091"},
		Description: "MindRouter control plane: admission, scheduling, identity (gRPC 9090, REST admin 9091)"},
	{Name: "mindrouter-dataplane", Package: "./dataplane/cmd/mindrouter-dataplane",
		VersionVar: "github.com/mindrouter/mindrouter/dataplane/internal/app.Version", Ports: []string{"8000"},
		Description: "MindRouter data plane: OpenAI, Ollama and Anthropic APIs (HTTP 8000)"},
	// The engine simulator backs the compose demo (deploy/compose) when no
	// Ollama or vLLM is at hand; it says it is simulated in every answer.
	{Name: "mindrouter-enginesim", Package: "./dataplane/cmd/mindrouter-enginesim", Ports: []string{"11434"},
		Description: "MindRouter engine simulator: a simulated Ollama or vLLM API for demos and tests"},
	{Name: "mindrouter-nodeagent", Package: "./nodeagent/cmd/mindrouter-nodeagent", Cgo: true,
		Env:         []string{"NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=utility"},
		Description: "MindRouter node agent: GPU telemetry from NVML (mounted by the NVIDIA container toolkit) to the control plane"},
}

// User is the numeric user and group every image runs as.
const (
	UID     = 65532
	User    = "65532:65532"
	WorkDir = "/var/lib/mindrouter"
	BinDir  = "/usr/local/bin"
)

func main() {
	out := flag.String("out", "bin/images", "directory for the <name>.tar image tarballs")
	root := flag.String("root", "../..", "the repository root")
	version := flag.String("version", "dev", "version recorded in the binaries and the image labels")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	for _, im := range Images {
		path, err := Build(*root, *out, *version, im)
		if err != nil {
			fail(err)
		}
		fmt.Println(path)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "images:", err)
	os.Exit(1)
}

// Build compiles im's binary (static, CGO_ENABLED=0, unless im.Cgo) and
// writes its image tarball, tagged mindrouter/<name>:<version>, into out.
func Build(root, out, version string, im Image) (string, error) {
	tmp, err := os.MkdirTemp("", "mindrouter-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, im.Name)
	ldflags := "-s -w"
	if im.VersionVar != "" {
		ldflags += " -X " + im.VersionVar + "=" + version
	}
	args := []string{"build", "-trimpath", "-ldflags", ldflags}
	cgo := []string{"CGO_ENABLED=0"}
	if im.Cgo {
		// The pure Go resolver and user lookup: the image has no NSS
		// configuration, and libc is there for NVML's dlopen alone.
		args = append(args, "-tags", "netgo,osusergo")
		// go-nvml's headers use deprecated NVML declarations on purpose.
		cgo = []string{"CGO_ENABLED=1", "CGO_CFLAGS=-Wno-deprecated-declarations"}
	}
	cmd := exec.Command("go", append(args, "-o", bin, im.Package)...)
	cmd.Dir = root
	work, err := filepath.Abs(filepath.Join(root, "go.work"))
	if err != nil {
		return "", err
	}
	// The binaries build in the repository's workspace, whatever this
	// command's own module mode (it runs with GOWORK=off).
	cmd.Env = append(append(os.Environ(), cgo...), "GOOS=linux", "GOWORK="+work)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", im.Name, err, b)
	}
	img, err := Assemble(im, bin, version)
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag("mindrouter/" + im.Name + ":" + tagOf(version))
	if err != nil {
		return "", err
	}
	path := filepath.Join(out, im.Name+".tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

func tagOf(version string) string {
	if version == "" {
		return "dev"
	}
	return version
}

// Assemble makes the image of a built binary.
func Assemble(im Image, bin, version string) (v1.Image, error) {
	var libs []Lib
	if im.Cgo {
		var err error
		if libs, err = Libraries(bin); err != nil {
			return nil, fmt.Errorf("libraries of %s: %w", im.Name, err)
		}
	}
	layer, err := layerOf(im.Name, bin, libs)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{BinDir + "/" + im.Name}
	cf.Config.User = User
	cf.Config.WorkingDir = WorkDir
	cf.Config.Env = append([]string{"PATH=" + BinDir}, im.Env...)
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range im.Ports {
		cf.Config.ExposedPorts[p+"/tcp"] = struct{}{}
	}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       im.Name,
		"org.opencontainers.image.description": im.Description,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.source":      "https://github.com/mindrouter/mindrouter",
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	if len(libs) > 0 {
		cf.Config.Labels[LibrariesLabel] = describeLibs(libs)
	}
	return mutate.ConfigFile(img, cf)
}

// layerOf is the one layer: the binary, /etc/passwd and /etc/group naming the
// non-root user, and its working directory.
func layerOf(binName, bin string, libs []Lib) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	made := map[string]bool{}
	dir := func(p string, uid int, mode int64) error {
		made[p] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: epoch})
	}
	parents := func(p string) error { // the directories above p not yet written
		var todo []string
		for d := filepath.Dir(p); d != "." && !made[d]; d = filepath.Dir(d) {
			todo = append(todo, d)
		}
		for i := len(todo) - 1; i >= 0; i-- {
			if err := dir(todo[i], 0, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	file := func(p string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(body)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc", 0, 0o755) },
		func() error {
			return file("etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", UID, UID, WorkDir))
		},
		func() error { return file("etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", UID)) },
		func() error { return dir("usr", 0, 0o755) },
		func() error { return dir("usr/local", 0, 0o755) },
		func() error { return dir("usr/local/bin", 0, 0o755) },
		func() error { return file("usr/local/bin/"+binName, 0o755, data) },
		func() error { return dir("var", 0, 0o755) },
		func() error { return dir("var/lib", 0, 0o755) },
		func() error { return dir("var/lib/mindrouter", UID, 0o700) },
		func() error { return dir("tmp", 0, 0o1777) },
	}
	for _, l := range libs {
		img := strings.TrimPrefix(l.Path, "/")
		steps = append(steps, func() error {
			body, err := os.ReadFile(l.Host)
			if err != nil {
				return err
			}
			if err := parents(img); err != nil {
				return err
			}
			return file(img, 0o755, body)
		})
		if l.Link != "" {
			link := strings.TrimPrefix(l.Link, "/")
			steps = append(steps, func() error {
				if err := parents(link); err != nil {
					return err
				}
				target, err := filepath.Rel(filepath.Dir(l.Link), l.Path)
				if err != nil {
					return err
				}
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: link, Linkname: target, Mode: 0o777, ModTime: epoch})
			})
		}
	}
	steps = append(steps, tw.Close)
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("layer of %s: %w", binName, err)
		}
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
