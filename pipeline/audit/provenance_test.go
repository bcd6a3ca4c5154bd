package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

// sealWithProvenance builds a release whose provenance is made by makeProv from the content
// (then checksummed and signed like the rest, so only the provenance can be wrong) and publishes it.
func sealWithProvenance(t *testing.T, o audittest.Options, makeProv func(content map[string][]byte) []byte) *dir.Store {
	t.Helper()
	ctx := context.Background()
	files, err := audittest.Content(o)
	if err != nil {
		t.Fatal(err)
	}
	files[release.ProvenanceFile] = makeProv(files)
	if files, err = audittest.Seal(ctx, o, files); err != nil {
		t.Fatal(err)
	}
	st := newDir(t)
	if err := audittest.Publish(ctx, st, o.Tag, files); err != nil {
		t.Fatal(err)
	}
	return st
}

func subjectsOf(content map[string][]byte, except string) []provenance.Subject {
	var out []provenance.Subject
	for _, name := range slices.Sorted(maps.Keys(content)) {
		if name == except {
			continue
		}
		h := sha256.Sum256(content[name])
		out = append(out, provenance.Subject{Name: name, SHA256: hex.EncodeToString(h[:])})
	}
	return out
}

// provenanceFailure asserts the audit failed with code and a provenance finding containing want.
func provenanceFailure(t *testing.T, rep *audit.Report, err error, code int, check audit.Check, want string) {
	t.Helper()
	if outcome.Code(err) != code {
		t.Fatalf("exit %d, want %d: %v", outcome.Code(err), code, err)
	}
	for _, f := range rep.Failures() {
		if f.Check == check && strings.Contains(f.Message, want) {
			return
		}
	}
	t.Fatalf("no %s failure mentioning %q: %+v", check, want, rep.Failures())
}

// TestAuditProvenanceDSSE: a release's provenance is checked — missing (11), tampered, not
// covering an asset, naming another tag, another signer (10) — and a good one passes.
func TestAuditProvenanceDSSE(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	tag := release.MustParseTag("mero-kms-v1.2.0")
	o := audittest.Options{Tag: tag, Signer: k.signer}
	cfg := audit.Config{PublicKey: k.pub}

	t.Run("missing", func(t *testing.T) {
		st := newDir(t)
		publishRelease(t, st, o, nil, release.ProvenanceFile)
		rep, err, _ := run(t, st, tag, cfg)
		provenanceFailure(t, rep, err, outcome.MissingAsset, audit.CheckAssets, "missing")
	})
	t.Run("tampered", func(t *testing.T) {
		st := sealWithProvenance(t, o, func(content map[string][]byte) []byte {
			b, err := provenance.Make(ctx, k.signer, provenance.Input{Tag: tag, Subjects: subjectsOf(content, "")})
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			env := m["dsseEnvelope"].(map[string]any)
			payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
			env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"local"`, `"https://evil.example/builder"`, 1)))
			out, _ := json.Marshal(m)
			return out
		})
		rep, err, _ := run(t, st, tag, cfg)
		provenanceFailure(t, rep, err, outcome.VerificationFailed, audit.CheckProvenance, "signature")
	})
	t.Run("not covering an asset", func(t *testing.T) {
		st := sealWithProvenance(t, o, func(content map[string][]byte) []byte {
			b, err := provenance.Make(ctx, k.signer, provenance.Input{Tag: tag, Subjects: subjectsOf(content, release.SBOMFile)})
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
		rep, err, _ := run(t, st, tag, cfg)
		provenanceFailure(t, rep, err, outcome.VerificationFailed, audit.CheckProvenance, "sbom.spdx.json is not a subject")
		if len(rep.Failures()) != 1 {
			t.Fatalf("only the provenance is wrong: %+v", rep.Failures())
		}
	})
	t.Run("another tag", func(t *testing.T) {
		st := sealWithProvenance(t, o, func(content map[string][]byte) []byte {
			b, err := provenance.Make(ctx, k.signer, provenance.Input{Tag: release.MustParseTag("mero-kms-v1.1.0"), Subjects: subjectsOf(content, "")})
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
		rep, err, _ := run(t, st, tag, cfg)
		provenanceFailure(t, rep, err, outcome.VerificationFailed, audit.CheckProvenance, "another release")
	})
	t.Run("another signer", func(t *testing.T) {
		other := newKey(t)
		oo := o
		oo.SignerFor = func(name string) sign.Signer {
			if name == release.ProvenanceFile {
				return other.signer
			}
			return nil
		}
		st := newDir(t)
		publishRelease(t, st, oo, nil)
		rep, err, _ := run(t, st, tag, cfg)
		provenanceFailure(t, rep, err, outcome.VerificationFailed, audit.CheckProvenance, "public key")
	})
}
