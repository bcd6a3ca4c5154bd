package policy

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// BenchmarkCompileSchema measures what compiling the embedded schema on every use costs.
func BenchmarkCompileSchema(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compileSchema(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad loads a policy generated from 20 node releases (100 register values).
func BenchmarkLoad(b *testing.B) {
	var nodes []*measure.Published
	for i := range 20 {
		nodes = append(nodes, node(fmt.Sprintf("1.%d.0", i), release.Debug))
	}
	data := mustMarshal(b, mustGenerate(b, "1.2.0", release.Debug, nodes...))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccepts is the per-request policy check of the KMS.
func BenchmarkAccepts(b *testing.B) {
	n := node("1.2.0", release.Debug)
	p := mustGenerate(b, "1.2.0", release.Debug, n)
	r := n.Profiles[release.Debug]
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Accepts(r, TCBUpToDate); err != nil {
			b.Fatal(err)
		}
	}
}
