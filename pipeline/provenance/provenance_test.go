package provenance_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func input(t *testing.T) provenance.Input {
	t.Helper()
	tag, err := release.ParseTag("mero-kms-v1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	return provenance.Input{
		Tag: tag,
		Build: provenance.Build{
			BuilderID:  "https://github.com/calimero-network/mero-tee/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.2.0",
			Repository: "https://github.com/calimero-network/mero-tee", Commit: strings.Repeat("ab", 20),
			InvocationID: "https://github.com/calimero-network/mero-tee/actions/runs/1/attempts/1",
		},
		Subjects:     []provenance.Subject{{Name: "sbom.spdx.json", SHA256: sum("sbom")}, {Name: "release-notes.md", SHA256: sum("notes")}},
		Dependencies: []provenance.Dependency{{Name: "dstack-os-image", URI: "https://example.com/dstack-0.5.tar.gz", Digest: map[string]string{"sha256": sum("os")}}},
	}
}

// TestDSSEProvenanceStatement checks the Statement's shape: in-toto v1, SLSA v1 predicate,
// builder, source commit, tag and dependencies, as cosign and slsa-verifier read them.
func TestDSSEProvenanceStatement(t *testing.T) {
	st, err := provenance.Statement(input(t))
	if err != nil {
		t.Fatal(err)
	}
	js, err := provenance.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate struct {
			BuildDefinition struct {
				BuildType            string            `json:"buildType"`
				ExternalParameters   map[string]string `json:"externalParameters"`
				ResolvedDependencies []struct {
					Name   string            `json:"name"`
					URI    string            `json:"uri"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
				Metadata struct {
					InvocationID string `json:"invocationId"`
				} `json:"metadata"`
			} `json:"runDetails"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	bd := m.Predicate.BuildDefinition
	switch {
	case m.Type != "https://in-toto.io/Statement/v1", m.PredicateType != "https://slsa.dev/provenance/v1":
		t.Fatalf("types: %s", js)
	case len(m.Subject) != 2 || m.Subject[0].Digest["sha256"] != sum("sbom"):
		t.Fatalf("subjects: %s", js)
	case bd.ExternalParameters["tag"] != "mero-kms-v1.2.0" || bd.ExternalParameters["repository"] != "https://github.com/calimero-network/mero-tee":
		t.Fatalf("external parameters: %s", js)
	case len(bd.ResolvedDependencies) != 2 || bd.ResolvedDependencies[0].Digest["gitCommit"] != strings.Repeat("ab", 20) ||
		bd.ResolvedDependencies[0].URI != "git+https://github.com/calimero-network/mero-tee@refs/tags/mero-kms-v1.2.0":
		t.Fatalf("dependencies: %s", js)
	case !strings.HasPrefix(m.Predicate.RunDetails.Builder.ID, "https://github.com/calimero-network/mero-tee/.github/workflows/"):
		t.Fatalf("builder: %s", js)
	case m.Predicate.RunDetails.Metadata.InvocationID == "":
		t.Fatalf("metadata: %s", js)
	}
	in := input(t)
	in.Build.BuilderID = ""
	st, err = provenance.Statement(in)
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := provenance.Marshal(st); !strings.Contains(string(js), `"id":"local"`) {
		t.Fatalf("a run without a builder id is local: %s", js)
	}
	in.Subjects = append(in.Subjects, provenance.Subject{Name: "x", SHA256: "nothex"})
	if _, err := provenance.Statement(in); outcome.Code(err) != outcome.Usage {
		t.Fatalf("bad subject digest: %v", err)
	}
	in.Subjects = nil
	if _, err := provenance.Statement(in); outcome.Code(err) != outcome.Usage {
		t.Fatalf("no subjects: %v", err)
	}
}

// TestDSSEProvenanceKeylessAndKey makes the provenance with the in-process Sigstore keyless and
// with a key, verifies it and checks the release and files against it.
func TestDSSEProvenanceKeylessAndKey(t *testing.T) {
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	tr, err := ss.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	claims := signtest.GitHubClaims{Repository: "calimero-network/mero-tee", Workflow: ".github/workflows/release-kms-phala.yaml", Ref: "refs/tags/mero-kms-v1.2.0"}
	tok, err := ss.GitHubToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	keyless, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: sign.StaticToken(tok), TrustedRoot: tr})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keySigner, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := sign.Policy{Identity: &sign.Identity{SAN: claims.WorkflowIdentity(), Issuer: signtest.GitHubIssuer}}
	for _, tc := range []struct {
		name   string
		signer sign.Signer
		policy sign.Policy
	}{{"keyless", keyless, id}, {"key", keySigner, sign.Policy{PublicKey: priv.Public()}}} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(t)
			bj, err := provenance.Make(ctx, tc.signer, in)
			if err != nil {
				t.Fatal(err)
			}
			att, err := provenance.Verify(ctx, sign.NewVerifier(tr), bj, tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			content := map[string]string{"sbom.spdx.json": sum("sbom"), "release-notes.md": sum("notes")}
			if err := att.CheckRelease(in.Tag, content); err != nil {
				t.Fatal(err)
			}
			if err := att.CheckFile("out/sbom.spdx.json", sum("sbom")); err != nil {
				t.Fatal(err)
			}
			// a digest mismatch names the file; an unknown file is not a subject
			if err := att.CheckFile("out/sbom.spdx.json", sum("other")); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "digest mismatch") {
				t.Fatalf("mismatch: %v", err)
			}
			if err := att.CheckFile("evil.bin", sum("evil")); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "evil.bin") {
				t.Fatalf("not a subject: %v", err)
			}
			other, _ := release.ParseTag("mero-kms-v1.3.0")
			if err := att.CheckRelease(other, content); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "another release") {
				t.Fatalf("another tag: %v", err)
			}
			content["policy.json"] = sum("policy")
			content["sbom.spdx.json"] = sum("x")
			err = att.CheckRelease(in.Tag, content)
			if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "policy.json is not a subject") || !strings.Contains(err.Error(), "the provenance states sha256") {
				t.Fatalf("uncovered asset: %v", err)
			}
		})
	}
}
