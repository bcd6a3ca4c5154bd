package vuln

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// DefaultAllowListFile is the allow-list at the repository root.
const DefaultAllowListFile = "vulnerability-allowlist.yaml"

// DefaultAdvisoriesFile is the repository's local advisory list (relative to its root), built
// into a database for the run when no grype database is given.
const DefaultAdvisoriesFile = "vulndb/advisories.json"

// AllowEntry is one accepted vulnerability: it does not block a release until it expires.
type AllowEntry struct {
	// ID is the vulnerability id (the DB's id or one of its aliases, e.g. a CVE).
	ID string `yaml:"id" json:"id"`
	// Package, when set, limits the entry to that package name.
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
	// Reason says why the finding is accepted (required).
	Reason string `yaml:"reason" json:"reason"`
	// Expires is the last day (YYYY-MM-DD, UTC) the entry applies (required).
	Expires string `yaml:"expires" json:"expires"`
	expires time.Time
}

// AllowList is the allow-list file: vulnerability-allowlist.yaml.
type AllowList struct {
	// Entries are the accepted vulnerabilities.
	Entries []AllowEntry `yaml:"entries"`
}

// LoadAllowList reads an allow-list file. A missing file is an empty list when optional (the
// default path); an entry without a reason or a valid expiry date is a usage error (exit 2).
func LoadAllowList(path string, optional bool) (*AllowList, error) {
	if path == "" {
		return &AllowList{}, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && optional {
		return &AllowList{}, nil
	}
	if err != nil {
		return nil, outcome.UsageErrorf("vulnerability allow-list: %v", err)
	}
	return ParseAllowList(data, path)
}

// ParseAllowList parses allow-list YAML (name labels errors).
func ParseAllowList(data []byte, name string) (*AllowList, error) {
	var al AllowList
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&al); err != nil && !errors.Is(err, io.EOF) {
		return nil, outcome.UsageErrorf("vulnerability allow-list %s: %v", name, err)
	}
	for i := range al.Entries {
		e := &al.Entries[i]
		label := fmt.Sprintf("vulnerability allow-list %s: entry %d", name, i+1)
		if e.ID != "" {
			label += " (" + e.ID + ")"
		}
		switch {
		case strings.TrimSpace(e.ID) == "":
			return nil, outcome.UsageErrorf("%s: no id", label)
		case strings.TrimSpace(e.Reason) == "":
			return nil, outcome.UsageErrorf("%s: no reason: say why the finding is accepted", label)
		case strings.TrimSpace(e.Expires) == "":
			return nil, outcome.UsageErrorf("%s: no expiry date (expires: YYYY-MM-DD)", label)
		}
		t, err := time.Parse(time.DateOnly, e.Expires)
		if err != nil {
			return nil, outcome.UsageErrorf("%s: expires %q is not a date YYYY-MM-DD", label, e.Expires)
		}
		e.expires = t
	}
	return &al, nil
}

// Expired reports whether the entry no longer applies at now (it applies through its expiry day).
func (e AllowEntry) Expired(now time.Time) bool {
	return !now.UTC().Before(e.expires.AddDate(0, 0, 1))
}

// covers reports whether the entry names one of ids (case-insensitive) and, when it names a
// package, that package.
func (e AllowEntry) covers(ids []string, pkg string) bool {
	if e.Package != "" && e.Package != pkg {
		return false
	}
	for _, id := range ids {
		if strings.EqualFold(e.ID, id) {
			return true
		}
	}
	return false
}
