// Command images builds the OCI image tarballs of MindRouter's static
// binaries without a container engine: each image is a single layer on an
// empty base (no shell, no package manager) holding the binary, a passwd
// entry for the non-root user it runs as, and a writable working directory.
// The layout matches deploy/images/Dockerfile.
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
}

// Images are the images `make images` builds. The node agent is not among
// them: it loads the host's NVML library with dlopen and so needs cgo and a
// C library, which a static, empty-based image cannot give it.
var Images = []Image{
	{Name: "mindrouter-controlplane", Package: "./controlplane/cmd/mindrouter-controlplane",
		Ports:       []string{"9090", "9091"},
		Description: "MindRouter control plane: admission, scheduling, identity (gRPC 9090, REST admin 9091)"},
	{Name: "mindrouter-dataplane", Package: "./dataplane/cmd/mindrouter-dataplane",
		VersionVar: "github.com/mindrouter/mindrouter/dataplane/internal/app.Version", Ports: []string{"8000"},
		Description: "MindRouter data plane: OpenAI, Ollama and Anthropic APIs (HTTP 8000)"},
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

// Build compiles im's binary (static, CGO_ENABLED=0) and writes its image
// tarball, tagged mindrouter/<name>:<version>, into out.
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
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, im.Package)
	cmd.Dir = root
	work, err := filepath.Abs(filepath.Join(root, "go.work"))
	if err != nil {
		return "", err
	}
	// The binaries build in the repository's workspace, whatever this
	// command's own module mode (it runs with GOWORK=off).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK="+work)
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
	layer, err := layerOf(im.Name, bin)
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
	cf.Config.Env = []string{"PATH=" + BinDir}
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
	return mutate.ConfigFile(img, cf)
}

// layerOf is the one layer: the binary, /etc/passwd and /etc/group naming the
// non-root user, and its working directory.
func layerOf(binName, bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dir := func(p string, uid int, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: epoch})
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
		tw.Close,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("layer of %s: %w", binName, err)
		}
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
