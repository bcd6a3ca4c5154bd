package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// sbomPrefix is how much of the SBOM is kept for the tag-binding check: its document name is
// one of the first keys of an SPDX JSON document.
const sbomPrefix = 1 << 20

// bindingCheckers are, per asset, how its content names the release it belongs to. A release
// whose assets were copied unchanged under another tag (a replay) fails here: key-signed bundles
// bind no tag, so the content must. Attestation policies name their kms_version and are checked
// with the policies.
func bindingCheckers() map[string]func(data []byte, tag release.Tag) error {
	return map[string]func([]byte, release.Tag) error{
		release.PublishedMRTDsFile: bindsPublished,
		release.KMSImageManifest:   bindsManifest,
		release.NodeImageManifest:  bindsManifest,
		release.SBOMFile:           bindsSBOM,
		// vulnerabilities.json names its family and version as published-mrtds.json does
		release.VulnerabilitiesFile: bindsPublished,
		release.NotesFile:           bindsNotes,
	}
}

// keepLimit says whether the content of an asset is kept from its checksum stream, and how much:
// the whole file (at most maxSmallFile) for policies and the binding assets, a prefix for the
// SBOM. prefix reports that a longer file is still kept, cut at limit.
func keepLimit(name string) (limit int, prefix bool) {
	switch {
	case name == release.SBOMFile:
		return sbomPrefix, true
	case isPolicyFile(name):
		return maxSmallFile, false
	}
	if _, ok := bindingCheckers()[name]; ok || name == release.ProvenanceFile {
		return maxSmallFile, false
	}
	return 0, false
}

// checkBinding checks that every present asset that names a release names this one.
func (a *auditor) checkBinding(present map[string]bool) {
	checkers := bindingCheckers()
	for _, name := range release.ExpectedAssets(a.tag.Family).Content {
		check, ok := checkers[name]
		if !ok || !present[name] {
			continue // completeness reported a missing one
		}
		a.mu.Lock()
		data, kept := a.kept[name]
		a.mu.Unlock()
		if !kept {
			a.fail(CheckBinding, name, outcome.General, "could not be read")
			continue
		}
		if err := check(data, a.tag); err != nil {
			a.fail(CheckBinding, name, outcome.VerificationFailed, "%v", err)
			continue
		}
		a.pass(CheckBinding, name, "names %s", a.tag)
	}
}

// versionMismatch is the error of a version field that names another release.
func versionMismatch(field, got string, tag release.Tag) error {
	return outcome.VerificationErrorf("%s: %q, but the release is %s (an asset of another release?)", field, got, tag)
}

// bindsPublished checks published-mrtds.json's family and version.
func bindsPublished(data []byte, tag release.Tag) error {
	var p struct {
		Family  *string `json:"family"`
		Version *string `json:"version"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return outcome.VerificationErrorf("not JSON: %v", err)
	}
	switch {
	case p.Family == nil || p.Version == nil:
		return outcome.VerificationErrorf("family and version must name the release %s", tag)
	case *p.Family != string(tag.Family):
		return versionMismatch("family", *p.Family, tag)
	case *p.Version != tag.Version.String():
		return versionMismatch("version", *p.Version, tag)
	}
	return nil
}

// bindsManifest checks an image manifest's version.
func bindsManifest(data []byte, tag release.Tag) error {
	var m struct {
		Version *string `json:"version"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return outcome.VerificationErrorf("not JSON: %v", err)
	}
	if m.Version == nil {
		return outcome.VerificationErrorf("version: missing; it must name the release %s", tag)
	}
	if *m.Version != tag.Version.String() {
		return versionMismatch("version", *m.Version, tag)
	}
	return nil
}

// bindsSBOM checks that the SPDX document name ends with the release's version
// ("mero-kms-1.2.0", as pipeline/sbom names it, or "…-v1.2.0"). Only the top-level "name" of
// the kept prefix is read.
func bindsSBOM(data []byte, tag release.Tag) error {
	name, err := spdxName(data)
	if err != nil {
		return outcome.VerificationErrorf("SPDX document name: %v", err)
	}
	v := tag.Version.String()
	if !strings.HasSuffix(name, "-"+v) && !strings.HasSuffix(name, "-v"+v) {
		return versionMismatch("SPDX document name", name, tag)
	}
	return nil
}

// spdxName reads the top-level "name" of a JSON document from a prefix of it.
func spdxName(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", errors.New("not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := t.(string)
		if key != "name" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				break
			}
			continue
		}
		var name string
		if err := dec.Decode(&name); err != nil {
			return "", fmt.Errorf("not a string: %v", err)
		}
		return name, nil
	}
	return "", fmt.Errorf("no top-level \"name\" in the first %d bytes", min(len(data), sbomPrefix))
}

// bindsNotes checks that the notes' title (the first "# " heading) names the tag, as
// "mero-kms-v1.2.0" or "mero-kms v1.2.0", not as a prefix of another version.
func bindsNotes(data []byte, tag release.Tag) error {
	sc := bufio.NewScanner(io.LimitReader(bytes.NewReader(data), maxSmallFile))
	sc.Buffer(make([]byte, 0, 4096), maxSmallFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "# ") {
			continue
		}
		names := []string{tag.String(), string(tag.Family) + " v" + tag.Version.String()}
		if slices.ContainsFunc(names, func(n string) bool { return containsToken(line, n) }) {
			return nil
		}
		return outcome.VerificationErrorf("title %q does not name %s (notes of another release?)", truncate(line), tag)
	}
	return outcome.VerificationErrorf("no title (\"# …\" line) naming %s", tag)
}

// containsToken reports whether s contains tok not adjacent to a character that would continue a
// tag or version (so "mero-kms-v1.2.0" is not found in "mero-kms-v1.2.0-rc.1" or "…v1.2.01").
func containsToken(s, tok string) bool {
	cont := func(c byte) bool {
		return c == '-' || c == '.' || c == '+' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; i+len(tok) <= len(s); {
		j := strings.Index(s[i:], tok)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(tok)
		before := start == 0 || !cont(s[start-1])
		// A trailing '.' ends a sentence; a '.' followed by more version text does not.
		after := end == len(s) || !cont(s[end]) || s[end] == '.' && (end+1 == len(s) || !cont(s[end+1]))
		if before && after {
			return true
		}
		i = start + 1
	}
	return false
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// checkProvenance verifies the provenance (provenance.intoto.sigstore.json): signed as a DSSE
// in-toto attestation by the expected signer, SLSA v1, naming this tag, and stating every present
// content asset with the SHA-256 the one read of that asset computed (nothing is hashed again).
// A missing provenance is reported by the completeness check (exit 11).
func (a *auditor) checkProvenance(ctx context.Context, expected release.Assets, present map[string]bool) {
	name := release.ProvenanceFile
	if !present[name] {
		return
	}
	a.mu.Lock()
	data, kept := a.kept[name]
	digests := map[string]string{}
	var unread []string
	for _, c := range expected.Content {
		if !present[c] {
			continue // completeness reported it
		}
		if d, ok := a.sha256s[c]; ok {
			digests[c] = d
		} else {
			unread = append(unread, c)
		}
	}
	a.mu.Unlock()
	if !kept {
		a.fail(CheckProvenance, name, outcome.General, "could not be read")
		return
	}
	att, err := provenance.Verify(ctx, a.verifier, data, a.policy)
	if err != nil {
		a.fail(CheckProvenance, name, outcome.Code(err), "%v", err)
		return
	}
	if err := att.CheckRelease(a.tag, digests); err != nil {
		a.fail(CheckProvenance, name, outcome.Code(err), "%v", err)
		return
	}
	if len(unread) > 0 {
		a.fail(CheckProvenance, name, outcome.General, "cannot check the provenance of %s: the asset could not be read", strings.Join(unread, ", "))
		return
	}
	who := att.Signer.Identity
	if who == "" {
		who = "key " + att.Signer.KeyHint
	}
	builder := "?"
	if p, err := att.Provenance(); err == nil {
		builder = p.GetRunDetails().GetBuilder().GetId()
	}
	a.pass(CheckProvenance, name, "SLSA provenance of %s signed by %s (builder %s) covers all %d content assets", a.tag, who, builder, len(digests))
}
