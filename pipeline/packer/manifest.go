// Package packer builds the mero-tee node image with Packer on the pinned GCP TDX base image
// (one image per profile, examples/node-image/packer) and reads what Packer's manifest
// post-processor records: the image of each profile and the base image it descends from.
package packer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// maxManifest bounds the size of a Packer manifest read into memory.
const maxManifest = 16 << 20

// ManifestFile is the shape of the file Packer's manifest post-processor writes.
type ManifestFile struct {
	Builds []Build `json:"builds"`
	// LastRunUUID names the newest run; Packer appends the builds of every run to the file.
	LastRunUUID string `json:"last_run_uuid"`
}

// Build is one build of a Packer manifest.
type Build struct {
	// Name is the build's source name (e.g. "debug"); BuilderType e.g. "googlecompute".
	Name        string `json:"name"`
	BuilderType string `json:"builder_type"`
	BuildTime   int64  `json:"build_time"`
	// ArtifactID is what the build produced: for googlecompute, the image name.
	ArtifactID    string `json:"artifact_id"`
	PackerRunUUID string `json:"packer_run_uuid"`
	// CustomData is the template's custom_data; "profile", "source_image",
	// "source_image_family" and "source_image_project" are recognised.
	CustomData map[string]string `json:"custom_data"`
	Files      []struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"files"`
}

// ReadManifest parses a Packer manifest and returns the builds of its last run (every
// build when no build carries the last run's id). Malformed JSON (with its line), no builds, or a
// build without name, builder_type or artifact_id is a usage error naming the field.
func ReadManifest(r io.Reader, name string) ([]Build, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("packer manifest %s: %w", name, err)
	}
	if len(data) > maxManifest {
		return nil, outcome.UsageErrorf("packer manifest %s: larger than %d bytes", name, maxManifest)
	}
	var m ManifestFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, outcome.UsageErrorf("packer manifest %s: %s", name, jsonError(data, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, outcome.UsageErrorf("packer manifest %s: trailing data after the object", name)
	}
	if len(m.Builds) == 0 {
		return nil, outcome.UsageErrorf("packer manifest %s: builds: empty (was the manifest post-processor run?)", name)
	}
	builds := m.Builds
	if m.LastRunUUID != "" {
		var last []Build
		for _, b := range m.Builds {
			if b.PackerRunUUID == m.LastRunUUID {
				last = append(last, b)
			}
		}
		if len(last) > 0 {
			builds = last
		}
	}
	for i, b := range m.Builds {
		for _, f := range [][2]string{{"name", b.Name}, {"builder_type", b.BuilderType}, {"artifact_id", b.ArtifactID}} {
			if strings.TrimSpace(f[1]) == "" {
				return nil, outcome.UsageErrorf("packer manifest %s: builds[%d].%s: empty", name, i, f[0])
			}
		}
	}
	return builds, nil
}

// jsonError describes a decoding error with the line it happened on.
func jsonError(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("line %d: %v", 1+bytes.Count(data[:min(int(syn.Offset), len(data))], []byte("\n")), err)
	case errors.As(err, &typ):
		return fmt.Sprintf("line %d: %s: %v", 1+bytes.Count(data[:min(int(typ.Offset), len(data))], []byte("\n")), typ.Field, err)
	case errors.Is(err, io.EOF):
		return "empty file"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return err.Error()
}
