package guard

import (
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkAllowedEnvFile(b *testing.B) {
	content, err := os.ReadFile(filepath.Join("testdata", "workflows", "dirty", "run-bash.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		AllowedEnvFile("run-bash.yaml", content)
	}
}
