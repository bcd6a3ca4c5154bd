//go:build ignore

// gen.go writes the inputs of scripts/ci/dagger-smoke.sh with the library itself, so that they
// always match the current schemas: `go run scripts/ci/testdata/gen.go` from the repository root.
package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

const out = "scripts/ci/testdata"

// register is a stand-in SHA-384 measurement, distinct per profile and register.
func register(profile release.Profile, name string) string {
	sum := sha512.Sum384([]byte("mero-tee 1.2.0 " + string(profile) + " " + name))
	return hex.EncodeToString(sum[:])
}

func main() {
	ctx := context.Background()
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: "1.2.0", Profiles: map[release.Profile]measure.Record{}}
	for _, p := range release.Profiles() {
		pub.Profiles[p] = measure.Record{
			MRTD: register(p, "mrtd"), RTMR0: register(p, "rtmr0"), RTMR1: register(p, "rtmr1"),
			RTMR2: register(p, "rtmr2"), RTMR3: register(p, "rtmr3"),
			Source: "tdx-simulator", MeasuredAt: "2026-01-01T00:00:00Z", Image: "examples/node-image/" + string(p),
		}
	}
	mrtds, err := pub.Marshal()
	check(err)

	root := filepath.Join(out, "store")
	check(os.RemoveAll(root))
	st, err := dir.New(root)
	check(err)
	tag := "mero-tee-v1.2.0"
	_, err = st.CreateDraft(ctx, store.DraftSpec{Tag: tag, Name: tag})
	check(err)
	check(st.UploadAsset(ctx, tag, release.PublishedMRTDsFile, bytes.NewReader(mrtds), int64(len(mrtds))))
	check(st.Publish(ctx, tag, store.PublishOptions{Latest: true}))

	pol := filepath.Join(out, "policies-ready")
	check(os.MkdirAll(pol, 0o755))
	for _, p := range release.Profiles() {
		gp, err := policy.Generate("1.2.0", p, []*measure.Published{pub}, policy.DefaultTCBStatus())
		check(err)
		check(gp.WriteFile(filepath.Join(pol, p.PolicyFile())))
	}

	writeFile("workflows-clean/release.yaml", `name: release
on: {push: {tags: ["mero-kms-v*"]}}
jobs:
  release:
    runs-on: ubuntu-latest
    env:
      MERO_KMS_VERSION: ${{ vars.MERO_KMS_VERSION }}
    steps:
      - run: echo "policies come from attestation-policy-*.json, never ALLOWED_MRTD"
`)
	writeFile("workflows-allowed/release.yaml", `name: release
on: {push: {tags: ["mero-kms-v*"]}}
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - name: legacy override
        run: |
          echo "building"
          export ALLOWED_MRTD=abc
`)
	writeFile("catalog-missing-tested.json", `{
  "schema_version": "1",
  "entries": [
    {"kms": "1.2.0", "node_image": "1.2.0", "profiles": ["debug"], "notes": "tested flag forgotten"}
  ]
}
`)
	fmt.Println("wrote", out)
}

func writeFile(name, content string) {
	p := filepath.Join(out, name)
	check(os.MkdirAll(filepath.Dir(p), 0o755))
	check(os.WriteFile(p, []byte(content), 0o644))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
