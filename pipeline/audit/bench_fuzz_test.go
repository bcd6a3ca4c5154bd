package audit_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// FuzzMarkdown: findings come from outside (asset names, error texts of a store, bundle
// contents); whatever they hold, the summary keeps one list item per finding and no raw HTML outside
// the subject's code span.
func FuzzMarkdown(f *testing.F) {
	f.Add("sbom.spdx.json", "SHA-256 mismatch: a | b")
	f.Add("a`b\nc", "<script>alert(1)</script>\n## heading")
	f.Fuzz(func(t *testing.T, subject, message string) {
		rep := &audit.Report{Tag: "mero-kms-v1.0.0", Family: release.KMS, ExitCode: 10,
			Checks:   []audit.CheckSummary{{Check: audit.CheckChecksums, Failed: 1}},
			Findings: []audit.Finding{{Check: audit.CheckChecksums, Subject: subject, Status: audit.Fail, ExitCode: 10, Message: message}}}
		md := rep.Markdown()
		failures := md[strings.Index(md, "### Failures"):]
		if n := strings.Count(failures, "\n- "); n != 1 {
			t.Fatalf("%d list items for one finding:\n%s", n, md)
		}
		// The subject is a code span (no backtick can end it early); the message is text.
		_, span, _ := strings.Cut(failures, "`")
		_, text, ok := strings.Cut(span, "`")
		if !ok || strings.Contains(text, "<") {
			t.Fatalf("raw '<' outside the code span:\n%s", md)
		}
	})
}

// BenchmarkAudit audits a key-signed mero-tee release of 64 MiB in a directory store: all four
// checks, every byte read once. MB/s is content throughput.
func BenchmarkAudit(b *testing.B) {
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		b.Fatal(err)
	}
	tag := release.MustParseTag("mero-tee-v1.0.0")
	const per = 16 << 20
	files, err := audittest.Build(context.Background(), audittest.Options{Tag: tag, Signer: signer, Mutate: func(files map[string][]byte) {
		rng := rand.NewChaCha8([32]byte{1})
		for name := range files {
			buf := make([]byte, per)
			rng.Read(buf)
			files[name] = buf
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	st := newDirB(b)
	if err := audittest.Publish(context.Background(), st, tag, files); err != nil {
		b.Fatal(err)
	}
	pub, err := loadKey(pubPEM)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.Audit(context.Background(), st, tag, audit.Config{PublicKey: pub}); err != nil {
			b.Fatal(err)
		}
	}
}
