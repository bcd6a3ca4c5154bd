package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/api/option"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/vm"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

// parseProfileMap parses repeated PROFILE=VALUE flags; each profile at most once.
func parseProfileMap(flag string, values []string) (map[release.Profile]string, error) {
	out := map[release.Profile]string{}
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || val == "" {
			return nil, outcome.UsageErrorf("--%s %q: want PROFILE=VALUE", flag, v)
		}
		p, err := release.ParseProfile(k)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %w", flag, v, err)
		}
		if _, dup := out[p]; dup {
			return nil, outcome.UsageErrorf("--%s: profile %s given twice", flag, p)
		}
		out[p] = val
	}
	return out, nil
}

// measureOutput writes published-mrtds.json to out (atomically) or, without -o, to stdout.
func (a *app) measureOutput(p *measure.Published, out string) error {
	if out == "" {
		data, err := p.Marshal()
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(data)
		return err
	}
	if err := p.Write(out); err != nil {
		return err
	}
	a.log.Passf("wrote %s (%s %s, profiles %s)", out, p.Family, p.Version, strings.Join(publishedProfiles(p), ", "))
	return nil
}

func publishedProfiles(p *measure.Published) []string {
	var s []string
	for _, prof := range slices.Sorted(maps.Keys(p.Profiles)) {
		s = append(s, string(prof))
	}
	return s
}

// hexFlag decodes an optional hex flag.
func hexFlag(name, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(v, "0x"))
	if err != nil {
		return nil, outcome.UsageErrorf("--%s %q: not hex: %v", name, v, err)
	}
	return b, nil
}

// measureKMSCommand is `mero-release measure-kms`: the KMS release's published-mrtds.json by
// image inspection (SPEC §3, KMS stage 4).
func (a *app) measureKMSCommand() *cobra.Command {
	var images, composes []string
	var version, out, osImage, appID, instanceID, keyProvider, keyProviderID, storageFS string
	c := &cobra.Command{
		Use:   "measure-kms --image PROFILE=OCI … --compose PROFILE=COMPOSE … --version V [-o published-mrtds.json]",
		Short: "Measure the KMS images by inspection: image digest, compose hash, expected MRTD/RTMR0–3",
		Long: `Measures each profile's KMS image without running it and writes published-mrtds.json:
  image_digest   the digest of the manifest index.json names in the OCI image (a layout
                 directory or a .tar/.tar.gz archive of one; every blob is verified)
  compose_hash   SHA-256 of the compose (docker compose or dstack app-compose, YAML or JSON)
                 as canonical JSON; the compose must run the image by that digest
  mrtd, rtmr0-2  the dstack OS image file's values as dstack publishes them for its version
                 and VM shape (--os-image; default: the pinned pipeline/dstack/os-image.json)
  rtmr3          dstack's runtime events replayed: system-preparing, app-id, compose-hash,
                 instance-id, boot-mr-done, key-provider, [storage-fs,] system-ready
The three profiles must come out distinct. Without -o the file goes to stdout.
Exit 2 for bad arguments or inputs, 10 when an image is inconsistent, a compose does not run
its image, or two profiles are indistinguishable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version = a.envOr(version, release.KMS.VersionVariable())
			if version == "" {
				return outcome.UsageErrorf("measure-kms: --version is required (or $%s)", release.KMS.VersionVariable())
			}
			imgs, err := parseProfileMap("image", images)
			if err != nil {
				return err
			}
			comps, err := parseProfileMap("compose", composes)
			if err != nil {
				return err
			}
			if len(imgs) == 0 {
				return outcome.UsageErrorf("measure-kms: at least one --image PROFILE=OCI is required")
			}
			for _, p := range release.Profiles() {
				_, hasImg := imgs[p]
				_, hasComp := comps[p]
				if hasImg != hasComp {
					return outcome.UsageErrorf("measure-kms: profile %s needs both --image and --compose", p)
				}
			}
			opts := measure.KMSOptions{Version: version, Log: a.log}
			if osImage != "" {
				if opts.OSImage, err = dstack.LoadOSImage(osImage); err != nil {
					return fmt.Errorf("--os-image: %w", err)
				}
			} else {
				opts.OSImage = dstack.PinnedOSImage()
			}
			a.log.Infof("measure-kms: dstack OS image %s", opts.OSImage.Describe())
			if opts.Dstack.AppID, err = hexFlag("app-id", appID); err != nil {
				return err
			}
			if opts.Dstack.InstanceID, err = hexFlag("instance-id", instanceID); err != nil {
				return err
			}
			if opts.Dstack.KeyProviderID, err = hexFlag("key-provider-id", keyProviderID); err != nil {
				return err
			}
			opts.Dstack.KeyProviderName, opts.Dstack.StorageFS = keyProvider, storageFS
			var inputs []measure.KMSInput
			for _, p := range slices.Sorted(maps.Keys(imgs)) {
				inputs = append(inputs, measure.KMSInput{Profile: p, Image: imgs[p], Compose: comps[p]})
			}
			pub, err := measure.MeasureKMS(cmd.Context(), inputs, opts)
			if err != nil {
				a.log.Failf("%v", err)
				return reported(err)
			}
			return a.measureOutput(pub, out)
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&images, "image", nil, "PROFILE=PATH of the profile's OCI image (layout directory or archive); repeatable")
	fl.StringArrayVar(&composes, "compose", nil, "PROFILE=PATH of the compose that runs it (YAML or JSON); repeatable")
	fl.StringVar(&version, "version", "", "KMS release version X.Y.Z[-rc.N] (default $MERO_KMS_VERSION)")
	fl.StringVarP(&out, "output", "o", "", "write published-mrtds.json here (default: stdout)")
	fl.StringVar(&osImage, "os-image", "", "dstack OS image file (version, VM shape, MRTD, RTMR0-2; default: the pinned pipeline/dstack/os-image.json)")
	fl.StringVar(&appID, "app-id", "", "dstack app id, 20 bytes hex (default: the compose hash's first 20 bytes)")
	fl.StringVar(&instanceID, "instance-id", "", "dstack instance id, hex (default: none, as with no_instance_id)")
	fl.StringVar(&keyProvider, "key-provider", "", "dstack key provider name (default kms)")
	fl.StringVar(&keyProviderID, "key-provider-id", "", "key provider id, hex (default: empty)")
	fl.StringVar(&storageFS, "storage-fs", "", "dstack storage-fs event value, e.g. zfs (default: no such event)")
	return c
}

// gcpFlags are the flags shared by the commands that reach GCP.
type gcpFlags struct {
	project, zone, credentialsFile, endpoint string
	pollInterval, bootTimeout, quoteTimeout  time.Duration
}

func (f *gcpFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.project, "gcp-project", "", "GCP project (default $GCP_PROJECT_ID)")
	fl.StringVar(&f.zone, "gcp-zone", "", "TDX-capable GCP zone (default $GCP_ZONE)")
	fl.StringVar(&f.credentialsFile, "gcp-credentials-file", "", "service-account key file (default: $GCP_SERVICE_ACCOUNT_KEY, else application default credentials)")
	fl.StringVar(&f.endpoint, "gcp-endpoint", "", "Compute API endpoint (tests; unauthenticated unless credentials are given)")
	fl.DurationVar(&f.pollInterval, "gcp-poll-interval", 0, "pause between polls (default 5s)")
	fl.DurationVar(&f.bootTimeout, "gcp-boot-timeout", 0, "how long a VM may take to reach RUNNING (default 10m)")
	fl.DurationVar(&f.quoteTimeout, "gcp-quote-timeout", 0, "how long the boot agent may take to publish the quote (default 10m)")
	for _, h := range []string{"gcp-endpoint", "gcp-poll-interval"} {
		_ = fl.MarkHidden(h)
	}
}

// provider opens the GCP provider the flags describe.
func (a *app) gcpProvider(ctx context.Context, f *gcpFlags) (*gcp.Provider, error) {
	cfg := gcp.Config{
		Project: a.envOr(f.project, "GCP_PROJECT_ID"), Zone: a.envOr(f.zone, "GCP_ZONE"),
		PollInterval: f.pollInterval, BootTimeout: f.bootTimeout, QuoteTimeout: f.quoteTimeout, Log: a.log,
	}
	var opts []option.ClientOption
	var key []byte
	switch {
	case f.credentialsFile != "":
		b, err := os.ReadFile(f.credentialsFile)
		if err != nil {
			return nil, outcome.UsageErrorf("--gcp-credentials-file: %v", err)
		}
		key = b
	case a.getenv("GCP_SERVICE_ACCOUNT_KEY") != "":
		key = []byte(a.getenv("GCP_SERVICE_ACCOUNT_KEY"))
	}
	if key != nil {
		o, err := gcp.CredentialsOption(key)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if f.endpoint != "" {
		opts = append(opts, option.WithEndpoint(f.endpoint))
		if key == nil {
			opts = append(opts, option.WithoutAuthentication())
		}
	} else if key == nil {
		a.log.Infof("gcp: no service-account key given: using application default credentials")
	}
	return gcp.New(ctx, cfg, opts...)
}

// measureNodeCommand is `mero-release measure-node`: the node image release's
// published-mrtds.json from quotes of ephemeral TDX VMs (SPEC §3, node stages 3–4).
func (a *app) measureNodeCommand() *cobra.Command {
	var images []string
	var providerName, version, out, trustedRoot, runID, tag string
	var concurrency int
	var gf gcpFlags
	c := &cobra.Command{
		Use:   "measure-node --provider sim|gcp --image PROFILE=IMAGE … --version V [-o published-mrtds.json]",
		Short: "Measure the node images: boot an ephemeral TDX VM per profile, verify its quote, record MRTD/RTMR0–3",
		Long: `For every --image PROFILE=IMAGE, concurrently: boot an ephemeral confidential VM, obtain a TDX
quote bound to a fresh random nonce, verify it (PCK chain to --trusted-root, nonce in the report
data, not a debug TD), record MRTD and RTMR0–3 with the quote's SHA-256, and delete the VM —
on every path, failures and interrupts included. Writes published-mrtds.json (stdout without -o).

  --provider sim   the TDX simulator; IMAGE is a node-image manifest or a directory holding
                   PROFILE.json (examples/node-image); default root: the simulator's
  --provider gcp   a GCP Confidential VM (c3-standard-4, TDX) from IMAGE (an image name or
                   projects/P/global/images/NAME) in --gcp-project/--gcp-zone; the image's boot
                   agent publishes the quote as guest attribute mero-tee/tdx-quote; default
                   root: Intel's SGX Root CA

Exit 2 for bad arguments, 10 when a quote does not verify or two profiles are
indistinguishable, 1 when a VM could not be run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			version = a.envOr(version, release.Node.VersionVariable())
			if version == "" {
				return outcome.UsageErrorf("measure-node: --version is required (or $%s)", release.Node.VersionVariable())
			}
			imgs, err := parseProfileMap("image", images)
			if err != nil {
				return err
			}
			if len(imgs) == 0 {
				return outcome.UsageErrorf("measure-node: at least one --image PROFILE=IMAGE is required")
			}
			var roots *x509.CertPool
			if trustedRoot != "" {
				if roots, err = tdxRootPool(trustedRoot); err != nil {
					return err
				}
			}
			var p vm.Provider
			switch providerName {
			case "sim", "simulator":
				sim, err := vmsim.NewDefault()
				if err != nil {
					return err
				}
				if roots == nil {
					roots = sim.RootPool()
				}
				p = sim
			case "gcp":
				g, err := a.gcpProvider(cmd.Context(), &gf)
				if err != nil {
					return err
				}
				defer g.Close()
				p = g
			default:
				return outcome.UsageErrorf("measure-node: --provider %q: want sim or gcp", providerName)
			}
			opts := measure.NodeOptions{
				Version: version, TrustedRoots: roots, Concurrency: concurrency,
				RunID: a.envOr(runID, "GITHUB_RUN_ID"), Tag: tag, Log: a.log,
			}
			pub, err := measure.MeasureNode(cmd.Context(), p, imgs, opts)
			if err != nil {
				a.log.Failf("%v", err)
				return reported(err)
			}
			return a.measureOutput(pub, out)
		},
	}
	fl := c.Flags()
	fl.StringVar(&providerName, "provider", "sim", "VM provider: sim (TDX simulator) or gcp")
	fl.StringArrayVar(&images, "image", nil, "PROFILE=IMAGE to boot for the profile; repeatable")
	fl.StringVar(&version, "version", "", "node image release version X.Y.Z[-rc.N] (default $MERO_TEE_VERSION)")
	fl.StringVarP(&out, "output", "o", "", "write published-mrtds.json here (default: stdout)")
	fl.StringVar(&trustedRoot, "trusted-root", "", "PEM roots quotes must chain to (default: simulator root for sim, Intel SGX Root CA for gcp)")
	fl.StringVar(&runID, "run-id", "", "run id label of the VMs (default $GITHUB_RUN_ID, else local)")
	fl.StringVar(&tag, "tag", "", "release tag label of the VMs")
	fl.IntVar(&concurrency, "concurrency", measure.DefaultNodeConcurrency, "VMs running at once")
	gf.register(c)
	return c
}

// gcpCommand is `mero-release gcp`: maintenance of the GCP project's ephemeral VMs.
func (a *app) gcpCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "gcp",
		Short: "GCP maintenance: sweep leftover ephemeral VMs",
	}
	c.AddCommand(a.gcpSweepCommand())
	return c
}

func (a *app) gcpSweepCommand() *cobra.Command {
	var olderThan time.Duration
	var dryRun bool
	var gf gcpFlags
	c := &cobra.Command{
		Use:   "sweep [--older-than 24h] [--dry-run] [--gcp-project P --gcp-zone Z --gcp-credentials-file F]",
		Short: "Delete mero-release=ephemeral VMs older than --older-than (default 24h) and report them",
		Long: `Lists the zone's VMs labelled mero-release=ephemeral and deletes those created more than
--older-than ago (creationTimestamp, else the created-at label). One [PASS] line per deleted VM,
[FAIL] per VM that could not be deleted; --json prints the report (cutoff, deleted, kept,
failed) on stdout. Exit 1 when a deletion failed, 2 for bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return outcome.UsageErrorf("gcp sweep: --older-than %s: want a positive duration such as 24h", olderThan)
			}
			g, err := a.gcpProvider(cmd.Context(), &gf)
			if err != nil {
				return err
			}
			defer g.Close()
			rep, err := vm.Sweep(cmd.Context(), g, vm.SweepOptions{OlderThan: olderThan, DryRun: dryRun, Log: a.log})
			if rep != nil {
				if a.json {
					if jerr := a.printJSON(rep); jerr != nil {
						return jerr
					}
				}
				verb := "deleted"
				if dryRun {
					verb = "would delete"
				}
				a.log.Infof("gcp sweep: %s %d VM(s) created before %s; kept %d; %d failed", verb, len(rep.Deleted), rep.Cutoff.Format(time.RFC3339), len(rep.Kept), len(rep.Failed))
			}
			if err != nil && rep != nil {
				return reported(err)
			}
			return err
		},
	}
	c.Flags().DurationVar(&olderThan, "older-than", vm.DefaultSweepAge, "minimum age of a VM to delete")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be deleted without deleting")
	gf.register(c)
	return c
}
