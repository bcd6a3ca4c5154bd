//go:build ignore

// gen writes the synthetic firmware, kernel and initrd of the example node image. They are
// stand-ins for the artefacts of the Packer-built GCP image: deterministic bytes (a text
// header, then SHA-256 in counter mode over a label), so that the committed files can be
// regenerated identically with `go run gen.go` from this directory.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
)

func synthetic(label string, size int) []byte {
	out := fmt.Appendf(nil, "MERO-RELEASE SYNTHETIC %s: a stand-in for the Packer-built GCP image's %s; not bootable.\n", label, label)
	for i := uint64(0); len(out) < size; i++ {
		var ctr [8]byte
		binary.BigEndian.PutUint64(ctr[:], i)
		sum := sha256.Sum256(append([]byte("mero-release example node image "+label), ctr[:]...))
		out = append(out, sum[:]...)
	}
	return out[:size]
}

func main() {
	for _, f := range []struct {
		file, label string
		size        int
	}{
		{"firmware.bin", "TD firmware (TDVF)", 8192},
		{"vmlinuz", "kernel", 6144},
		{"initrd.img", "initrd", 4096},
	} {
		if err := os.WriteFile(f.file, synthetic(f.label, f.size), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
