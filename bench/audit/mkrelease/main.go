// Command mkrelease builds a large, correctly key-signed mero-tee release in a directory store
// for bench/audit/run.sh: the content assets of a node-image release, each naming the tag where
// the auditor's tag binding looks, the SBOM carrying the bulk (MiB in total, pseudo-random hex in
// a JSON string; the other assets are small, as in a real release), the provenance,
// checksums.sha256 and a Sigstore bundle for every signed file. With -extra N it adds N more assets of -extra-kib KiB each, listed in checksums.sha256
// (the audit hashes them and warns that they are not expected assets): the linearity check.
// It writes the public key to -key-out and prints the store's asset directory.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

func main() {
	storeDir := flag.String("store", "", "directory store to create the release in")
	tagText := flag.String("tag", "mero-tee-v1.0.0", "release tag (a mero-tee tag: no policies to generate)")
	mib := flag.Int64("mib", 1024, "total size of the content assets in MiB")
	keyOut := flag.String("key-out", "", "where to write the public key (cosign.pub)")
	extra := flag.Int("extra", 0, "extra assets listed in checksums.sha256")
	extraKiB := flag.Int64("extra-kib", 256, "size of each extra asset in KiB")
	flag.Parse()
	if err := build(context.Background(), *storeDir, *tagText, *mib, *keyOut, *extra, *extraKiB); err != nil {
		fmt.Fprintln(os.Stderr, "[ERROR]", err)
		os.Exit(1)
	}
}

func build(ctx context.Context, storeDir, tagText string, mib int64, keyOut string, extra int, extraKiB int64) error {
	if storeDir == "" || keyOut == "" || mib <= 0 {
		return fmt.Errorf("-store, -key-out and a positive -mib are required")
	}
	tag, err := release.ParseTag(tagText)
	if err != nil {
		return err
	}
	if tag.Family != release.Node {
		return fmt.Errorf("use a mero-tee tag")
	}
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyOut, pubPEM, 0o644); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(filepath.Dir(storeDir), "mkrelease-staging-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)

	var sums checksum.File
	for i, name := range release.ExpectedAssets(tag.Family).Content {
		sum, err := writeContent(filepath.Join(staging, name), name, tag, mib<<20, uint64(i))
		if err != nil {
			return err
		}
		sums.Entries = append(sums.Entries, checksum.Entry{Name: name, SHA256: sum})
	}
	// the provenance over the content, listed in checksums.sha256 like the content
	in := provenance.Input{Tag: tag}
	for _, e := range sums.Entries {
		in.Subjects = append(in.Subjects, provenance.Subject{Name: e.Name, SHA256: e.SHA256})
	}
	prov, err := provenance.Make(ctx, signer, in)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(staging, release.ProvenanceFile), prov, 0o644); err != nil {
		return err
	}
	provSum := sha256.Sum256(prov)
	sums.Entries = append(sums.Entries, checksum.Entry{Name: release.ProvenanceFile, SHA256: hex.EncodeToString(provSum[:])})
	all := release.ExpectedAssets(tag.Family).All()
	for i := range extra {
		name := fmt.Sprintf("extra-%05d.bin", i)
		sum, err := writeRandom(filepath.Join(staging, name), extraKiB<<10, uint64(1000+i))
		if err != nil {
			return err
		}
		sums.Entries = append(sums.Entries, checksum.Entry{Name: name, SHA256: sum})
		all = append(all, name)
	}
	if err := os.WriteFile(filepath.Join(staging, release.ChecksumsFile), sums.Marshal(), 0o644); err != nil {
		return err
	}
	for _, name := range release.ExpectedAssets(tag.Family).Signed() {
		b, err := signer.SignFile(ctx, filepath.Join(staging, name))
		if err != nil {
			return fmt.Errorf("sign %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(staging, release.BundleName(name)), b, 0o644); err != nil {
			return err
		}
	}

	st, err := dir.New(storeDir)
	if err != nil {
		return err
	}
	if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: tag.String(), Prerelease: tag.Version.IsRC()}); err != nil {
		return err
	}
	var uploads []store.Upload
	for _, name := range all {
		info, err := os.Stat(filepath.Join(staging, name))
		if err != nil {
			return err
		}
		uploads = append(uploads, store.Upload{Name: name, Size: info.Size(), Open: func() (io.ReadCloser, error) {
			return os.Open(filepath.Join(staging, name))
		}})
	}
	if err := st.UploadAssets(ctx, tag.String(), uploads); err != nil {
		return err
	}
	if err := st.Publish(ctx, tag.String(), store.PublishOptions{Latest: !tag.Version.IsRC()}); err != nil {
		return err
	}
	fmt.Println(filepath.Join(storeDir, tag.String(), "assets"))
	return nil
}

// writeRandom fills path with size pseudo-random bytes and returns their SHA-256.
// writeContent writes a content asset that names tag where the auditor looks (the tag binding):
// the SBOM is an SPDX-shaped JSON document whose "name" ends with the version, followed by a
// padding string that carries the release's bulk (bulk bytes in all); the other assets are small
// documents naming the tag. It returns the file's SHA-256.
func writeContent(path, name string, tag release.Tag, bulk int64, seed uint64) (string, error) {
	v := tag.Version.String()
	var head, tail string
	switch name {
	case release.SBOMFile:
		head = fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","name":"%s-%s","padding":"`, tag.Family, v)
		tail = "\"}\n"
	case release.NotesFile:
		return writeFile(path, fmt.Sprintf("# %s\n\nBenchmark release.\n", tag), 0, seed)
	default: // published-mrtds.json, the image manifests, vulnerabilities.json
		return writeFile(path, fmt.Sprintf(`{"family":"%s","version":"%s"}`+"\n", tag.Family, v), 0, seed)
	}
	return writeFile(path, head, bulk-int64(len(head)+len(tail)), seed, tail)
}

// writeRandom writes size random bytes to path and returns their SHA-256.
func writeRandom(path string, size int64, seed uint64) (string, error) {
	return writeFile(path, "", size, seed)
}

// writeFile writes head, n bytes of pseudo-random lowercase hex (seeded: the same input gives
// the same file; hex keeps a JSON string valid) or raw random bytes when head is empty, and tail;
// it returns the file's SHA-256.
func writeFile(path, head string, n int64, seed uint64, tail ...string) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	var src io.Reader = rand.NewChaCha8([32]byte{byte(seed), 'm', 'e', 'r', 'o'})
	if head != "" {
		src = &hexReader{r: src}
	}
	if _, err := io.WriteString(w, head); err != nil {
		return "", err
	}
	if n > 0 {
		if _, err := io.CopyN(w, src, n); err != nil {
			return "", err
		}
	}
	for _, t := range tail {
		if _, err := io.WriteString(w, t); err != nil {
			return "", err
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// hexReader renders the bytes of r as lowercase hex.
type hexReader struct {
	r       io.Reader
	pending []byte
}

func (x *hexReader) Read(p []byte) (int, error) {
	if len(x.pending) == 0 {
		raw := make([]byte, 32<<10)
		n, err := io.ReadFull(x.r, raw)
		if n == 0 {
			return 0, err
		}
		x.pending = hex.AppendEncode(nil, raw[:n])
	}
	n := copy(p, x.pending)
	x.pending = x.pending[n:]
	return n, nil
}
