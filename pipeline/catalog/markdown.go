package catalog

import (
	"bytes"
	"fmt"
	"strings"
)

// DocsFile is the generated documentation of the catalog, beside it in every catalog pull
// request (the PR doc guard requires a documentation change with a catalog change).
const DocsFile = "docs/compatibility.md"

// Markdown renders the catalog as the page DocsFile holds: one table row per entry, in the
// catalog's order. The output depends only on the catalog.
func (c *Catalog) Markdown() []byte {
	var b bytes.Buffer
	b.WriteString("# Compatibility catalog\n\n")
	fmt.Fprintf(&b, "<!-- Generated from %s by mero-release (catalog docs); do not edit by hand. -->\n\n", DefaultFile)
	fmt.Fprintf(&b, "The KMS (`mero-kms`) and node-image (`mero-tee`) releases that work together, as `%s` lists them.\n", DefaultFile)
	b.WriteString("A pair is added only after the KMS–node E2E suite passed for it, through a pull request.\n\n")
	if len(c.Entries) == 0 {
		b.WriteString("No pair is listed yet.\n")
		return b.Bytes()
	}
	b.WriteString("| KMS | node image | profiles | tested | notes |\n|---|---|---|---|---|\n")
	for _, e := range c.Entries {
		var profiles []string
		for _, p := range e.Profiles {
			profiles = append(profiles, string(p))
		}
		tested := "no"
		if e.Tested {
			tested = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(e.KMS), cell(e.NodeImage), cell(strings.Join(profiles, ", ")), tested, cell(e.Notes))
	}
	return b.Bytes()
}

// cell escapes a table cell: pipes and line breaks would end it.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
