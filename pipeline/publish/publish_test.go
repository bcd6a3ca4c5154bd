package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
	"github.com/calimero-network/mero-release/pipeline/store/github/githubtest"
)

const token = "ghs_publish"

// assemble writes a complete release directory of the tag's family: content assets, their
// the provenance, checksums.sha256 and a (dummy) bundle for every signed file. Publish does not read bundles.
func assemble(t *testing.T, tag release.Tag) string {
	t.Helper()
	d := t.TempDir()
	a := release.ExpectedAssets(tag.Family)
	for i, n := range a.Content {
		body := fmt.Sprintf("%s of %s\n%s", n, tag, strings.Repeat("x", 1000*i))
		if err := os.WriteFile(filepath.Join(d, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// the provenance (a dummy: publish does not read it) is listed in checksums.sha256
	if err := os.WriteFile(filepath.Join(d, release.ProvenanceFile), []byte(`{"provenance":"`+tag.String()+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := checksum.Compute(context.Background(), d, a.Checksummed())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, release.ChecksumsFile), sums.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range a.Signed() {
		if err := os.WriteFile(filepath.Join(d, release.BundleName(n)), []byte(`{"bundle":"`+n+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func input(t *testing.T, tagText string, class release.Class) Input {
	tag := release.MustParseTag(tagText)
	return Input{Tag: tag, Rules: release.RulesFor(class), Dir: assemble(t, tag), Notes: "notes of " + tagText}
}

// noSleep makes retries immediate; hung requests are given up after a short attempt timeout.
func noSleep() ghstore.RetryPolicy {
	return ghstore.RetryPolicy{
		MaxAttempts: 4, AttemptTimeout: 300 * time.Millisecond,
		Sleep:  func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Jitter: func(time.Duration) time.Duration { return 0 },
	}
}

type backend struct {
	name string
	st   store.Store
	fake *githubtest.Server // nil for the directory store
}

func newGitHub(t *testing.T) backend {
	t.Helper()
	fake := githubtest.New("calimero-network", "mero-tee", token, nil)
	t.Cleanup(fake.Close)
	c, err := ghstore.NewClient(ghstore.ClientOptions{BaseURL: fake.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ghstore.New(ghstore.Options{Owner: fake.Owner, Repo: fake.Repo, Client: c, Retry: noSleep(), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return backend{name: "github", st: st, fake: fake}
}

func newDir(t *testing.T) backend {
	t.Helper()
	st, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return backend{name: "dir", st: st}
}

// eachBackend runs f against the directory store and the GitHub store over the fake.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, mk := range []func(*testing.T) backend{newDir, newGitHub} {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// checkPublished asserts the release is published with exactly the local assets.
func checkPublished(t *testing.T, st store.Store, in Input) *store.Release {
	t.Helper()
	r, err := st.Release(context.Background(), in.Tag.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Draft {
		t.Fatalf("%s is still a draft", in.Tag)
	}
	var names []string
	for _, a := range r.Assets {
		names = append(names, a.Name)
		if want := fileSum(t, filepath.Join(in.Dir, a.Name)); a.SHA256 != want {
			t.Errorf("%s: sha256 %s, want %s", a.Name, a.SHA256, want)
		}
	}
	if want := release.ExpectedAssets(in.Tag.Family).All(); !slices.Equal(names, want) {
		t.Fatalf("assets %v, want %v", names, want)
	}
	return r
}

// noDuplicates asserts the fake holds one release of the tag with unique, complete assets.
func noDuplicates(t *testing.T, b backend, tag string) {
	t.Helper()
	if b.fake == nil {
		return // the directory store keys assets by name
	}
	n := 0
	for _, r := range b.fake.Releases() {
		if r.Tag != tag {
			continue
		}
		n++
		seen := map[string]bool{}
		for _, a := range r.Assets {
			if seen[a.Name] || a.State != "uploaded" {
				t.Fatalf("asset %s duplicated or left in state %q", a.Name, a.State)
			}
			seen[a.Name] = true
		}
	}
	if n != 1 {
		t.Fatalf("%d releases with tag %s, want 1", n, tag)
	}
}

func TestPublishClasses(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		stable := input(t, "mero-kms-v1.2.0", release.Stable)
		var log bytes.Buffer
		stable.Log = outcome.NewLogger(&log)
		if err := Publish(ctx, b.st, stable); err != nil {
			t.Fatal(err)
		}
		r := checkPublished(t, b.st, stable)
		if !r.Latest || r.Prerelease || r.Notes != stable.Notes {
			t.Fatalf("stable: %+v", r)
		}
		if !strings.Contains(log.String(), fmt.Sprintf("[PASS] mero-kms-v1.2.0: all %d uploaded assets verified", len(release.ExpectedAssets(release.KMS).All()))) {
			t.Fatalf("log:\n%s", log.String())
		}

		rc := input(t, "mero-kms-v1.3.0-rc.1", release.RC)
		if err := Publish(ctx, b.st, rc); err != nil {
			t.Fatal(err)
		}
		if r := checkPublished(t, b.st, rc); r.Latest || !r.Prerelease {
			t.Fatalf("rc: latest=%v prerelease=%v", r.Latest, r.Prerelease)
		}

		// 1.1.0 is published after 1.2.0: allowed to be latest by its class, but not newest.
		old := input(t, "mero-kms-v1.1.1", release.Hotfix)
		if err := Publish(ctx, b.st, old); err != nil {
			t.Fatal(err)
		}
		if r := checkPublished(t, b.st, old); r.Latest {
			t.Fatal("a hotfix of an older line was marked latest")
		}
		if r, _ := b.st.Release(ctx, "mero-kms-v1.2.0"); !r.Latest {
			t.Fatal("1.2.0 lost latest")
		}

		node := input(t, "mero-tee-v1.2.0", release.Stable)
		if err := Publish(ctx, b.st, node); err != nil {
			t.Fatal(err)
		}
		checkPublished(t, b.st, node)
		noDuplicates(t, b, "mero-kms-v1.2.0")
	})
}

func TestMissingAssetCreatesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, n := range []string{"sbom.spdx.json", "checksums.sha256.sigstore.json", "attestation-policy-debug.json"} {
			in := input(t, "mero-kms-v1.2.0", release.Stable)
			if err := os.Remove(filepath.Join(in.Dir, n)); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			in.Log = outcome.NewLogger(&log)
			err := Publish(context.Background(), b.st, in)
			if outcome.Code(err) != outcome.MissingAsset || !strings.Contains(err.Error(), n) {
				t.Fatalf("missing %s: %v (code %d), want exit 11 naming it", n, err, outcome.Code(err))
			}
			if !strings.Contains(log.String(), "[FAIL] mero-kms-v1.2.0: required asset "+n+" is missing") {
				t.Fatalf("log:\n%s", log.String())
			}
			if _, err := b.st.Release(context.Background(), in.Tag.String()); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a release was created despite the missing asset: %v", err)
			}
		}
	})
}

func TestRerunIsNoOpAndDifferentIsError(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		in := input(t, "mero-tee-v2.0.0", release.Stable)
		if err := Publish(ctx, b.st, in); err != nil {
			t.Fatal(err)
		}
		uploads := 0
		if b.fake != nil {
			uploads = b.fake.Count(githubtest.OpUpload)
		}
		if err := Publish(ctx, b.st, in); err != nil {
			t.Fatalf("rerun over identical assets: %v", err)
		}
		if b.fake != nil && b.fake.Count(githubtest.OpUpload) != uploads {
			t.Fatal("the rerun uploaded again")
		}
		// Change one asset (and its checksum line) locally: the published release differs.
		p := filepath.Join(in.Dir, release.SBOMFile)
		if err := os.WriteFile(p, []byte(`{"spdxVersion":"SPDX-2.3","changed":true}`), 0o644); err != nil {
			t.Fatal(err)
		}
		a := release.ExpectedAssets(in.Tag.Family)
		sums, _ := checksum.Compute(ctx, in.Dir, a.Checksummed())
		os.WriteFile(filepath.Join(in.Dir, release.ChecksumsFile), sums.Marshal(), 0o644)
		err := Publish(ctx, b.st, in)
		if outcome.Code(err) != outcome.VerificationFailed || !errors.Is(err, store.ErrAssetConflict) || !strings.Contains(err.Error(), release.SBOMFile) {
			t.Fatalf("publishing different assets over a published release = %v, want exit 10 naming %s", err, release.SBOMFile)
		}
		checkPublished(t, b.st, input(t, "mero-tee-v2.0.0", release.Stable))
	})
}

func TestChecksumsMustMatchBeforeAnythingIsCreated(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		in := input(t, "mero-tee-v2.0.0", release.Stable)
		if err := os.WriteFile(filepath.Join(in.Dir, release.NotesFile), []byte("edited after checksums"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Publish(context.Background(), b.st, in)
		if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), release.NotesFile+" is listed as") {
			t.Fatalf("err = %v", err)
		}
		if _, err := b.st.Release(context.Background(), in.Tag.String()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a release was created: %v", err)
		}
	})
}

func TestBadInput(t *testing.T) {
	st := newDir(t).st
	good := input(t, "mero-tee-v1.0.0", release.Stable)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	cases := map[string]func(in *Input){
		"no tag":          func(in *Input) { in.Tag = release.Tag{} },
		"no rules":        func(in *Input) { in.Rules = release.Rules{} },
		"rc not pre":      func(in *Input) { in.Tag = release.MustParseTag("mero-tee-v1.0.0-rc.1") },
		"no dir":          func(in *Input) { in.Dir = "" },
		"missing dir":     func(in *Input) { in.Dir = filepath.Join(t.TempDir(), "nope") },
		"dir is file":     func(in *Input) { in.Dir = file },
		"neg concurrency": func(in *Input) { in.Concurrency = -1 },
	}
	for name, mutate := range cases {
		in := good
		mutate(&in)
		if err := Publish(context.Background(), st, in); outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	in := input(t, "mero-tee-v1.0.0", release.Stable)
	os.Remove(filepath.Join(in.Dir, release.SBOMFile))
	os.Mkdir(filepath.Join(in.Dir, release.SBOMFile), 0o755)
	if err := Publish(context.Background(), st, in); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory as asset: %v", err)
	}
}

// flaky wraps a store and fails the first upload of one asset, or stores wrong bytes.
type flaky struct {
	store.Store
	mu      sync.Mutex
	failFor string
	corrupt string
}

func (f *flaky) UploadAsset(ctx context.Context, tag, name string, r io.Reader, size int64) error {
	f.mu.Lock()
	fail := name == f.failFor
	if fail {
		f.failFor = ""
	}
	f.mu.Unlock()
	if fail {
		return errors.New("injected: connection reset by peer")
	}
	if name == f.corrupt {
		b, _ := io.ReadAll(r)
		b[0] ^= 1
		return f.Store.UploadAsset(ctx, tag, name, bytes.NewReader(b), size)
	}
	return f.Store.UploadAsset(ctx, tag, name, r, size)
}

func TestFailureLeavesDraftAndRerunCompletes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		in := input(t, "mero-kms-v1.0.0", release.Stable)
		f := &flaky{Store: b.st, failFor: release.SBOMFile}
		err := Publish(ctx, f, in)
		if err == nil || !strings.Contains(err.Error(), "left unpublished") {
			t.Fatalf("err = %v", err)
		}
		r, err := b.st.Release(ctx, in.Tag.String())
		if err != nil || !r.Draft || len(r.Assets) != len(release.ExpectedAssets(release.KMS).All())-1 {
			t.Fatalf("after the failure: %+v, %v; want a draft missing one asset", r, err)
		}
		if err := Publish(ctx, b.st, in); err != nil {
			t.Fatalf("rerun: %v", err)
		}
		checkPublished(t, b.st, in)
		noDuplicates(t, b, in.Tag.String())
	})
}

func TestVerifyCatchesWrongUpload(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		in := input(t, "mero-tee-v1.0.0", release.Stable)
		f := &flaky{Store: b.st, corrupt: release.NodeImageManifest}
		err := Publish(ctx, f, in)
		if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), release.NodeImageManifest+" has sha256") {
			t.Fatalf("err = %v, want a verification failure naming the manifest", err)
		}
		if r, _ := b.st.Release(ctx, in.Tag.String()); !r.Draft {
			t.Fatal("a release with a wrong asset was published")
		}
		// The rerun hits the conflicting asset and refuses, never replacing it silently.
		err = Publish(ctx, b.st, in)
		if outcome.Code(err) != outcome.VerificationFailed || !errors.Is(err, store.ErrAssetConflict) {
			t.Fatalf("rerun = %v, want an asset conflict (exit 10)", err)
		}
	})
}

func TestStrayDraftAssetBlocksPublish(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		in := input(t, "mero-tee-v1.0.0", release.Stable)
		if _, err := b.st.CreateDraft(ctx, store.DraftSpec{Tag: in.Tag.String()}); err != nil {
			t.Fatal(err)
		}
		if err := b.st.UploadAsset(ctx, in.Tag.String(), "stray.txt", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		err := Publish(ctx, b.st, in)
		if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "stray.txt is in the release but is not an expected asset") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestGitHubFaults publishes through injected 5xx answers, 429s with Retry-After, timeouts
// and truncated uploads: each run either completes with every asset verified or leaves a
// draft, and a rerun without faults completes it without duplicates.
func TestGitHubFaults(t *testing.T) {
	ops := []githubtest.Op{githubtest.OpUpload, githubtest.OpUpload, githubtest.OpListAssets, githubtest.OpCreateRelease,
		githubtest.OpUpdateRelease, githubtest.OpListReleases, githubtest.OpGetRelease, githubtest.OpDeleteAsset}
	faults := []githubtest.Fault{
		{Status: 502}, {Status: 503}, {Status: 500, AfterCommit: true}, {Status: 429, RetryAfter: "3"},
		{Status: 403, Secondary: true, RetryAfter: "2"}, {Hang: true}, {Truncate: true}, {Drop: true},
	}
	completed, drafts := 0, 0
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			b := newGitHub(t)
			in := input(t, "mero-kms-v1.4.0", release.Stable)
			n := 4 + rng.IntN(12)
			for range n {
				op := ops[rng.IntN(len(ops))]
				f := faults[rng.IntN(len(faults))]
				if f.Truncate && op != githubtest.OpUpload {
					f = githubtest.Fault{Status: 502}
				}
				b.fake.Inject(op, f)
			}
			err := Publish(context.Background(), b.st, in)
			r, rerr := b.st.Release(context.Background(), in.Tag.String())
			switch {
			case err == nil:
				completed++
				checkPublished(t, b.st, in)
			case rerr == nil && r.Draft, errors.Is(rerr, store.ErrNotFound):
				drafts++
				t.Logf("left a draft: %v", err)
			default:
				t.Fatalf("publish failed (%v) and left %+v, %v: neither complete nor a draft", err, r, rerr)
			}
			b.fake.ClearFaults()
			clean := newGitHubSameFake(t, b)
			if err := Publish(context.Background(), clean, in); err != nil {
				t.Fatalf("rerun without faults: %v", err)
			}
			checkPublished(t, clean, in)
			noDuplicates(t, b, in.Tag.String())
		})
	}
	t.Logf("%d runs completed through the faults, %d left a draft that the rerun completed", completed, drafts)
	if completed == 0 {
		t.Error("no run completed through faults: the retries do not work")
	}
}

// newGitHubSameFake is a fresh store value (a rerun) on the same fake.
func newGitHubSameFake(t *testing.T, b backend) store.Store {
	t.Helper()
	c, err := ghstore.NewClient(ghstore.ClientOptions{BaseURL: b.fake.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ghstore.New(ghstore.Options{Owner: b.fake.Owner, Repo: b.fake.Repo, Client: c, Retry: noSleep(), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGitHubPersistentFailureLeavesDraft(t *testing.T) {
	b := newGitHub(t)
	in := input(t, "mero-tee-v1.0.0", release.Stable)
	for range 4 { // MaxAttempts of noSleep: one asset's upload gives up
		b.fake.Inject(githubtest.OpUpload, githubtest.Fault{Status: 502})
	}
	in.Concurrency = 1
	err := Publish(context.Background(), b.st, in)
	if err == nil || !strings.Contains(err.Error(), "giving up after 4 attempts") {
		t.Fatalf("err = %v", err)
	}
	rels := b.fake.Releases()
	if len(rels) != 1 || !rels[0].Draft {
		t.Fatalf("releases = %+v, want one draft", rels)
	}
	if err := Publish(context.Background(), b.st, in); err != nil {
		t.Fatal(err)
	}
	checkPublished(t, b.st, in)
	noDuplicates(t, b, in.Tag.String())
}

func TestGitHubWithoutDigests(t *testing.T) {
	b := newGitHub(t)
	b.fake.OmitDigest(true)
	in := input(t, "mero-tee-v1.0.0", release.Stable)
	if err := Publish(context.Background(), b.st, in); err != nil {
		t.Fatal(err)
	}
	if b.fake.Count(githubtest.OpDownload) < len(release.ExpectedAssets(release.Node).All()) {
		t.Fatalf("only %d downloads: without digests every asset must be read back to verify it", b.fake.Count(githubtest.OpDownload))
	}
	r, _ := b.st.Release(context.Background(), in.Tag.String())
	if r.Draft {
		t.Fatal("not published")
	}
}
