package measure

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
)

// seedLayoutTar is a minimal valid OCI layout archive: one manifest, its config and a layer.
func seedLayoutTar(tb testing.TB) []byte {
	blob := func(b []byte) (string, int) { s := sha256.Sum256(b); return hex.EncodeToString(s[:]), len(b) }
	config, layer := []byte(`{}`), []byte("layer")
	cd, cs := blob(config)
	ld, ls := blob(layer)
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}`, cd, cs, ld, ls))
	md, ms := blob(manifest)
	index := []byte(fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d}]}`, md, ms))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}, {"blobs/sha256/" + md, manifest}, {"blobs/sha256/" + cd, config}, {"blobs/sha256/" + ld, layer}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	l, err := readTarStream("seed", bytes.NewReader(buf.Bytes()))
	if err != nil {
		tb.Fatal(err)
	}
	if info, err := inspect(l); err != nil || info.Digest != "sha256:"+md {
		tb.Fatalf("seed layout: %+v %v", info, err)
	}
	return buf.Bytes()
}

// FuzzCanonicalJSON: never panics; the output is valid JSON and canonical (canonicalising it
// again changes nothing).
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.0,1e16,"é"]}`, "a: 1\nb: [x, y]\n", "x: &a {k: v}\ny: *a\n", "- 1\n- 2.5\n", `"s"`, "1: x", "a: .inf"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := CanonicalJSON("fuzz", data)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q from %q", out, data)
		}
		again, err := CanonicalJSON("again", out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q (%v)", out, again, err)
		}
	})
}

// FuzzParseCompose: never panics; an accepted compose hashes its canonical form and pins
// every image.
func FuzzParseCompose(f *testing.F) {
	f.Add([]byte("services:\n  kms:\n    image: r@sha256:" + string(bytes.Repeat([]byte("a"), 64)) + "\n"))
	f.Add([]byte(`{"docker_compose_file":"services:\n  a:\n    image: x@sha256:` + string(bytes.Repeat([]byte("0"), 64)) + `\n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCompose("fuzz", data)
		if err != nil {
			return
		}
		if c.Hash != sha256.Sum256(c.Canonical) || len(c.Images) == 0 {
			t.Fatalf("compose %+v", c)
		}
		for _, ref := range c.Images {
			if _, err := imageRefDigest(ref); err != nil {
				t.Fatalf("unpinned image %q accepted", ref)
			}
		}
	})
}

// FuzzInspectTar: reading a (hostile) tar stream as an OCI layout never panics.
func FuzzInspectTar(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add(seedLayoutTar(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := readTarStream("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		_, _ = inspect(l)
	})
}

// FuzzReadPublished: strict decoding never panics and accepts only valid files.
func FuzzReadPublished(f *testing.F) {
	f.Add([]byte(`{"schema_version":"1","family":"mero-tee","version":"1.2.0","profiles":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPublished(bytes.NewReader(data))
		if err == nil && p.Validate() != nil {
			t.Fatal("accepted an invalid file")
		}
	})
}
