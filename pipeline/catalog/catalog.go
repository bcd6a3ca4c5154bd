// Package catalog reads, checks, updates and writes the compatibility catalog
// (compatibility-catalog.json, SPEC §5): which KMS versions work with which node-image versions,
// per profile. Reading is strict and every problem names the entry and the field; writing is
// deterministic so that a catalog update is a minimal diff.
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/atomicfile"
	"github.com/calimero-network/mero-release/pipeline/internal/jsonsyntax"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// SchemaVersion is the only schema version of the catalog this package reads and writes.
const SchemaVersion = "1"

// DefaultFile is the catalog's file name at the repository root (COMPATIBILITY_CATALOG_PATH
// overrides it in CI).
const DefaultFile = "compatibility-catalog.json"

// maxFileSize bounds what Load reads: a catalog is a few kilobytes.
const maxFileSize = 16 << 20

// Catalog is the content of compatibility-catalog.json.
type Catalog struct {
	SchemaVersion string  `json:"schema_version"`
	Entries       []Entry `json:"entries"`
}

// Entry says that a KMS version and a node-image version work together for some profiles.
type Entry struct {
	// KMS is the mero-kms version (X.Y.Z or X.Y.Z-rc.N, no "v").
	KMS string `json:"kms"`
	// NodeImage is the mero-tee node-image version.
	NodeImage string `json:"node_image"`
	// Profiles are the profiles the pair is compatible under, never empty.
	Profiles []release.Profile `json:"profiles"`
	// Tested records that the pair passed the KMS–node E2E suite.
	Tested bool `json:"tested"`
	// Notes is a free-text remark for operators.
	Notes string `json:"notes,omitempty"`
}

// New returns an empty catalog of the current schema version.
func New() *Catalog { return &Catalog{SchemaVersion: SchemaVersion, Entries: []Entry{}} }

// rawCatalog and rawEntry decode with pointers so that a missing or null field is told apart
// from a zero value.
type rawCatalog struct {
	SchemaVersion *string            `json:"schema_version"`
	Entries       *[]json.RawMessage `json:"entries"`
}

type rawEntry struct {
	KMS       *string   `json:"kms"`
	NodeImage *string   `json:"node_image"`
	Profiles  *[]string `json:"profiles"`
	Tested    *bool     `json:"tested"`
	Notes     *string   `json:"notes"`
}

// Load reads a catalog strictly: the JSON must be well formed (errors give the line and column),
// without duplicate keys, unknown fields or trailing data; schema_version must be "1"; every
// entry needs kms, node_image (valid versions), a non-empty list of known, distinct profiles and
// an explicit tested flag; no pair may appear twice. Every failure is a verification error
// (exit 10) naming the entry (index and pair) and the field.
func Load(r io.Reader) (*Catalog, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read compatibility catalog: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, outcome.VerificationErrorf("compatibility catalog: larger than %d bytes", maxFileSize)
	}
	if err := jsonsyntax.Check(data); err != nil {
		return nil, outcome.VerificationErrorf("compatibility catalog: %v", err)
	}
	var raw rawCatalog
	if err := strictDecode(data, &raw); err != nil {
		return nil, outcome.VerificationErrorf("compatibility catalog: %v", err)
	}
	if raw.SchemaVersion == nil {
		return nil, outcome.VerificationErrorf("compatibility catalog: schema_version: missing (want %q)", SchemaVersion)
	}
	if *raw.SchemaVersion != SchemaVersion {
		return nil, outcome.VerificationErrorf("compatibility catalog: schema_version: %q is not supported (want %q)", *raw.SchemaVersion, SchemaVersion)
	}
	if raw.Entries == nil {
		return nil, outcome.VerificationErrorf("compatibility catalog: entries: missing (want a list, possibly empty)")
	}
	c := &Catalog{SchemaVersion: *raw.SchemaVersion, Entries: make([]Entry, 0, len(*raw.Entries))}
	for i, msg := range *raw.Entries {
		e, err := decodeEntry(i, msg)
		if err != nil {
			return nil, outcome.VerificationErrorf("compatibility catalog: %w", err)
		}
		c.Entries = append(c.Entries, e)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadFile is Load on a file; the error names the file. A file that cannot be read is a
// general error (exit 1), a bad one a verification error (exit 10).
func LoadFile(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load compatibility catalog: %w", err)
	}
	defer f.Close()
	c, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// strictDecode decodes data into v refusing unknown fields, and words type errors by field.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: must be %s, got %s", te.Field, jsonTypeName(te.Type.Kind().String()), te.Value)
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("unknown field %s", name)
		}
		return err
	}
	return nil
}

// jsonTypeName words a Go kind the way a JSON author thinks of it.
func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value of the right type"
	}
	return "a " + kind
}

// decodeEntry decodes entry i strictly; errors name the entry and the field.
func decodeEntry(i int, msg json.RawMessage) (Entry, error) {
	var loose struct {
		KMS       any `json:"kms"`
		NodeImage any `json:"node_image"`
	}
	_ = json.Unmarshal(msg, &loose) // only to name the entry in errors
	name := fmt.Sprintf("entries[%d]", i)
	if k, ok := loose.KMS.(string); ok {
		if n, ok := loose.NodeImage.(string); ok {
			name = entryName(i, k, n)
		}
	}
	if bytes.Equal(bytes.TrimSpace(msg), []byte("null")) {
		return Entry{}, fmt.Errorf("%s: must be an object, got null", name)
	}
	var raw rawEntry
	if err := strictDecode(msg, &raw); err != nil {
		return Entry{}, fmt.Errorf("%s: %w", name, err)
	}
	missing := func(field string) error { return fmt.Errorf("%s: %s: missing", name, field) }
	switch {
	case raw.KMS == nil:
		return Entry{}, missing("kms")
	case raw.NodeImage == nil:
		return Entry{}, missing("node_image")
	case raw.Profiles == nil:
		return Entry{}, missing("profiles")
	case raw.Tested == nil:
		return Entry{}, fmt.Errorf("%s: tested: missing (must be true or false)", name)
	}
	e := Entry{KMS: *raw.KMS, NodeImage: *raw.NodeImage, Tested: *raw.Tested, Profiles: []release.Profile{}}
	for _, p := range *raw.Profiles {
		e.Profiles = append(e.Profiles, release.Profile(p))
	}
	if raw.Notes != nil {
		e.Notes = *raw.Notes
	}
	return e, nil
}

// entryName names an entry in errors: its index and its pair.
func entryName(i int, kms, node string) string {
	return fmt.Sprintf("entries[%d] (kms %q, node_image %q)", i, kms, node)
}

// Validate checks the catalog's rules: schema version, valid versions, non-empty lists of
// known and distinct profiles, no duplicate pair. Errors are verification errors naming the
// entry and the field.
func (c *Catalog) Validate() error {
	if c.SchemaVersion != SchemaVersion {
		return outcome.VerificationErrorf("compatibility catalog: schema_version: %q is not supported (want %q)", c.SchemaVersion, SchemaVersion)
	}
	seen := map[[2]string]int{}
	for i, e := range c.Entries {
		name := entryName(i, e.KMS, e.NodeImage)
		if err := e.validate(); err != nil {
			return outcome.VerificationErrorf("compatibility catalog: %s: %w", name, err)
		}
		if j, dup := seen[e.pair()]; dup {
			return outcome.VerificationErrorf("compatibility catalog: %s: duplicate pair: entries[%d] already lists kms %s with node_image %s (merge their profiles into one entry)", name, j, e.KMS, e.NodeImage)
		}
		seen[e.pair()] = i
	}
	return nil
}

// validate checks one entry; the error names the field.
func (e Entry) validate() error {
	if _, err := release.ParseVersion(e.KMS); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	if _, err := release.ParseVersion(e.NodeImage); err != nil {
		return fmt.Errorf("node_image: %w", err)
	}
	if len(e.Profiles) == 0 {
		return errors.New("profiles: empty (list at least one of " + strings.Join(release.ProfileNames(), ", ") + ")")
	}
	for j, p := range e.Profiles {
		if _, err := release.ParseProfile(string(p)); err != nil {
			return fmt.Errorf("profiles[%d]: unknown profile %q (must be one of %s)", j, p, strings.Join(release.ProfileNames(), ", "))
		}
		if slices.Contains(e.Profiles[:j], p) {
			return fmt.Errorf("profiles[%d]: duplicate profile %q", j, p)
		}
	}
	return nil
}

func (e Entry) pair() [2]string { return [2]string{e.KMS, e.NodeImage} }

// canonical returns a copy of e with its profiles in release.Profiles() order.
func (e Entry) canonical() Entry {
	out := e
	out.Profiles = []release.Profile{}
	for _, p := range release.Profiles() {
		if slices.Contains(e.Profiles, p) {
			out.Profiles = append(out.Profiles, p)
		}
	}
	// Unknown profiles never reach here (validate refuses them); keep them anyway, last, so
	// that nothing is lost silently.
	for _, p := range e.Profiles {
		if !slices.Contains(out.Profiles, p) {
			out.Profiles = append(out.Profiles, p)
		}
	}
	return out
}

// equal reports whether two entries say the same thing (profile order aside).
func (e Entry) equal(o Entry) bool {
	a, b := e.canonical(), o.canonical()
	return a.KMS == b.KMS && a.NodeImage == b.NodeImage && a.Tested == b.Tested && a.Notes == b.Notes &&
		slices.Equal(a.Profiles, b.Profiles)
}

// sortKey is an entry with its versions parsed once for sorting.
type sortKey struct {
	e         Entry
	kms, node release.Version
	kmsErr    error
	nodeErr   error
}

// compareVersions orders parsed versions; unparsable ones (refused by Validate) sort after
// every valid one, by their text.
func compareVersions(a, b release.Version, errA, errB error, textA, textB string) int {
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(textA, textB)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return a.Compare(b)
}

// sorted returns the entries in canonical order — newest first: by KMS version, then
// node-image version, descending in semantic-versioning order — with canonical profile lists.
func sorted(entries []Entry) []Entry {
	keys := make([]sortKey, 0, len(entries))
	for _, e := range entries {
		k := sortKey{e: e.canonical()}
		k.kms, k.kmsErr = release.ParseVersion(e.KMS)
		k.node, k.nodeErr = release.ParseVersion(e.NodeImage)
		keys = append(keys, k)
	}
	slices.SortStableFunc(keys, func(a, b sortKey) int {
		if c := compareVersions(b.kms, a.kms, b.kmsErr, a.kmsErr, b.e.KMS, a.e.KMS); c != 0 {
			return c
		}
		return compareVersions(b.node, a.node, b.nodeErr, a.nodeErr, b.e.NodeImage, a.e.NodeImage)
	})
	out := make([]Entry, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.e)
	}
	return out
}

// Add records tested pairs. A new pair is added; an existing pair gets the union of its
// profiles and the new entry's, the new notes when they are not empty, and tested = true.
// Only tested entries can be added. The catalog is unchanged when the result would be invalid.
// changed reports whether the catalog's content changed.
func (c *Catalog) Add(entries ...Entry) (changed bool, err error) {
	next := &Catalog{SchemaVersion: c.SchemaVersion, Entries: slices.Clone(c.Entries)}
	for _, e := range entries {
		name := fmt.Sprintf("new entry (kms %q, node_image %q)", e.KMS, e.NodeImage)
		if !e.Tested {
			return false, outcome.VerificationErrorf("compatibility catalog: %s: tested: false (only pairs that passed E2E are added)", name)
		}
		if err := e.validate(); err != nil {
			return false, outcome.VerificationErrorf("compatibility catalog: %s: %w", name, err)
		}
		i := slices.IndexFunc(next.Entries, func(x Entry) bool { return x.pair() == e.pair() })
		if i < 0 {
			next.Entries = append(next.Entries, e.canonical())
			continue
		}
		merged := next.Entries[i]
		merged.Profiles = append(slices.Clone(merged.Profiles), e.Profiles...)
		merged.Profiles = slices.Compact(slices.Sorted(slices.Values(merged.Profiles)))
		merged.Tested = true
		if e.Notes != "" {
			merged.Notes = e.Notes
		}
		next.Entries[i] = merged.canonical()
	}
	next.Entries = sorted(next.Entries)
	if err := next.Validate(); err != nil {
		return false, err
	}
	changed = len(Diff(c, next)) > 0 || len(Diff(next, c)) > 0
	c.Entries = next.Entries
	return changed, nil
}

// Pair returns the entry of a KMS / node-image pair.
func (c *Catalog) Pair(kms, node string) (Entry, bool) {
	for _, e := range c.Entries {
		if e.KMS == kms && e.NodeImage == node {
			return e.canonical(), true
		}
	}
	return Entry{}, false
}

// Lists reports whether the catalog lists the pair as tested and compatible under profile —
// what the KMS ↔ node dependency guard and operators (SPEC §10) ask.
func (c *Catalog) Lists(kms, node string, profile release.Profile) bool {
	e, ok := c.Pair(kms, node)
	return ok && e.Tested && slices.Contains(e.Profiles, profile)
}

// Compatible returns the counterparts of a version: the entries whose family-f side equals
// version (f = release.KMS matches the kms field, release.Node the node_image field), newest
// first. Untested entries are included; check Entry.Tested.
func (c *Catalog) Compatible(f release.Family, version string) []Entry {
	var out []Entry
	for _, e := range c.Entries {
		side := e.NodeImage
		if f == release.KMS {
			side = e.KMS
		}
		if side == version {
			out = append(out, e)
		}
	}
	return sorted(out)
}

// CounterpartVersions returns the versions of the other family that tested entries pair version
// (of family f) with, once each, newest first: what release notes list as compatible.
func (c *Catalog) CounterpartVersions(f release.Family, version string) []string {
	var out []string
	for _, e := range c.Compatible(f, version) {
		v := e.KMS
		if f == release.KMS {
			v = e.NodeImage
		}
		if e.Tested && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Marshal encodes the catalog deterministically: entries newest first (KMS version, then
// node-image version, semantic-versioning order), profiles in release.Profiles() order,
// two-space indent, no HTML escaping, a trailing newline. An invalid catalog is refused.
func (c *Catalog) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	out := Catalog{SchemaVersion: c.SchemaVersion, Entries: sorted(c.Entries)}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode compatibility catalog: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile writes the canonical encoding to path atomically: a temporary file in the same
// directory, synced, then renamed over path, so a reader never sees a partial catalog.
func (c *Catalog) WriteFile(path string) error {
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data)
}

// Diff returns the entries of after that are new or changed relative to before (a nil before
// is empty), in canonical order: what a catalog PR adds, and what its release notes must mention.
func Diff(before, after *Catalog) []Entry {
	if after == nil {
		return nil
	}
	old := map[[2]string]Entry{}
	if before != nil {
		for _, e := range before.Entries {
			old[e.pair()] = e
		}
	}
	var out []Entry
	for _, e := range after.Entries {
		if o, ok := old[e.pair()]; !ok || !o.equal(e) {
			out = append(out, e)
		}
	}
	return sorted(out)
}

// String names the pair, e.g. "kms 1.2.0 ↔ node image 1.1.0".
func (e Entry) String() string { return fmt.Sprintf("kms %s ↔ node image %s", e.KMS, e.NodeImage) }
