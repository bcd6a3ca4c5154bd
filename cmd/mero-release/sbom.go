package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sbom"
)

// sbomCommand is `mero-release sbom`: the SPDX 2.3 JSON SBOM of an image, a directory or the
// node image's Packer manifest.
func (a *app) sbomCommand() *cobra.Command {
	var input, kind, name, version, out string
	kinds := make([]string, 0, len(sbom.Kinds()))
	for _, k := range sbom.Kinds() {
		kinds = append(kinds, string(k))
	}
	c := &cobra.Command{
		Use:   "sbom --input PATH --kind " + strings.Join(kinds, "|") + " --name N --version V [-o sbom.spdx.json]",
		Short: "Generate the SPDX 2.3 JSON SBOM (syft, offline, deterministic; creation time from SOURCE_DATE_EPOCH)",
		Long: `Generate the SPDX 2.3 JSON SBOM of an OCI or Docker image archive, an OCI layout directory,
a directory, or the node image's Packer manifest (its image-definition directory, every Packer
build of the last run and the pinned base image). The same input gives the same bytes: the
creation time comes from SOURCE_DATE_EPOCH (required) and the document namespace from the content.
Without -o the document is written to stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range [][2]string{{"input", input}, {"kind", kind}, {"name", name}, {"version", version}} {
				if f[1] == "" {
					return outcome.UsageErrorf("sbom: --%s is required", f[0])
				}
			}
			k, err := sbom.ParseKind(kind)
			if err != nil {
				return fmt.Errorf("sbom: --kind: %w", err)
			}
			created, err := sbom.CreatedFromEnv(a.getenv)
			if err != nil {
				return fmt.Errorf("sbom: %w", err)
			}
			a.log.Infof("cataloguing %s %s with syft %s", k, input, sbom.SyftVersion)
			doc, err := sbom.Generate(cmd.Context(), sbom.Input{Path: input, Kind: k, Name: name, Version: version, Created: created})
			if err != nil {
				return err
			}
			var summary struct {
				Namespace string            `json:"documentNamespace"`
				Packages  []json.RawMessage `json:"packages"`
				Files     []json.RawMessage `json:"files"`
			}
			if err := json.Unmarshal(doc, &summary); err != nil {
				return fmt.Errorf("sbom: read back the document: %w", err)
			}
			if out == "" {
				_, err := a.stdout.Write(doc)
				return err
			}
			if err := writeFileAtomic(out, doc); err != nil {
				return err
			}
			a.log.Passf("wrote %s: SPDX 2.3, %d packages, %d files, namespace %s", out, len(summary.Packages), len(summary.Files), summary.Namespace)
			if a.json {
				return a.printJSON(map[string]any{"file": out, "packages": len(summary.Packages), "files": len(summary.Files), "namespace": summary.Namespace})
			}
			return nil
		},
	}
	c.Flags().StringVar(&input, "input", "", "the image archive, OCI layout directory, directory or Packer manifest.json")
	c.Flags().StringVar(&kind, "kind", "", "the input kind: "+strings.Join(kinds, ", "))
	c.Flags().StringVar(&name, "name", "", "what the SBOM describes, e.g. mero-kms")
	c.Flags().StringVar(&version, "version", "", "its version, e.g. 1.3.0")
	c.Flags().StringVarP(&out, "output", "o", "", "write the SBOM to this file instead of stdout")
	return c
}
