// Command mkrelease builds a large, correctly key-signed mero-tee release in a directory store
// for bench/audit/run.sh: the four content assets of a node-image release filled with
// pseudo-random bytes (MiB in total), the provenance, checksums.sha256 and a Sigstore bundle for
// every signed file. With -extra N it adds N more assets of -extra-kib KiB each, listed in checksums.sha256
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

	content := release.ExpectedAssets(tag.Family).Content
	per := mib << 20 / int64(len(content))
	var sums checksum.File
	for i, name := range content {
		sum, err := writeRandom(filepath.Join(staging, name), per, uint64(i))
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
	if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: tag.String()}); err != nil {
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
	if err := st.Publish(ctx, tag.String(), store.PublishOptions{Latest: true}); err != nil {
		return err
	}
	fmt.Println(filepath.Join(storeDir, tag.String(), "assets"))
	return nil
}

// writeRandom fills path with size pseudo-random bytes and returns their SHA-256.
func writeRandom(path string, size int64, seed uint64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	src := rand.NewChaCha8([32]byte{byte(seed), 'm', 'e', 'r', 'o'})
	if _, err := io.CopyN(w, src, size); err != nil {
		return "", err
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}
