package main

import (
	"fmt"
	"path"
	"strings"

	"dagger/mero-release/internal/dagger"
)

// inputDir is where functions place the files and directories they are given.
const inputDir = "/in"

// withFiles mounts files under /in/<group>/<index>.<ext> and returns the container and their paths.
func withFiles(ctr *dagger.Container, group, ext string, files []*dagger.File) (*dagger.Container, []string) {
	var paths []string
	for i, f := range files {
		p := path.Join(inputDir, group, fmt.Sprintf("%d.%s", i, ext))
		ctr = ctr.WithMountedFile(p, f)
		paths = append(paths, p)
	}
	return ctr, paths
}

// withFile mounts one optional file at /in/<name> and returns its path, or "" when f is nil.
func withFile(ctr *dagger.Container, name string, f *dagger.File) (*dagger.Container, string) {
	if f == nil {
		return ctr, ""
	}
	p := path.Join(inputDir, name)
	return ctr.WithMountedFile(p, f), p
}

// withDir mounts one optional directory at /in/<name> and returns its path, or "" when d is nil.
func withDir(ctr *dagger.Container, name string, d *dagger.Directory) (*dagger.Container, string) {
	if d == nil {
		return ctr, ""
	}
	p := path.Join(inputDir, name)
	return ctr.WithMountedDirectory(p, d), p
}

// flag returns ["--name", value] when value is set, else nothing.
func flag(name, value string) []string {
	if value == "" {
		return nil
	}
	return []string{"--" + name, value}
}

// repeated returns ["--name", v1, "--name", v2, …].
func repeated(name string, values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, "--"+name, v)
	}
	return out
}

// csv joins values with commas for list flags.
func csv(values []string) string { return strings.Join(values, ",") }
