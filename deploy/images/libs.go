package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// LibrariesLabel names the image label that records which build-host
// libraries a cgo image carries: the Debian release, then per library its
// soname, path in the image and Debian package and version.
const LibrariesLabel = "org.mindrouter.image.libraries"

// Lib is one shared object copied from the build host into an image.
type Lib struct {
	// Soname is the name binaries ask for (DT_NEEDED), or the program
	// interpreter's base name.
	Soname string
	// Path is where the file is in the image: the host file's directory,
	// symlinks resolved, and the soname, so a loader finds it in the same
	// system search path as on the host.
	Path string
	// Host is the file read from the build host.
	Host string
	// Link, when set, is a symlink in the image pointing (relative) at Path:
	// the program interpreter's fixed path, e.g. /lib64/ld-linux-x86-64.so.2.
	Link string
	// Package is the Debian package and version owning the file, when dpkg
	// knows it.
	Package string
}

// SearchDirs are the build host's system library directories in the
// loader's order (Debian multiarch).
func SearchDirs() []string {
	t := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	return []string{"/lib/" + t, "/usr/lib/" + t, "/lib", "/usr/lib"}
}

// Libraries is the closure of bin's shared libraries (DT_NEEDED, followed
// through each library's own) and its program interpreter (PT_INTERP), as
// found on this host. A library that is not on the host is an error: the
// image would not start. NVML is never among them: go-nvml opens it with
// dlopen at run time.
func Libraries(bin string) ([]Lib, error) {
	interp, needed, err := readELF(bin)
	if err != nil {
		return nil, err
	}
	if interp == "" {
		return nil, fmt.Errorf("%s has no program interpreter: build it with cgo", bin)
	}
	var libs []Lib
	at := map[string]int{} // image path -> index in libs
	add := func(soname, lookup string) (int, bool, error) {
		resolved, err := filepath.EvalSymlinks(lookup)
		if err != nil {
			return 0, false, err
		}
		path := filepath.Join(filepath.Dir(resolved), soname)
		if i, ok := at[path]; ok {
			return i, false, nil
		}
		at[path] = len(libs)
		libs = append(libs, Lib{Soname: soname, Path: path, Host: resolved, Package: debianPackage(lookup, resolved)})
		return len(libs) - 1, true, nil
	}
	i, _, err := add(filepath.Base(interp), interp)
	if err != nil {
		return nil, fmt.Errorf("program interpreter: %w", err)
	}
	if libs[i].Path != interp {
		libs[i].Link = interp
	}
	queue := needed
	for len(queue) > 0 {
		soname := queue[0]
		queue = queue[1:]
		lookup := find(soname)
		if lookup == "" {
			return nil, fmt.Errorf("%s (needed by %s) is not in %v", soname, bin, SearchDirs())
		}
		i, fresh, err := add(soname, lookup)
		if err != nil {
			return nil, err
		}
		if !fresh {
			continue
		}
		_, more, err := readELF(libs[i].Host)
		if err != nil {
			return nil, err
		}
		queue = append(queue, more...)
	}
	return libs, nil
}

func find(soname string) string {
	for _, d := range SearchDirs() {
		p := filepath.Join(d, soname)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// readELF returns f's program interpreter (empty for a shared library or a
// static binary) and the sonames it needs.
func readELF(path string) (string, []string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = f.Close() }()
	var interp string
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", nil, fmt.Errorf("%s: PT_INTERP: %w", path, err)
		}
		interp = strings.TrimRight(string(b), "\x00")
	}
	needed, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return "", nil, fmt.Errorf("%s: DT_NEEDED: %w", path, err)
	}
	return interp, needed, nil
}

// debianPackage is "package version" of the dpkg package owning one of the
// paths (dpkg records the unmerged /lib paths), or "" without dpkg.
func debianPackage(paths ...string) string {
	for _, p := range paths {
		out, err := exec.Command("dpkg-query", "-S", p).Output()
		if err != nil {
			continue
		}
		pkg, _, ok := strings.Cut(strings.TrimSpace(string(out)), ": ")
		if !ok || strings.Contains(pkg, ",") {
			continue
		}
		v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
		if err != nil {
			return pkg
		}
		return pkg + " " + strings.TrimSpace(string(v))
	}
	return ""
}

// describeLibs is the LibrariesLabel value, e.g. "debian 12.11;
// libc.so.6=/usr/lib/x86_64-linux-gnu/libc.so.6 (libc6:amd64 2.36-9+deb12u14)".
func describeLibs(libs []Lib) string {
	parts := []string{"debian unknown"}
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		parts[0] = "debian " + strings.TrimSpace(string(b))
	}
	for _, l := range libs {
		s := l.Soname + "=" + l.Path
		if l.Package != "" {
			s += " (" + l.Package + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
