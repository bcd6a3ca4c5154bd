package flow_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// testRefusals: releases that must stop before anything reaches the store.
func testRefusals(t *testing.T, f *fixture) {
	tests := []struct {
		name string
		tag  string
		// setup prepares the world and runs the release.
		run     func(w *world) (*flow.Report, error)
		code    int
		message []string
		// failed is the stage that refused; "" when the pipeline refused before running stages.
		failed string
	}{
		{
			name: "stable KMS without a counterpart node release: policies are not ready",
			tag:  "mero-kms-v1.3.0",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseKMS("mero-kms-v1.3.0", w.authorNotes(stableNotes))
			},
			code: outcome.VerificationFailed, message: []string{"stage policies", "policy_not_ready"}, failed: "policies",
		},
		{
			name: "stable KMS whose notes lack the upgrade path",
			tag:  "mero-kms-v1.3.0",
			run: func(w *world) (*flow.Report, error) {
				w.AddNode(t, "1.3.0", nil)
				return w.releaseKMS("mero-kms-v1.3.0", counterpart("1.3.0"),
					w.authorNotes("## Breaking changes\n\nNone.\n\n## Rollout\n\nAt night.\n"))
			},
			code: outcome.VerificationFailed, message: []string{"stage release-notes", `section "Upgrade path" is required for a stable release`}, failed: "release-notes",
		},
		{
			name: "stable node image without author notes",
			tag:  "mero-tee-v1.3.0",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0")
			},
			code: outcome.VerificationFailed, message: []string{"needs the author's release notes: write ", "release-notes/mero-tee-v1.3.0.md", "notes init --tag mero-tee-v1.3.0", `"Breaking changes"`, `"Upgrade path"`}, failed: "version-sync",
		},
		{
			name: "version sync mismatch",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseKMS("mero-kms-v1.3.0-rc.1", func(c *flow.Config) { c.ConfiguredVersion = "1.2.0" })
			},
			code: outcome.VerificationFailed, message: []string{"stage version-sync", "MERO_KMS_VERSION=1.2.0"}, failed: "version-sync",
		},
		{
			name: "stable release with nowhere to record the catalog update",
			tag:  "mero-tee-v1.3.0",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0", w.authorNotes(stableNotes), func(c *flow.Config) { c.CatalogPath, c.CatalogOut = "", "" })
			},
			code: outcome.Usage, message: []string{"must be able to update the compatibility catalog"}, failed: "version-sync",
		},
		{
			name: "version variable not set",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0-rc.1", func(c *flow.Config) { c.ConfiguredVersion = "" })
			},
			code: outcome.Usage, message: []string{"MERO_TEE_VERSION is not set"}, failed: "version-sync",
		},
		{
			name: "a tag that goes backwards",
			tag:  "mero-kms-v1.2.0",
			run: func(w *world) (*flow.Report, error) {
				w.AddKMS(t, "1.3.0", e2etest.Policies(t, "1.3.0", e2etest.Measured(t, "1.3.0")))
				return w.releaseKMS("mero-kms-v1.2.0")
			},
			code: outcome.Usage, message: []string{"goes backwards", "mero-kms-v1.3.0 is already published"}, failed: "version-sync",
		},
		{
			name: "an rc after its stable release",
			tag:  "mero-tee-v1.3.0-rc.2",
			run: func(w *world) (*flow.Report, error) {
				w.AddNode(t, "1.3.0", nil)
				return w.releaseNode("mero-tee-v1.3.0-rc.2")
			},
			code: outcome.Usage, message: []string{"goes backwards"}, failed: "version-sync",
		},
		{
			name: "E2E cannot be skipped for a stable release",
			tag:  "mero-tee-v1.3.0",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0", func(c *flow.Config) { c.SkipE2E = true })
			},
			code: outcome.Usage, message: []string{"E2E cannot be skipped for a stable release"}, failed: "version-sync",
		},
		{
			name: "a counterpart that is not published",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseKMS("mero-kms-v1.3.0-rc.1", counterpart("1.3.0-rc.1"))
			},
			code: outcome.VerificationFailed, message: []string{"counterpart mero-tee-v1.3.0-rc.1 is not a published release"}, failed: "counterpart",
		},
		{
			name: "a counterpart that is not a version",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseKMS("mero-kms-v1.3.0-rc.1", counterpart("v1.3"))
			},
			code: outcome.Usage, message: []string{"counterpart"}, failed: "counterpart",
		},
		{
			name: "signed with a key the auditor does not expect",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				other, _, err := audittest.KeySigner()
				if err != nil {
					t.Fatal(err)
				}
				return w.releaseNode("mero-tee-v1.3.0-rc.1", func(c *flow.Config) { c.Signer = other })
			},
			code: outcome.VerificationFailed, message: []string{"stage audit-staged", "signatures"}, failed: "audit-staged",
		},
		{
			name: "a node tag for the KMS pipeline",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return flow.ReleaseKMS(w.f.ctx, w.config("mero-tee-v1.3.0-rc.1"), w.kmsProduct())
			},
			code: outcome.Usage, message: []string{"release-kms: mero-tee-v1.3.0-rc.1 is not a mero-kms tag"},
		},
		{
			name: "a KMS tag for the node pipeline",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return flow.ReleaseNode(w.f.ctx, w.config("mero-kms-v1.3.0-rc.1"), w.f.nodeProduct())
			},
			code: outcome.Usage, message: []string{"release-node-image: mero-kms-v1.3.0-rc.1 is not a mero-tee tag"},
		},
		{
			name: "no store",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0-rc.1", func(c *flow.Config) { c.Store = nil })
			},
			code: outcome.Usage, message: []string{"no store configured"},
		},
		{
			name: "no work directory",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseKMS("mero-kms-v1.3.0-rc.1", func(c *flow.Config) { c.WorkDir = "" })
			},
			code: outcome.Usage, message: []string{"no work directory configured"},
		},
		{
			name: "no signer",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseKMS("mero-kms-v1.3.0-rc.1", func(c *flow.Config) { c.Signer = nil })
			},
			code: outcome.Usage, message: []string{"no signer configured"},
		},
		{
			name: "a KMS product without an app-compose renderer",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				p := w.kmsProduct()
				p.AppCompose = nil
				return flow.ReleaseKMS(w.f.ctx, w.config("mero-kms-v1.3.0-rc.1"), p)
			},
			code: outcome.Usage, message: []string{"app-compose renderer"},
		},
		{
			name: "a KMS binary that does not exist",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				p := w.kmsProduct()
				p.Binary = filepath.Join(w.Root, "no-such-binary")
				return flow.ReleaseKMS(w.f.ctx, w.config("mero-kms-v1.3.0-rc.1"), p)
			},
			code: outcome.Usage, message: []string{"stage build-images", "KMS binary", "no-such-binary"}, failed: "build-images",
		},
		{
			name: "a node release without a VM provider",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0-rc.1", func(c *flow.Config) { c.Provider = nil })
			},
			code: outcome.Usage, message: []string{"no VM provider"},
		},
		{
			name: "a node product without an image for a profile",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				p := w.f.nodeProduct()
				delete(p.Images, release.LockedReadOnly)
				return flow.ReleaseNode(w.f.ctx, w.config("mero-tee-v1.3.0-rc.1"), p)
			},
			code: outcome.Usage, message: []string{"no image for profile locked-read-only"},
		},
		{
			name: "a node product without an SBOM input",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				p := w.f.nodeProduct()
				p.SBOMPath = ""
				return flow.ReleaseNode(w.f.ctx, w.config("mero-tee-v1.3.0-rc.1"), p)
			},
			code: outcome.Usage, message: []string{"stage sbom", "node SBOM"}, failed: "sbom",
		},
		{
			name: "author notes that do not exist",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0-rc.1", func(c *flow.Config) { c.AuthorNotes = filepath.Join(w.Root, "missing.md") })
			},
			code: outcome.Usage, message: []string{"author notes", "missing.md"}, failed: "release-notes",
		},
		{
			name: "author notes with a section twice",
			tag:  "mero-tee-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				return w.releaseNode("mero-tee-v1.3.0-rc.1", w.authorNotes("## Rollback\n\na\n\n## Rollback\n\nb\n"))
			},
			code: outcome.Usage, message: []string{"notes line 5", "appears twice"}, failed: "release-notes",
		},
		{
			name: "a catalog that does not parse",
			tag:  "mero-kms-v1.3.0-rc.1",
			run: func(w *world) (*flow.Report, error) {
				w.AddNode(t, "1.3.0-rc.1", nil)
				if err := os.WriteFile(w.catalog, []byte(`{"schema_version": "1", "entries": [}`), 0o644); err != nil {
					t.Fatal(err)
				}
				return w.releaseKMS("mero-kms-v1.3.0-rc.1", counterpart("1.3.0-rc.1"))
			},
			code: outcome.VerificationFailed, message: []string{"compatibility-catalog.json"}, failed: "counterpart",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := f.world(t)
			rep, err := tt.run(w)
			wantRefused(t, err, tt.code, tt.message...)
			w.wantNoRelease(t, tt.tag)
			if tt.failed == "" {
				if rep != nil {
					t.Errorf("a refused configuration returned a report: %+v", rep)
				}
				if _, err := os.Stat(filepath.Join(w.work, tt.tag)); !os.IsNotExist(err) {
					t.Errorf("a refused configuration wrote into the work directory (%v)", err)
				}
				return
			}
			if rep == nil {
				t.Fatal("no report")
			}
			if rep.Published {
				t.Error("the report says published")
			}
			w.wantReportFile(t, rep)
			seen := false
			for _, s := range rep.Stages {
				switch {
				case s.Name == tt.failed:
					seen = true
					if s.Status != flow.StatusFail {
						t.Errorf("stage %s: %s, want fail", s.Name, s.Status)
					}
				case seen && s.Status != flow.StatusNotRun:
					t.Errorf("stage %s after the failure: %s, want not-run", s.Name, s.Status)
				case !seen && (s.Status == flow.StatusFail || s.Status == flow.StatusNotRun):
					t.Errorf("stage %s before the failure: %s", s.Name, s.Status)
				}
			}
			if !seen {
				t.Errorf("no stage %s in %+v", tt.failed, rep.Stages)
			}
			if !strings.Contains(w.log.String(), "[FAIL] stage "+tt.failed+": ") {
				t.Errorf("no [FAIL] line for stage %s", tt.failed)
			}
		})
	}
}
