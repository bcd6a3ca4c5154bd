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
	for _, want := range []string{"profile", "source_image", "source_image_family", "source_image_project", CustomPackagesFile, CustomIdentityFile} {
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

// TestTemplateInstallsTheAgentAndRecords checks the threads between the template,
// provision.sh and the unit file: the agent and its unit are uploaded where provision.sh
// installs them from, the unit starts what provision.sh installs, and the record files
// provision.sh writes are the ones the template downloads under the names custom_data gives.
func TestTemplateInstallsTheAgentAndRecords(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(template(t), name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	hcl, script, unit := read("mero-tee.pkr.hcl"), read("provision.sh"), read("mero-tee-agent.service")
	for _, c := range []struct{ text, want, why string }{
		{hcl, `"${path.root}/` + AgentName + `"`, "the template uploads the agent"},
		{hcl, `"${path.root}/mero-tee-agent.service"`, "the template uploads the unit"},
		{script, "install -m 0755 /tmp/mero-tee-agent /usr/local/bin/mero-tee-agent", "provision.sh installs the agent"},
		{script, "systemctl enable mero-tee-agent.service", "provision.sh enables the unit"},
		{unit, "ExecStart=/usr/local/bin/mero-tee-agent\n", "the unit starts the installed agent"},
		{unit, "WantedBy=multi-user.target", "the unit starts at boot"},
		{script, `"$rec/packages.tsv"`, "provision.sh writes the package list"},
		{script, `"$rec/identity.env"`, "provision.sh writes the identity"},
		{hcl, `source      = "/var/tmp/mero-record/packages.tsv"`, "the template downloads the package list"},
		{hcl, `source      = "/var/tmp/mero-record/identity.env"`, "the template downloads the identity"},
		{script, "rec=/var/tmp/mero-record", "provision.sh writes the record where the template reads it"},
		{hcl, `rm -rf /var/tmp/mero-record`, "the record is removed from the image"},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("%s: %q not found", c.why, c.want)
		}
	}
	for _, name := range []string{"os-packages-${source.name}.tsv", "image-identity-${source.name}.env"} {
		if n := strings.Count(hcl, `"`+name+`"`); n != 2 {
			t.Errorf("%s appears %d times in the template; want once as a download destination and once in custom_data", name, n)
		}
	}
	// Each profile does something of its own, not only a command-line flag.
	for _, want := range []string{"overlayroot=tmpfs", "systemctl mask ssh.service", "serial-getty@ttyS0", "passwd -l root", "update-initramfs -u"} {
		if !strings.Contains(script, want) {
			t.Errorf("provision.sh lacks %q", want)
		}
	}
}
