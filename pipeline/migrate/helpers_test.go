package migrate_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/migrate"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// world is a release store on the simulated TDX platform with a node release 1.3.0 and a signed
// KMS release 1.3.0 whose policies accept it.
type world struct {
	*e2etest.World
	signer *sign.KeySigner
	trust  migrate.Trust
	node   *measure.Published
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{World: e2etest.New(t)}
	var pubPEM []byte
	var err error
	if w.signer, pubPEM, err = audittest.KeySigner(); err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	w.trust = migrate.Trust{Policy: sign.Policy{PublicKey: pub}, Verifier: sign.NewVerifier(nil)}
	w.node = w.AddNode(t, "1.3.0", nil)
	return w
}

// kmsFiles returns the content of a KMS release: its policies (accepting the given node
// releases) and its published-mrtds.json (the in-process KMS's registers for every profile).
func (w *world) kmsFiles(t *testing.T, version string, nodes ...*measure.Published) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for p, pol := range e2etest.Policies(t, version, nodes...) {
		data, err := pol.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		files[p.PolicyFile()] = data
	}
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.KMS, Version: version, Profiles: map[release.Profile]measure.Record{}}
	rec := w.KMSRecord(t)
	for _, p := range release.Profiles() {
		pub.Profiles[p] = rec
	}
	data, err := pub.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	files[release.PublishedMRTDsFile] = data
	return files
}

// publishKMS seals files (checksums.sha256 and a bundle per file) with the world's key, lets
// tamper change the sealed files, and publishes the KMS release without the names in skip.
func (w *world) publishKMS(t *testing.T, version string, files map[string][]byte, tamper func(map[string][]byte), skip ...string) {
	t.Helper()
	ctx := context.Background()
	tag := release.MustParseTag(release.KMS.TagPrefix() + version)
	sealed, err := audittest.Seal(ctx, audittest.Options{Tag: tag, Signer: w.signer}, files)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(sealed)
	}
	if err := audittest.Publish(ctx, w.Store, tag, sealed, skip...); err != nil {
		t.Fatal(err)
	}
}

// resign replaces name's bundle with a fresh signature by the world's key.
func (w *world) resign(t *testing.T, files map[string][]byte, name string) {
	t.Helper()
	b, err := w.signer.Sign(context.Background(), files[name])
	if err != nil {
		t.Fatal(err)
	}
	files[release.BundleName(name)] = b
}

// notReady marks every policy of files policy_not_ready (empty allowlists).
func notReady(t *testing.T, version string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, p := range release.Profiles() {
		pol, err := policy.Generate(version, p, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if files[p.PolicyFile()], err = pol.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// wantCode checks err's exit code and that its message contains every fragment.
func wantCode(t *testing.T, err error, code int, fragments ...string) {
	t.Helper()
	if got := outcome.Code(err); got != code {
		t.Fatalf("exit code %d, want %d: %v", got, code, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

// logger returns a logger and its buffer.
func logger() (*outcome.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return outcome.NewLogger(&b), &b
}

// assetPath is an asset's file in the directory store.
func (w *world) assetPath(tag, name string) string {
	return filepath.Join(w.StoreDir, tag, "assets", name)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
