package packer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/calimero-network/mero-release/pipeline/release"
)

// TestTemplate parses examples/node-image/packer/mero-tee.pkr.hcl with HCL's own parser (Packer
// itself cannot run here: its googlecompute plugin downloads at `packer init`) and checks what
// the release relies on: the pinned base image is DefaultBaseImage, the plugin is pinned, the
// build machine is TDX-capable, one build per profile, and the manifest post-processor records
// the profile and the base image.
func TestTemplate(t *testing.T) {
	path := filepath.Join(template(t), "mero-tee.pkr.hcl")
	f, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	body := f.Body.(*hclsyntax.Body)
	literal := func(e hclsyntax.Expression) string {
		v, d := e.Value(nil)
		if d.HasErrors() || !v.IsKnown() || v.Type() != cty.String {
			return ""
		}
		return v.AsString()
	}
	defaults := map[string]string{}
	var builds []*hclsyntax.Block
	var plugin, machine string
	var features []string
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			if a, ok := b.Body.Attributes["default"]; ok {
				defaults[b.Labels[0]] = literal(a.Expr)
			}
		case "packer":
			for _, rp := range b.Body.Blocks {
				if a, ok := rp.Body.Attributes["googlecompute"]; ok {
					obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
					if !ok {
						t.Fatal("required_plugins.googlecompute is not an object")
					}
					for _, item := range obj.Items {
						if k, _ := item.KeyExpr.Value(nil); k.AsString() == "version" {
							plugin = literal(item.ValueExpr)
						}
					}
				}
			}
		case "source":
			if a, ok := b.Body.Attributes["machine_type"]; ok {
				machine = literal(a.Expr)
			}
			if a, ok := b.Body.Attributes["image_guest_os_features"]; ok {
				if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
					for _, e := range tup.Exprs {
						features = append(features, literal(e))
					}
				}
			}
		case "build":
			builds = append(builds, b)
		}
	}
	base := DefaultBaseImage()
	for name, want := range map[string]string{"source_image": base.SourceImage, "source_image_family": base.SourceImageFamily, "source_image_project": base.SourceImageProject} {
		if defaults[name] != want {
			t.Errorf("variable %s defaults to %q, want the pinned %q", name, defaults[name], want)
		}
	}
	if !strings.HasPrefix(plugin, "= ") {
		t.Errorf("the googlecompute plugin is not pinned to one version: %q", plugin)
	}
	if machine != "c3-standard-4" || !slices.Contains(features, "TDX_CAPABLE") {
		t.Errorf("build machine %q, guest OS features %v: want c3-standard-4 and TDX_CAPABLE", machine, features)
	}
	if len(builds) != 1 {
		t.Fatalf("%d build blocks, want 1", len(builds))
	}
	var names []string
	var manifest *hclsyntax.Block
	for _, b := range builds[0].Body.Blocks {
		switch b.Type {
		case "source":
			if a, ok := b.Body.Attributes["name"]; ok {
				names = append(names, literal(a.Expr))
			}
		case "post-processor":
			if b.Labels[0] == "manifest" {
				manifest = b
			}
		}
	}
	if !slices.Equal(names, release.ProfileNames()) {
		t.Errorf("builds %v, want one per profile %v", names, release.ProfileNames())
	}
	if manifest == nil {
		t.Fatal("no manifest post-processor")
	}
	if out := literal(manifest.Body.Attributes["output"].Expr); out != ManifestName {
		t.Errorf("the manifest goes to %q, want %q", out, ManifestName)
	}
	var keys []string
	for _, item := range manifest.Body.Attributes["custom_data"].Expr.(*hclsyntax.ObjectConsExpr).Items {
		if k, d := item.KeyExpr.Value(nil); !d.HasErrors() && k.Type() == cty.String {
			keys = append(keys, k.AsString())
		}
	}
	for _, want := range []string{"profile", "source_image", "source_image_family", "source_image_project"} {
		if !slices.Contains(keys, want) {
			t.Errorf("custom_data lacks %s: %v", want, keys)
		}
	}
	// the provisioning script the template names is there and executable
	st, err := os.Stat(filepath.Join(template(t), "provision.sh"))
	if err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Errorf("provision.sh: %v, mode %v", err, st)
	}
}
