package flow_test

import (
	"time"

	"context"
	"errors"
	"fmt"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// testE2EClasses: the same E2E failure blocks a stable release and is advisory for an rc.
func testE2EClasses(t *testing.T, f *fixture) {
	tests := []struct {
		name    string
		version string // of both the KMS release and its counterpart node release
		tamper  bool   // the node release's published-mrtds.json is not what its image boots to
		launch  bool   // the KMS never starts
		skip    bool   // E2E turned off (SkipE2E)
		// want
		published bool
		e2e       flow.Status
		message   []string // of the error (blocking) or of the e2e stage's detail (advisory)
	}{
		{name: "stable, E2E passes", version: "1.3.0", published: true, e2e: flow.StatusPass},
		{name: "stable, published measurements disagree with the image (guardrail D)", version: "1.3.0", tamper: true,
			e2e: flow.StatusFail, message: []string{"stage e2e", "measurement consistency"}},
		{name: "stable, the KMS does not start", version: "1.3.0", launch: true,
			e2e: flow.StatusFail, message: []string{"stage e2e", "KMS VM did not boot"}},
		{name: "rc, published measurements disagree with the image (guardrail D)", version: "1.3.0-rc.1", tamper: true,
			published: true, e2e: flow.StatusWarn, message: []string{"measurement consistency"}},
		{name: "rc, the KMS does not start", version: "1.3.0-rc.1", launch: true,
			published: true, e2e: flow.StatusWarn, message: []string{"KMS VM did not boot"}},
		{name: "rc, E2E turned off", version: "1.3.0-rc.1", skip: true,
			published: true, e2e: flow.StatusSkip, message: []string{"turned off for this run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := f.world(t)
			kmsTag := "mero-kms-v" + tt.version
			var mutate = tamper
			if !tt.tamper {
				mutate = nil
			}
			w.AddNode(t, tt.version, mutate)
			stable := !strings.Contains(tt.version, "-rc.")
			mods := []func(*flow.Config){counterpart(tt.version)}
			if stable {
				// a stable KMS needs full notes; its pair is proven by its own E2E (no pre-seeded catalog)
				mods = append(mods, w.authorNotes(stableNotes))
			}
			launcher := &failingLauncher{}
			if tt.launch {
				mods = append(mods, func(c *flow.Config) { c.KMSLauncher = launcher })
			}
			if tt.skip {
				mods = append(mods, func(c *flow.Config) { c.SkipE2E = true })
			}
			rep, err := w.releaseKMS(kmsTag, mods...)
			if rep == nil {
				t.Fatalf("no report: %v", err)
			}
			st := stages(t, rep, kmsStages())
			if tt.launch && launcher.count() == 0 {
				t.Error("E2E never tried to start a KMS")
			}
			w.wantReportFile(t, rep)
			switch {
			case tt.e2e == flow.StatusFail:
				wantRefused(t, err, outcome.VerificationFailed, tt.message...)
				wantStatus(t, st, flow.StatusFail, "", "e2e")
				wantStatus(t, st, flow.StatusNotRun, "", "publish", "audit", "catalog")
				wantStatus(t, st, flow.StatusPass, "", "stage", "audit-staged")
				w.wantNoRelease(t, kmsTag)
				if rep.Published {
					t.Error("the report says published")
				}
			case err != nil:
				t.Fatalf("release %s: %v", kmsTag, err)
			default:
				if rep.Published != tt.published {
					t.Errorf("published %v, want %v", rep.Published, tt.published)
				}
				rel := w.wantPublished(t, kmsTag)
				if stable && !rel.Latest {
					t.Errorf("%s is not marked latest", kmsTag)
				}
				wantStatus(t, st, flow.StatusPass, "", "publish", "audit")
				for _, m := range tt.message {
					wantStatus(t, st, tt.e2e, m, "e2e")
				}
				switch tt.e2e {
				case flow.StatusWarn:
					wantStatus(t, st, flow.StatusSkip, "E2E did not pass for this pair", "catalog")
					if !strings.Contains(w.log.String(), "[WARN] stage e2e failed, advisory for this release class") {
						t.Error("no [WARN] line for the advisory E2E failure")
					}
				case flow.StatusSkip:
					wantStatus(t, st, flow.StatusSkip, "E2E did not pass for this pair", "catalog")
				default:
					wantStatus(t, st, tt.e2e, "", "e2e")
					wantStatus(t, st, flow.StatusPass, "", "catalog")
				}
			}
			if tt.e2e != flow.StatusPass {
				// nothing tested, nothing recorded
				if _, err := os.Stat(w.catalogOut); !os.IsNotExist(err) {
					t.Errorf("the catalog was written although E2E did not pass (%v)", err)
				}
			}
		})
	}
}

// testPublishFailure: a store that fails while publishing leaves no published release; a re-run
// with a working store completes the draft it left (adopting a complete one as it is).
func testPublishFailure(t *testing.T, f *fixture) {
	const nodeTag, kmsTag = "mero-tee-v1.3.0-rc.1", "mero-kms-v1.3.0-rc.1"
	node := func(w *world, mods ...func(*flow.Config)) (*flow.Report, error) {
		return w.releaseNode(nodeTag, mods...)
	}
	kmsRelease := func(w *world, mods ...func(*flow.Config)) (*flow.Report, error) {
		return w.releaseKMS(kmsTag, append(mods, counterpart("1.3.0-rc.1"))...)
	}
	nodeBuild := []string{"image-manifest", "measure", "sbom", "release-notes", "provenance", "checksums", "sign"}
	kmsBuild := []string{"build-images", "measure", "sbom", "release-notes", "provenance", "checksums", "sign"}
	tests := []struct {
		name   string
		tag    string
		stages []string
		build  []string // the stages a resumed re-run skips
		setup  func(w *world)
		run    func(w *world, mods ...func(*flow.Config)) (*flow.Report, error)
		broken func(st store.Store) *brokenStore
		// the first run's failure
		message string
		// the draft left behind: number of assets (-1: all)
		draftAssets int
		// tamper edits the draft in the store between the runs (nil: left as it is)
		tamper func(w *world, tag string)
		// the re-run: adopts the draft, rebuilds, fails on a draft it cannot complete (conflict)
		// or refuses a draft whose assets do not match its checksums (refused)
		rerun string
	}{
		{name: "node: publish fails", tag: nodeTag, stages: nodeStages(), build: nodeBuild, setup: func(*world) {}, run: node,
			broken:  func(st store.Store) *brokenStore { return &brokenStore{Store: st, publish: true} },
			message: "503 Service Unavailable", draftAssets: -1, rerun: "adopt"},
		{name: "kms: publish fails", tag: kmsTag, stages: kmsStages(), build: kmsBuild, setup: func(w *world) { w.AddNode(t, "1.3.0-rc.1", nil) }, run: kmsRelease,
			broken:  func(st store.Store) *brokenStore { return &brokenStore{Store: st, publish: true} },
			message: "503 Service Unavailable", draftAssets: -1, rerun: "adopt"},
		{name: "node: publish fails, then the draft is tampered with", tag: nodeTag, stages: nodeStages(), build: nodeBuild, setup: func(*world) {}, run: node,
			broken:  func(st store.Store) *brokenStore { return &brokenStore{Store: st, publish: true} },
			message: "503 Service Unavailable", draftAssets: -1, rerun: "refused",
			tamper: func(w *world, tag string) {
				if err := os.WriteFile(filepath.Join(w.StoreDir, tag, "assets", release.NotesFile), []byte("# all is well\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "node: every upload fails", tag: nodeTag, stages: nodeStages(), build: nodeBuild, setup: func(*world) {}, run: node,
			broken: func(st store.Store) *brokenStore {
				return &brokenStore{Store: st, upload: func(string) bool { return true }}
			},
			message: "upload failed, the draft is left unpublished", draftAssets: 0, rerun: "rebuild"},
		{name: "node: one upload fails after the others", tag: nodeTag, stages: nodeStages(), build: nodeBuild, setup: func(*world) {}, run: node,
			broken: func(st store.Store) *brokenStore {
				return &brokenStore{Store: st, upload: func(name string) bool { return name == release.SBOMFile }}
			},
			message: "upload failed, the draft is left unpublished", draftAssets: len(release.ExpectedAssets(release.Node).All()) - 1, rerun: "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := f.world(t)
			tt.setup(w)
			ctx := context.Background()
			broken := tt.broken(w.Store)
			rep, err := tt.run(w, func(c *flow.Config) { c.Store = broken })
			wantRefused(t, err, outcome.General, "stage publish", tt.message)
			if broken.publish && broken.publishes() != 1 {
				t.Errorf("Publish called %d times", broken.publishes())
			}
			st := stages(t, rep, tt.stages)
			wantStatus(t, st, flow.StatusFail, tt.message, "publish")
			wantStatus(t, st, flow.StatusNotRun, "", "audit", "catalog")
			if rep.Published {
				t.Error("the report says published")
			}
			draft, err := w.Store.Release(ctx, tt.tag)
			if err != nil {
				t.Fatalf("no draft left: %v", err)
			}
			if !draft.Draft {
				t.Fatalf("%s is published after a failed publish", tt.tag)
			}
			if want := tt.draftAssets; want >= 0 && len(draft.Assets) != want {
				t.Errorf("the draft holds %d assets, want %d", len(draft.Assets), want)
			}
			if tags, _ := w.Store.Tags(ctx); slices.Contains(tags, tt.tag) {
				t.Errorf("%s is among the published tags", tt.tag)
			}

			if tt.tamper != nil {
				tt.tamper(w, tt.tag)
			}
			rep, err = tt.run(w)
			st = stages(t, rep, tt.stages)
			if tt.rerun == "refused" {
				// the adopted draft is checked like a new release: nothing unverified is published
				wantRefused(t, err, outcome.VerificationFailed, "stage stage", release.ChecksumsFile+" does not match the assets")
				wantStatus(t, st, flow.StatusSkip, "resuming the draft of an earlier run", tt.build...)
				if rel, err := w.Store.Release(ctx, tt.tag); err != nil || !rel.Draft {
					t.Errorf("after the refusal: %+v, %v; want the draft left as it was", rel, err)
				}
				return
			}
			if tt.rerun == "conflict" {
				// rebuilt signatures differ from the ones already uploaded: the draft is never
				// completed with a mixture, and the operator is told what to do
				wantRefused(t, err, outcome.VerificationFailed, "stage publish", "delete it from the draft")
				if !strings.Contains(w.log.String(), "[WARN] the store holds an incomplete draft of "+tt.tag) {
					t.Error("no [WARN] about the incomplete draft")
				}
				if rel, err := w.Store.Release(ctx, tt.tag); err != nil || !rel.Draft {
					t.Errorf("after the conflict: %+v, %v; want the draft left as it was", rel, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("re-run with a working store: %v", err)
			}
			if !rep.Published {
				t.Error("the re-run did not publish")
			}
			wantStatus(t, st, flow.StatusPass, "", "draft", "stage", "audit-staged", "publish", "audit")
			rel := w.wantPublished(t, tt.tag)
			switch tt.rerun {
			case "adopt":
				wantStatus(t, st, flow.StatusSkip, "resuming the draft of an earlier run", tt.build...)
				// exactly the draft's assets were published
				sums := map[string]string{}
				for _, a := range draft.Assets {
					sums[a.Name] = a.SHA256
				}
				for _, a := range rel.Assets {
					if sums[a.Name] != a.SHA256 {
						t.Errorf("%s: published sha256 %s, the draft held %s", a.Name, a.SHA256, sums[a.Name])
					}
				}
			case "rebuild":
				wantStatus(t, st, flow.StatusPass, "", tt.build...)
				if !strings.Contains(w.log.String(), "[WARN] the store holds an incomplete draft of "+tt.tag+" from an earlier run (0 of") {
					t.Error("no [WARN] about the incomplete draft")
				}
			}
		})
	}
}

// brokenStore fails Publish (publish) or the uploads of the assets upload selects; everything
// else reaches the real store.
type brokenStore struct {
	store.Store
	publish bool
	upload  func(name string) bool

	mu    sync.Mutex
	calls int
}

func (s *brokenStore) Publish(ctx context.Context, tag string, opts store.PublishOptions) error {
	if !s.publish {
		return s.Store.Publish(ctx, tag, opts)
	}
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return errors.New("503 Service Unavailable")
}

func (s *brokenStore) publishes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *brokenStore) UploadAsset(ctx context.Context, tag, name string, content io.Reader, size int64) error {
	if s.upload != nil && s.upload(name) {
		return fmt.Errorf("upload %s: connection reset by peer", name)
	}
	return s.Store.UploadAsset(ctx, tag, name, content, size)
}

// hotfixNotes are author notes with every section a hotfix needs that is not generated.
const hotfixNotes = `A patch for the 1.3 line.

## CVE or incident

INC-2026-041: replayed challenges accepted after a restart.

## Exact change

Challenges are persisted across restarts.

## Rollback

Redeploy mero-kms 1.3.0 with its policy.

## Why a patch release

The issue is exploitable in production; 1.4 is weeks away.
`

// testHotfix releases a KMS hotfix (1.3.1 on a published stable 1.3.0): every check blocks, its
// notes carry the hotfix sections, and since its measurements changed, the class rules require
// the catalog update that follows its E2E.
func testHotfix(t *testing.T, f *fixture) {
	w := f.world(t)
	node := w.AddNode(t, "1.3.0", nil)
	w.AddKMS(t, "1.3.0", e2etest.Policies(t, "1.3.0", node))
	rep, err := w.releaseKMS("mero-kms-v1.3.1", counterpart("1.3.0"), w.authorNotes(hotfixNotes))
	if err != nil {
		t.Fatalf("hotfix: %v", err)
	}
	if rep.Class != "hotfix" || !rep.Published {
		t.Errorf("report: class %q, published %v", rep.Class, rep.Published)
	}
	st := stages(t, rep, kmsStages())
	wantStatus(t, st, flow.StatusPass, "", "dependency-guard", "e2e", "publish", "audit", "catalog")
	if !strings.Contains(w.log.String(), "[INFO] catalog: the hotfix rules require this update") {
		t.Errorf("the catalog update of a hotfix whose measurements changed is not marked required:\n%s", w.log.String())
	}
	notes := string(readAsset(t, w.Store, "mero-kms-v1.3.1", release.NotesFile))
	for _, s := range []string{"## CVE or incident", "## Rollback", "## Why a patch release"} {
		if !strings.Contains(notes, s) {
			t.Errorf("hotfix notes lack %q", s)
		}
	}
	if !strings.Contains(w.log.String(), "is not a tag of") {
		t.Errorf("no warning that the base tag could not be checked in a repository without it")
	}
	// without the hotfix sections nothing is published
	w2 := f.world(t)
	node2 := w2.AddNode(t, "1.3.0", nil)
	w2.AddKMS(t, "1.3.0", e2etest.Policies(t, "1.3.0", node2))
	_, err = w2.releaseKMS("mero-kms-v1.3.1", counterpart("1.3.0"), w2.authorNotes(stableNotes))
	wantRefused(t, err, outcome.VerificationFailed, "stage release-notes", `"CVE or incident"`)
	w2.wantNoRelease(t, "mero-kms-v1.3.1")

	// built from the main line instead of a branch of mero-kms-v1.3.0: refused at once
	w3 := f.world(t)
	node3 := w3.AddNode(t, "1.3.0", nil)
	w3.AddKMS(t, "1.3.0", e2etest.Policies(t, "1.3.0", node3))
	sideTag(t, w3.repo, "mero-kms-v1.3.0")
	rep, err = w3.releaseKMS("mero-kms-v1.3.1", counterpart("1.3.0"), w3.authorNotes(hotfixNotes))
	wantRefused(t, err, outcome.VerificationFailed, "stage version-sync", "is not on a branch of mero-kms-v1.3.0")
	w3.wantNoRelease(t, "mero-kms-v1.3.1")
	if rep == nil {
		t.Fatal("no report")
	}
	for _, st := range rep.Stages[1:] {
		if st.Status != "not-run" {
			t.Errorf("stage %s ran after the refusal: %s", st.Name, st.Status)
		}
	}
}

// sideTag tags tag on a new side branch of repo and goes back to master, which moves on: HEAD
// does not descend from the tag.
func sideTag(t *testing.T, dir, tag string) {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(name string) plumbing.Hash {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
		sig := &object.Signature{Name: "Alice Liddell", Email: "alice@example.com", When: time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)}
		h, err := wt.Commit("change "+name, &git.CommitOptions{Author: sig, Committer: sig})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("side"), Create: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateTag(tag, commit("side.txt"), nil); err != nil {
		t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("master")}); err != nil {
		t.Fatal(err)
	}
	commit("main.txt")
}

// testNodeHotfixCandidate releases a node hotfix (1.3.1 on a published stable 1.3.0) whose
// image measures differently: the published KMS 1.3.0 policies cannot hold it, so E2E runs
// against candidate policies promoted with the new measurements, guardrail C shows the
// published ones refusing it, the release names the KMS release that must follow, and the
// catalog gains no pair that only the candidates make work. Without that E2E nothing ships.
func testNodeHotfixCandidate(t *testing.T, f *fixture) {
	w := f.world(t)
	node := w.AddNode(t, "1.3.0", nil) // e2etest's 1.3.0 image; the hotfix is examples/node-image
	w.AddKMS(t, "1.3.0", e2etest.Policies(t, "1.3.0", node))
	rep, err := w.releaseNode("mero-tee-v1.3.1", w.authorNotes(hotfixNotes))
	if err != nil {
		t.Fatalf("node hotfix: %v", err)
	}
	if rep.Class != "hotfix" || !rep.Published {
		t.Errorf("report: class %q, published %v", rep.Class, rep.Published)
	}
	st := stages(t, rep, nodeStages())
	wantStatus(t, st, flow.StatusPass, "", "candidate-policy", "e2e", "publish", "audit")
	wantStatus(t, st, flow.StatusPass, "", "dependency-guard")
	wantStatus(t, st, flow.StatusSkip, "only with the candidate KMS policies", "catalog")
	if !strings.Contains(rep.FollowUp, "mero-kms-v1.3.1") || !strings.Contains(rep.FollowUp, "do not hold the measurements of mero-tee-v1.3.1") {
		t.Errorf("follow-up %q", rep.FollowUp)
	}
	w.wantReportFile(t, rep)
	w.wantPublished(t, "mero-tee-v1.3.1")
	notes := string(readAsset(t, w.Store, "mero-tee-v1.3.1", release.NotesFile))
	if !strings.Contains(notes, "## Follow-up release") || !strings.Contains(notes, "mero-kms-v1.3.1") {
		t.Errorf("the notes do not name the KMS release that must follow:\n%s", notes)
	}
	log := w.log.String()
	for _, want := range []string{
		"[PASS] guardrail C (stale policy): node image 1.3.1 ↔ published policy of mero-kms-v1.3.0 (locked-read-only): refused with 403 PolicyViolation: mrtd",
		"[PASS] guardrail C (stale policy): node image 1.3.1 ↔ candidate policy of kms 1.3.0 (locked-read-only): accepted after the policy update",
		"[PASS] catalog pair: kms 1.3.0 with node image 1.3.1 is proven in this run (E2E passed for mero-tee-v1.3.1 against the candidate policies",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, p := range release.Profiles() {
		if _, err := os.Stat(filepath.Join(w.work, "mero-tee-v1.3.1", "candidate-policies", p.PolicyFile())); err != nil {
			t.Errorf("candidate policy kept for the KMS author: %v", err)
		}
	}
	if _, err := os.Stat(w.catalogOut); !os.IsNotExist(err) {
		t.Errorf("the catalog was written for a pair only the candidate policies make work (%v)", err)
	}

	// the candidate-policy E2E cannot be skipped, and when it fails nothing ships
	w2 := f.world(t)
	node2 := w2.AddNode(t, "1.3.0", nil)
	w2.AddKMS(t, "1.3.0", e2etest.Policies(t, "1.3.0", node2))
	_, err = w2.releaseNode("mero-tee-v1.3.1", w2.authorNotes(hotfixNotes), func(c *flow.Config) { c.SkipE2E = true })
	wantRefused(t, err, outcome.Usage, "E2E cannot be skipped for a hotfix release")
	w2.wantNoRelease(t, "mero-tee-v1.3.1")
	launcher := &failingLauncher{}
	rep, err = w2.releaseNode("mero-tee-v1.3.1", w2.authorNotes(hotfixNotes), func(c *flow.Config) { c.KMSLauncher = launcher })
	wantRefused(t, err, outcome.VerificationFailed, "stage e2e")
	w2.wantNoRelease(t, "mero-tee-v1.3.1")
	if rep == nil {
		t.Fatal("no report")
	}
	st = stages(t, rep, nodeStages())
	wantStatus(t, st, flow.StatusPass, "", "candidate-policy")
	wantStatus(t, st, flow.StatusNotRun, "", "dependency-guard", "publish", "catalog")
}
