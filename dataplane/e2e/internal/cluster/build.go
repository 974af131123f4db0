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
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "mindrouter-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(os.PathSeparator),
			"./controlplane/cmd/mindrouter-controlplane", "./dataplane/cmd/mindrouter-dataplane")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build binaries: %w\n%s", err, out)
		}
	})
	return buildDir, buildErr
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
