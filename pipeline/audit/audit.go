// Package audit is the release auditor (SPEC §6): after publishing, and on demand, it checks a
// release in a store with four checks and reports every finding as a [PASS]/[FAIL] line, a
// JSON report and a Markdown summary:
//
//  1. asset completeness — every asset of the family's list (release.ExpectedAssets) is there
//     (a missing one is exit 11);
//  2. signature validity — every Sigstore bundle verifies against its asset (pipeline/sign) and
//     was made by the expected signer: the release workflow of the repository at the tag's ref
//     (keyless), or the given public key;
//  3. checksum consistency — every asset is downloaded and hashed against checksums.sha256;
//  4. policy validation (KMS) — each attestation-policy-{profile}.json loads and validates, is
//     for this KMS version and profile, is not policy_not_ready in a stable or hotfix release,
//     and the profiles are isolated (policy.ValidateSet);
//  5. tag binding — every asset that names a release names this tag;
//  6. provenance — provenance.intoto.sigstore.json is a DSSE in-toto attestation signed by the
//     expected signer, SLSA v1, names this tag and states every content asset with the SHA-256
//     its one read computed (pipeline/provenance).
//
// Each asset is downloaded once and each byte read and hashed once, with bounded concurrency
// and memory that does not grow with the asset's size: the SHA-256 of the checksum check is the
// digest its bundle is verified over (sign.Verifier.VerifyDigest), and all bundles are then
// verified concurrently; the contents the other checks need are kept from the same stream.
package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// GitHubIssuer is the OIDC issuer of GitHub Actions, the default expected certificate issuer.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// DefaultRefPattern is the default expected git ref of the signing workflow run.
const DefaultRefPattern = "refs/tags/<tag>"

// maxSmallFile bounds what is read into memory: bundles, checksums.sha256, policies.
const maxSmallFile = 16 << 20

// Config says who must have signed the release and how to check it.
type Config struct {
	// Repository is OWNER/REPO of the signing workflow (keyless releases).
	Repository string
	// Workflow is the workflow file (default: the family's, release.Family.Workflow()); a bare
	// file name is looked up under .github/workflows/.
	Workflow string
	// RefPattern is a regular expression the run's git ref must match entirely; "<tag>" in it
	// stands for the tag. Default DefaultRefPattern.
	RefPattern string
	// Issuer is the expected OIDC issuer (default GitHubIssuer).
	Issuer string
	// PublicKey, when set, replaces the keyless identity: every bundle must be signed by it
	// (local key-signed releases).
	PublicKey crypto.PublicKey
	// TrustedRoot holds the Fulcio CAs, Rekor logs and CT logs (a trusted_root.json); required
	// for keyless releases, optional for key-signed ones (used for their Rekor entries).
	TrustedRoot root.TrustedMaterial
	// Workers bounds how many assets are downloaded and hashed at once (0: GOMAXPROCS).
	Workers int
	// Log receives the [PASS]/[FAIL]/[WARN]/[INFO] lines (nil: silent).
	Log *outcome.Logger
}

// Check names one of the four checks.
type Check string

// The checks, in report order.
const (
	CheckAssets     Check = "asset-completeness"
	CheckSignatures Check = "signatures"
	CheckChecksums  Check = "checksums"
	CheckPolicies   Check = "policies"
	// CheckBinding: every asset that names a release names this tag (no replay under another tag).
	CheckBinding Check = "tag-binding"
	// CheckProvenance: the SLSA provenance is signed by the expected signer, names this tag and
	// covers every content asset with its digest.
	CheckProvenance Check = "provenance"
)

// Checks lists the checks in report order.
func Checks() []Check {
	return []Check{CheckAssets, CheckSignatures, CheckChecksums, CheckPolicies, CheckBinding, CheckProvenance}
}

// Title is a human name for the check.
func (c Check) Title() string {
	switch c {
	case CheckAssets:
		return "Asset completeness"
	case CheckSignatures:
		return "Signature validity"
	case CheckChecksums:
		return "Checksum consistency"
	case CheckBinding:
		return "Tag binding"
	case CheckProvenance:
		return "Provenance"
	default:
		return "Policy validation"
	}
}

// Status is the verdict of a finding.
type Status string

// The verdicts.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
)

// Finding is one verdict: a check on one subject (an asset, a policy, the release).
type Finding struct {
	Check   Check  `json:"check"`
	Subject string `json:"subject"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// ExitCode is the finding's exit code when it failed: 11 missing asset, 10 verification, 1 other.
	ExitCode int `json:"exit_code,omitempty"`
	// Signer describes a verified signature.
	Signer *sign.Result `json:"signer,omitempty"`
}

// CheckSummary counts the findings of one check.
type CheckSummary struct {
	Check  Check `json:"check"`
	Passed int   `json:"passed"`
	Failed int   `json:"failed"`
	Warned int   `json:"warned"`
	// Skipped is set when the check does not apply (policies of a node-image release).
	Skipped bool `json:"skipped,omitempty"`
}

// Report is the auditor's result, marshalled as the machine-readable JSON report.
type Report struct {
	Tag    string         `json:"tag"`
	Family release.Family `json:"family"`
	Class  release.Class  `json:"class"`
	Draft  bool           `json:"draft"`
	// Signer is the expected signer: the keyless identity pattern or the key hint.
	Signer   string         `json:"expected_signer"`
	Passed   bool           `json:"passed"`
	ExitCode int            `json:"exit_code"`
	Checks   []CheckSummary `json:"checks"`
	Findings []Finding      `json:"findings"`
}

// Err returns nil when the audit passed, else one typed error per failed finding, joined
// (outcome.Code gives 11 when an asset is missing, else 10).
func (r *Report) Err() error {
	var errs []error
	for _, f := range r.Findings {
		if f.Status != Fail {
			continue
		}
		msg := fmt.Sprintf("%s: %s: %s", f.Check, f.Subject, f.Message)
		switch f.ExitCode {
		case outcome.MissingAsset:
			errs = append(errs, outcome.MissingAssetErrorf("%s", msg))
		case outcome.VerificationFailed:
			errs = append(errs, outcome.VerificationErrorf("%s", msg))
		case outcome.Usage:
			errs = append(errs, outcome.UsageErrorf("%s", msg))
		default:
			errs = append(errs, errors.New(msg))
		}
	}
	return errors.Join(errs...)
}

// Failures returns the failed findings.
func (r *Report) Failures() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Status == Fail {
			out = append(out, f)
		}
	}
	return out
}

// Audit runs the four checks on the release with the tag and returns the report; the error is
// the report's Err, or an error that stopped the audit (a bad Config is a usage error, an
// unreachable store a general error, in which case the report is nil).
func Audit(ctx context.Context, st store.Store, tag release.Tag, cfg Config) (*Report, error) {
	policyOf, signer, err := cfg.signaturePolicy(tag)
	if err != nil {
		return nil, err
	}
	a := &auditor{st: st, tag: tag, cfg: cfg, policy: policyOf, verifier: sign.NewVerifier(cfg.TrustedRoot)}
	a.report = &Report{Tag: tag.String(), Family: tag.Family, Signer: signer}
	if err := a.run(ctx); err != nil {
		return nil, err
	}
	a.finish()
	return a.report, a.report.Err()
}

// signaturePolicy builds the sign.Policy every bundle must satisfy.
func (cfg Config) signaturePolicy(tag release.Tag) (sign.Policy, string, error) {
	if cfg.PublicKey != nil {
		if cfg.Repository != "" {
			return sign.Policy{}, "", outcome.UsageErrorf("audit: give either a public key or a repository identity, not both")
		}
		hint, err := sign.KeyHint(cfg.PublicKey)
		if err != nil {
			return sign.Policy{}, "", outcome.UsageErrorf("audit: public key: %v", err)
		}
		return sign.Policy{PublicKey: cfg.PublicKey}, "public key " + hint, nil
	}
	if !repoRE().MatchString(cfg.Repository) {
		return sign.Policy{}, "", outcome.UsageErrorf("audit: repository %q: must be OWNER/REPO (or give a public key for a key-signed release)", cfg.Repository)
	}
	if cfg.TrustedRoot == nil {
		return sign.Policy{}, "", outcome.UsageErrorf("audit: a keyless release needs a Sigstore trusted root (trusted_root.json)")
	}
	wf := cmp.Or(cfg.Workflow, tag.Family.Workflow())
	if !strings.Contains(wf, "/") {
		wf = ".github/workflows/" + wf
	}
	ref := strings.ReplaceAll(cmp.Or(cfg.RefPattern, DefaultRefPattern), "<tag>", regexp.QuoteMeta(tag.String()))
	if _, err := regexp.Compile(ref); err != nil {
		return sign.Policy{}, "", outcome.UsageErrorf("audit: ref pattern %q: %v", cfg.RefPattern, err)
	}
	prefix := "https://github.com/" + cfg.Repository + "/" + wf + "@"
	id := &sign.Identity{
		SANRegexp:  "^" + regexp.QuoteMeta(prefix) + "(?:" + ref + ")$",
		Issuer:     cmp.Or(cfg.Issuer, GitHubIssuer),
		Repository: "https://github.com/" + cfg.Repository,
		RefRegexp:  "^(?:" + ref + ")$",
	}
	return sign.Policy{Identity: id}, fmt.Sprintf("%s%s (issuer %s)", prefix, ref, id.Issuer), nil
}

var repoRE = lazyre.New(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// auditor holds one audit's state.
type auditor struct {
	st       store.Store
	tag      release.Tag
	cfg      Config
	policy   sign.Policy
	verifier *sign.Verifier
	report   *Report

	mu       sync.Mutex
	findings []Finding
	kept     map[string][]byte     // asset → content (keepLimit), kept from the checksum stream
	reads    map[string]*assetRead // asset → what its one read gave its bundle
	sha256s  map[string]string     // asset → its SHA-256 (hex) from its one read, for the provenance
}

func (a *auditor) add(f Finding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.findings = append(a.findings, f)
}

func (a *auditor) pass(c Check, subject, format string, args ...any) {
	a.add(Finding{Check: c, Subject: subject, Status: Pass, Message: fmt.Sprintf(format, args...)})
}

func (a *auditor) warn(c Check, subject, format string, args ...any) {
	a.add(Finding{Check: c, Subject: subject, Status: Warn, Message: fmt.Sprintf(format, args...)})
}

func (a *auditor) fail(c Check, subject string, code int, format string, args ...any) {
	a.add(Finding{Check: c, Subject: subject, Status: Fail, ExitCode: code, Message: fmt.Sprintf(format, args...)})
}

// failErr records a failure whose exit code comes from err.
func (a *auditor) failErr(c Check, subject string, err error) {
	a.fail(c, subject, outcome.Code(err), "%v", err)
}

func (a *auditor) run(ctx context.Context) error {
	tag := a.tag.String()
	rel, err := a.st.Release(ctx, tag)
	if errors.Is(err, store.ErrNotFound) {
		a.fail(CheckAssets, tag, outcome.MissingAsset, "release %s not found in the store", tag)
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit %s: %w", tag, err)
	}
	a.report.Draft = rel.Draft
	names, err := a.st.Tags(ctx)
	if err != nil {
		return fmt.Errorf("audit %s: list published tags: %w", tag, err)
	}
	a.report.Class = release.Classify(a.tag, release.ParseTags(names))
	if rel.Draft {
		a.fail(CheckAssets, tag, outcome.VerificationFailed, "the release is a draft: it was never published, and a draft never passes the audit")
	}

	expected := release.ExpectedAssets(a.tag.Family)
	present := map[string]bool{}
	for _, as := range rel.Assets {
		present[as.Name] = true
	}
	a.completeness(expected, rel)

	bundles := a.fetchBundles(ctx, present)
	sums, checksumsOK := a.loadChecksums(ctx, present, bundles)

	// Assets are read once: the SHA-256 the checksum check computes is the digest each bundle
	// is verified over (a bundle signing another hash gets it from the same read). Assets that
	// checksums.sha256 does not list are hashed all the same, and signature-checked.
	hashed := map[string]bool{release.ChecksumsFile: true}
	if checksumsOK {
		var held []string
		for _, as := range rel.Assets {
			if as.Name != release.ChecksumsFile && !isBundle(as.Name) {
				held = append(held, as.Name)
			}
		}
		for _, e := range sums.Entries { // VerifyFrom opens every listed entry that is present
			hashed[e.Name] = present[e.Name]
		}
		open := func(name string) (io.ReadCloser, error) {
			if !present[name] {
				return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
			}
			return a.open(ctx, name, bundles[name])
		}
		rep, err := checksum.VerifyFrom(ctx, open, sums, held)
		if err != nil && rep.Results == nil {
			return fmt.Errorf("audit %s: checksums: %w", tag, err)
		}
		a.checksumFindings(rep)
		a.keepChecksumDigests(rep, bundles)
	}
	// Every other asset is still read: its bundle verified, its content kept for the checks.
	var rest []string
	for _, as := range rel.Assets {
		if name := as.Name; !hashed[name] && !isBundle(name) {
			rest = append(rest, name)
		}
	}
	a.hashRest(ctx, rest, bundles)
	a.verifyAll(ctx, bundles)

	if a.tag.Family == release.KMS {
		a.checkPolicies(expected, present)
	}
	a.checkBinding(present)
	a.checkProvenance(ctx, expected, present)
	return ctx.Err()
}

// completeness records a finding for every expected asset (unexpected ones: unexpectedAssets).
func (a *auditor) completeness(expected release.Assets, rel *store.Release) {
	held := map[string]store.Asset{}
	for _, as := range rel.Assets {
		held[as.Name] = as
	}
	for _, name := range expected.All() {
		if as, ok := held[name]; ok {
			a.pass(CheckAssets, name, "present (%d bytes)", as.Size)
			delete(held, name)
		} else {
			a.fail(CheckAssets, name, outcome.MissingAsset, "required asset is missing from the release")
		}
	}
	a.unexpectedAssets(held, rel)
}

// fetchBundles downloads and parses the bundle of every present asset that has one (small
// files), concurrently: expected or not, every bundle in the release is verified. A bundle that
// cannot be read or parsed is a failed signature.
func (a *auditor) fetchBundles(ctx context.Context, present map[string]bool) map[string]*sign.Bundle {
	out := map[string]*sign.Bundle{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, name := range slices.Sorted(maps.Keys(present)) {
		bn := release.BundleName(name)
		if isBundle(name) || !present[bn] {
			continue // completeness reported a missing expected bundle
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			data, err := a.readSmall(ctx, bn)
			if err != nil {
				a.failErr(CheckSignatures, name, fmt.Errorf("bundle %s: %w", bn, err))
				return
			}
			b, err := sign.ParseBundle(data)
			if err != nil {
				a.fail(CheckSignatures, name, outcome.Code(err), "%s: %v", bn, err)
				return
			}
			mu.Lock()
			out[name] = b
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// loadChecksums reads checksums.sha256, verifies its signature, parses it and checks that it
// lists every content asset of the family.
func (a *auditor) loadChecksums(ctx context.Context, present map[string]bool, bundles map[string]*sign.Bundle) (checksum.File, bool) {
	name := release.ChecksumsFile
	if !present[name] {
		return checksum.File{}, false
	}
	data, err := a.readSmall(ctx, name)
	if err != nil {
		a.failErr(CheckChecksums, name, err)
		return checksum.File{}, false
	}
	if b, ok := bundles[name]; ok {
		h, err := sign.NewDigestHash(sign.BundleDigestAlgorithm(b))
		if err != nil {
			a.fail(CheckSignatures, name, outcome.Code(err), "%s: %v", release.BundleName(name), err)
		} else {
			h.Write(data)
			a.verifySignature(ctx, name, b, h.Sum(nil))
		}
	}
	f, err := checksum.Parse(bytes.NewReader(data))
	if err != nil {
		a.fail(CheckChecksums, name, outcome.VerificationFailed, "%v", err)
		return checksum.File{}, false
	}
	for _, c := range release.ExpectedAssets(a.tag.Family).Checksummed() {
		if _, ok := f.Lookup(c); !ok {
			a.fail(CheckChecksums, c, outcome.VerificationFailed, "not listed in %s", name)
		}
	}
	return f, true
}

// readSmall reads a whole small asset.
func (a *auditor) readSmall(ctx context.Context, name string) ([]byte, error) {
	rc, err := a.st.OpenAsset(ctx, a.tag.String(), name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSmallFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxSmallFile {
		return nil, outcome.VerificationErrorf("%s is larger than %d bytes", name, maxSmallFile)
	}
	return data, nil
}

// verifySignature checks one bundle over the artifact's digest and records the finding.
func (a *auditor) verifySignature(ctx context.Context, name string, b *sign.Bundle, digest []byte) {
	res, err := a.verifier.VerifyDigest(ctx, b, digest, a.policy)
	if err != nil {
		a.fail(CheckSignatures, name, outcome.Code(err), "%s: %v", release.BundleName(name), err)
		return
	}
	who := res.Identity
	if who == "" {
		who = "key " + res.KeyHint
	}
	f := Finding{Check: CheckSignatures, Subject: name, Status: Pass, Signer: res,
		Message: fmt.Sprintf("%s verifies: signed by %s", release.BundleName(name), who)}
	a.add(f)
}

// workers is how many assets are hashed, or bundles verified, at once.
func (a *auditor) workers() int {
	if a.cfg.Workers > 0 {
		return a.cfg.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// keepChecksumDigests keeps, for every asset with a SHA-256 bundle, the SHA-256 the checksum
// check computed: the digest its bundle is verified over.
func (a *auditor) keepChecksumDigests(rep checksum.Report, bundles map[string]*sign.Bundle) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rep.Results {
		a.keepSHA256(r.Name, r.Actual) // every read asset: the provenance check uses it too
		b, ok := bundles[r.Name]
		if !ok || r.Actual == "" || sign.BundleDigestAlgorithm(b) != sha256Name {
			continue // another algorithm: its digest was taken from the same read by open
		}
		if d, err := hex.DecodeString(r.Actual); err == nil {
			a.digestOf(r.Name).digest = d
		}
	}
}

// keepSHA256 records the SHA-256 (hex) of an asset's one read; the caller holds a.mu.
func (a *auditor) keepSHA256(name, sum string) {
	if sum == "" {
		return
	}
	if a.sha256s == nil {
		a.sha256s = map[string]string{}
	}
	a.sha256s[name] = sum
}

// digestOf returns the read state of an asset; the caller holds a.mu.
func (a *auditor) digestOf(name string) *assetRead {
	if a.reads == nil {
		a.reads = map[string]*assetRead{}
	}
	r, ok := a.reads[name]
	if !ok {
		r = &assetRead{}
		a.reads[name] = r
	}
	return r
}

// hashRest reads the content assets the checksum check did not read (not listed in
// checksums.sha256, or no usable checksums.sha256), with bounded concurrency, for their bundles.
func (a *auditor) hashRest(ctx context.Context, names []string, bundles map[string]*sign.Bundle) {
	sem := make(chan struct{}, a.workers())
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rc, err := a.open(ctx, name, bundles[name])
			if err != nil {
				a.failErr(CheckSignatures, name, err)
				a.noteReadError(name)
				return
			}
			h := sha256.New()
			_, err = io.CopyBuffer(h, rc, make([]byte, 256<<10))
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				a.fail(CheckSignatures, name, outcome.General, "cannot read the asset: %v", err)
				a.noteReadError(name)
				return
			}
			sum := h.Sum(nil)
			a.mu.Lock()
			a.keepSHA256(name, hex.EncodeToString(sum))
			if b, ok := bundles[name]; ok && sign.BundleDigestAlgorithm(b) == sha256Name {
				a.digestOf(name).digest = sum
			}
			a.mu.Unlock()
		})
	}
	wg.Wait()
}

// noteReadError marks an asset whose read failed and was reported already.
func (a *auditor) noteReadError(name string) {
	a.mu.Lock()
	a.digestOf(name).failed = true
	a.mu.Unlock()
}

// verifyAll verifies every content asset's bundle over the digest of its one read,
// concurrently (checksums.sha256 was verified when it was loaded).
func (a *auditor) verifyAll(ctx context.Context, bundles map[string]*sign.Bundle) {
	sem := make(chan struct{}, a.workers())
	var wg sync.WaitGroup
	for name, b := range bundles {
		if name == release.ChecksumsFile {
			continue
		}
		a.mu.Lock()
		r := *a.digestOf(name)
		a.mu.Unlock()
		switch {
		case r.digest == nil && r.failed:
			continue // the read failure is reported
		case r.digest == nil:
			a.fail(CheckSignatures, name, outcome.General, "%s: the asset could not be read to the end", release.BundleName(name))
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a.verifySignature(ctx, name, b, r.digest)
		})
	}
	wg.Wait()
}

// sha256Name is the digest algorithm of the checksum check, as sign names it.
const sha256Name = "sha256"

// assetRead is what the one read of an asset gave its bundle: the digest, or a failure
// already reported.
type assetRead struct {
	digest []byte
	failed bool
}

// open opens an asset for reading it once. Contents the checks need are kept (keepLimit); when the asset's bundle signs a hash other than SHA-256, that hash is computed from
// the same stream. The digest is kept on Close once the stream was read to the end.
func (a *auditor) open(ctx context.Context, name string, b *sign.Bundle) (io.ReadCloser, error) {
	rc, err := a.st.OpenAsset(ctx, a.tag.String(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, err
	}
	t := &tee{rc: rc}
	var w []io.Writer
	if limit, prefix := keepLimit(name); limit > 0 {
		t.keep = &limitedBuffer{limit: limit, prefix: prefix}
		w = append(w, t.keep)
	}
	if b != nil && sign.BundleDigestAlgorithm(b) != sha256Name {
		if t.other, err = sign.NewDigestHash(sign.BundleDigestAlgorithm(b)); err != nil {
			rc.Close()
			return nil, err
		}
		w = append(w, t.other)
	}
	t.onClose = func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if t.keep != nil && (!t.keep.overflow || t.keep.prefix) {
			if a.kept == nil {
				a.kept = map[string][]byte{}
			}
			a.kept[name] = t.keep.Bytes()
		}
		if t.other != nil {
			a.digestOf(name).digest = t.other.Sum(nil)
		}
	}
	if len(w) > 0 {
		t.r = io.TeeReader(rc, io.MultiWriter(w...))
	} else {
		t.r = rc
	}
	return t, nil
}

func isPolicyFile(name string) bool {
	return slices.ContainsFunc(release.Profiles(), func(p release.Profile) bool { return p.PolicyFile() == name })
}

// tee is a store stream whose bytes also go to a buffer and/or a second hash.
type tee struct {
	rc      io.ReadCloser
	r       io.Reader
	keep    *limitedBuffer
	other   hash.Hash
	onClose func()
	readErr error
	eof     bool
}

// Read reads from the store and notes how the stream ended.
func (t *tee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	switch {
	case err == io.EOF:
		t.eof = true
	case err != nil:
		t.readErr = err
	}
	return n, err
}

// Close keeps what the stream gave when it was read to the end without error.
func (t *tee) Close() error {
	if t.eof && t.readErr == nil && t.onClose != nil {
		t.onClose()
	}
	return t.rc.Close()
}

// limitedBuffer keeps at most limit bytes and notes an overflow; with prefix it keeps the first
// limit bytes of a longer stream.
type limitedBuffer struct {
	bytes.Buffer
	limit    int
	prefix   bool
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		b.overflow = true
		if b.prefix {
			b.Buffer.Write(p[:b.limit-b.Len()])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// checksumFindings turns the checksum report into findings.
func (a *auditor) checksumFindings(rep checksum.Report) {
	for _, r := range rep.Results {
		switch {
		case r.Status == checksum.StatusOK:
			a.pass(CheckChecksums, r.Name, "sha256 %s matches %s", r.Actual, release.ChecksumsFile)
		case r.Status == checksum.StatusMissing && slices.Contains(release.ExpectedAssets(a.tag.Family).All(), r.Name):
			a.fail(CheckChecksums, r.Name, outcome.MissingAsset, "listed in %s but not in the release", release.ChecksumsFile)
		case r.Status == checksum.StatusMissing: // not a required asset: the checksum file is what is wrong
			a.fail(CheckChecksums, r.Name, outcome.VerificationFailed, "listed in %s but not in the release (and not an asset of a %s release)", release.ChecksumsFile, a.tag.Family)
		case r.Status == checksum.StatusMismatch:
			a.fail(CheckChecksums, r.Name, outcome.VerificationFailed, "%s", r.Detail)
		case r.Status == checksum.StatusUnlisted:
			a.fail(CheckChecksums, r.Name, outcome.VerificationFailed, "in the release but not listed in %s", release.ChecksumsFile)
		default:
			a.fail(CheckChecksums, r.Name, outcome.General, "%s", r.Detail)
		}
	}
}

// checkPolicies validates the KMS attestation policies kept from the checksum stream (or read
// now when checksums.sha256 did not list them).
func (a *auditor) checkPolicies(expected release.Assets, present map[string]bool) {
	loaded := map[release.Profile]*policy.Policy{}
	strict := !release.RulesFor(a.report.Class).PolicyNotReadyAllowed
	for _, prof := range release.Profiles() {
		name := prof.PolicyFile()
		if !present[name] {
			continue // completeness reported it
		}
		a.mu.Lock()
		data, ok := a.kept[name]
		a.mu.Unlock()
		if !ok {
			a.fail(CheckPolicies, name, outcome.General, "could not be read")
			continue
		}
		p, err := policy.Load(bytes.NewReader(data))
		if err == nil {
			err = policy.CheckFileName(name, p)
		}
		if err == nil && p.KMSVersion != a.tag.Version.String() {
			err = outcome.VerificationErrorf("kms_version: %q, but the release is %s", p.KMSVersion, a.tag.Version)
		}
		if err == nil && strict {
			if verr := policy.Validate(p, policy.ValidateOptions{RequireReady: true}); verr != nil {
				err = fmt.Errorf("a %s release: %w", a.report.Class, verr)
			}
		}
		if err != nil {
			a.fail(CheckPolicies, name, outcome.Code(err), "%v", err)
			continue
		}
		loaded[prof] = p
		state := "ready"
		if p.NotReady() {
			state = policy.StatusNotReady + " (allowed for an " + string(a.report.Class) + ")"
		}
		a.pass(CheckPolicies, name, "valid: kms %s, profile %s, %s, allowed_tcb_status %v", p.KMSVersion, p.Profile, state, p.AllowedTCBStatus)
	}
	if len(loaded) == len(release.Profiles()) {
		if err := policy.ValidateSet(loaded); err != nil {
			a.fail(CheckPolicies, "profile isolation", outcome.Code(err), "%v", err)
		} else {
			a.pass(CheckPolicies, "profile isolation", "no two profiles accept the same node measurements")
		}
	}
}

// finish sorts the findings, fills the summaries and verdict, and logs every finding.
func (a *auditor) finish() {
	r := a.report
	order := map[Check]int{}
	for i, c := range Checks() {
		order[c] = i
	}
	slices.SortStableFunc(a.findings, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(order[x.Check], order[y.Check]), strings.Compare(x.Subject, y.Subject))
	})
	r.Findings = a.findings
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for _, c := range Checks() {
		s := CheckSummary{Check: c, Skipped: c == CheckPolicies && a.tag.Family != release.KMS}
		for _, f := range r.Findings {
			if f.Check != c {
				continue
			}
			switch f.Status {
			case Pass:
				s.Passed++
			case Fail:
				s.Failed++
			case Warn:
				s.Warned++
			}
		}
		r.Checks = append(r.Checks, s)
	}
	r.ExitCode = outcome.Code(r.Err())
	r.Passed = r.ExitCode == outcome.OK
	log := a.cfg.Log
	log.Infof("audit %s (%s, %s) — expected signer: %s", r.Tag, r.Family, r.Class, r.Signer)
	for _, f := range r.Findings {
		line := fmt.Sprintf("%s %s: %s", f.Check, f.Subject, f.Message)
		switch f.Status {
		case Pass:
			log.Passf("%s", line)
		case Warn:
			log.Warnf("%s", line)
		default:
			log.Failf("%s", line)
		}
	}
	for _, s := range r.Checks {
		if s.Skipped {
			log.Infof("%s: not applicable to a %s release", s.Check.Title(), r.Family)
		}
	}
	if r.Passed {
		log.Passf("audit %s: all checks passed", r.Tag)
	} else {
		log.Failf("audit %s: %d finding(s) failed (exit %d)", r.Tag, len(r.Failures()), r.ExitCode)
	}
}
