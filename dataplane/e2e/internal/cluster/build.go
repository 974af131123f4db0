package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds mindrouter-controlplane and mindrouter-dataplane once per test
// process and returns the directory holding them. Call Cleanup from TestMain.
func Binaries() (string, error) {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "mindrouter-e2e-bin-")
		if buildErr != nil {
			return
		}
		buildErr = goBuild("binaries", buildDir+string(os.PathSeparator),
			"./controlplane/cmd/mindrouter-controlplane", "./dataplane/cmd/mindrouter-dataplane")
	})
	return buildDir, buildErr
}

// goBuild builds pkgs (paths from the repository root) to out, a file or a
// directory ending in a separator; what names them in the error.
func goBuild(what, out string, pkgs ...string) error { return goBuildTags(what, out, "", pkgs...) }

// goBuildTags is goBuild with build tags (comma-separated; empty for none).
func goBuildTags(what, out, tags string, pkgs ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", what, err, b)
	}
	return nil
}

// Cleanup removes the built binaries.
func Cleanup() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// RepoRoot finds the directory holding go.work, walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.work not found above the working directory")
		}
		dir = parent
	}
}
