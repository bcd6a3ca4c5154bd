package e2e

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/phala"
	"github.com/calimero-network/mero-release/pipeline/policy"
)

// PhalaKMS launches each KMS of the suite as a dstack CVM on Phala Cloud (--kms-provider
// phala): it provisions the release's app-compose for the profile's image, checks that Phala
// computed the compose hash the release measured, creates the CVM with the KMS configuration
// as encrypted environment (MERO_KMS_VERSION, MERO_KMS_PROFILE, MERO_KMS_POLICY_URL,
// MERO_KMS_POLICY_SHA256), waits until it runs, and probes GET /health at its public endpoint.
// The instance's Close deletes the CVM; so does every failure after the CVM was created.
type PhalaKMS struct {
	// Client calls the Phala Cloud API; required.
	Client *phala.Client
	// AppCompose renders the KMS's dstack app-compose for an image reference (the sample KMS:
	// examples/kms.AppCompose); required.
	AppCompose func(imageRef string) ([]byte, error)
	// PolicyURL returns the URL the CVM fetches policy p from (a release asset's download
	// URL); nil hands the CVM the policy inline (policy.DataURL, in the encrypted
	// environment), as a release run's E2E must: its policies are published only after E2E.
	PolicyURL func(ctx context.Context, p *policy.Loaded) (string, error)
	// TrustedRoots are the roots the KMS's quotes chain to (Intel's SGX Root CA on Phala);
	// required.
	TrustedRoots *x509.CertPool
	// InstanceType is the Phala instance type; empty means the pinned dstack OS shape's.
	InstanceType string
	// RunID names the CVMs (phala.NamePrefix + RunID + profile).
	RunID string
	// PollInterval and Polls bound the wait for a running CVM (defaults 5 s, 120 polls).
	PollInterval time.Duration
	Polls        int
	// DeleteAttempts is how often a failed deletion is retried (default 3).
	DeleteAttempts int
	// Rand encrypts the environment; nil means crypto/rand.
	Rand io.Reader
	// Log receives progress lines.
	Log *outcome.Logger

	mu               sync.Mutex
	created, deleted int
}

// PullsImages reports true: a CVM pulls the release's recorded image by digest (e2e.ImagePuller).
func (l *PhalaKMS) PullsImages() bool { return true }

// Counts returns how many CVMs this launcher created and how many it deleted.
func (l *PhalaKMS) Counts() (created, deleted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.created, l.deleted
}

// Launch deploys the KMS of policy p as a CVM and returns it once healthy.
func (l *PhalaKMS) Launch(ctx context.Context, p *policy.Loaded, d KMSDeployment) (KMSInstance, error) {
	switch {
	case l.Client == nil || l.AppCompose == nil || l.TrustedRoots == nil:
		return nil, outcome.UsageErrorf("phala KMS: client, app-compose renderer and trusted roots are required")
	case p == nil || p.Policy == nil:
		return nil, outcome.UsageErrorf("phala KMS: no attestation policy")
	case d.Image == "":
		return nil, outcome.UsageErrorf("phala KMS %s (%s): the KMS release records no image for the profile", p.Policy.KMSVersion, p.Policy.Profile)
	}
	name := fmt.Sprintf("KMS %s (%s)", p.Policy.KMSVersion, p.Policy.Profile)
	compose, err := l.AppCompose(d.Image)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", name, err)
	}
	policyURL := policy.DataURL(p.Data)
	if l.PolicyURL != nil {
		if policyURL, err = l.PolicyURL(ctx, p); err != nil {
			return nil, fmt.Errorf("deploy %s: policy URL: %w", name, err)
		}
	}
	instanceType := l.InstanceType
	if instanceType == "" {
		instanceType = "tdx.small"
	}
	cvmName := phala.NamePrefix + strings.ToLower(l.RunID) + "-" + string(p.Policy.Profile)
	prov, err := l.Client.Provision(ctx, phala.ProvisionRequest{Name: cvmName, InstanceType: instanceType, KMS: "PHALA",
		PreferDev: false, Listed: false, ComposeFile: json.RawMessage(compose)})
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", name, err)
	}
	if d.ComposeHash != "" && prov.ComposeHash != d.ComposeHash {
		return nil, outcome.VerificationErrorf("deploy %s: Phala computed compose hash %s, the release measured %s", name, prov.ComposeHash, d.ComposeHash)
	}
	rnd := l.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	env := map[string]string{
		policy.EnvKMSVersion: p.Policy.KMSVersion, policy.EnvKMSProfile: string(p.Policy.Profile),
		policy.EnvPolicyURL: policyURL, policy.EnvPolicySHA256: p.SHA256,
	}
	encrypted, err := phala.EncryptEnv(prov.EnvPubKey, env, rnd)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", name, err)
	}
	cvm, err := l.Client.Create(ctx, phala.CreateRequest{AppID: prov.AppID, ComposeHash: prov.ComposeHash, EncryptedEnv: encrypted})
	if err != nil {
		// The create may have happened before the error reached us: delete by app id (a CVM
		// that does not exist is no error).
		return nil, errors.Join(fmt.Errorf("deploy %s: %w", name, err), l.remove(ctx, prov.AppID, false))
	}
	l.mu.Lock()
	l.created++
	l.mu.Unlock()
	inst := &phalaInstance{l: l, appID: prov.AppID, name: name}
	l.Log.Infof("%s: CVM %s (app %s, %s) created", name, cvmName, prov.AppID, cvm.Status)
	running, err := l.Client.WaitRunning(ctx, prov.AppID, l.interval(), l.polls())
	if err == nil {
		inst.url = strings.TrimSuffix(running.Endpoint(), "/")
		err = l.probe(ctx, inst.url, p)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("deploy %s: %w", name, err), inst.Close())
	}
	l.Log.Infof("%s: CVM of app %s running at %s", name, prov.AppID, inst.url)
	return inst, nil
}

// probe checks GET /health: the KMS runs the policy's version and profile.
func (l *PhalaKMS) probe(ctx context.Context, url string, p *policy.Loaded) error {
	c, err := kmsclient.New(url, kmsclient.Options{TrustedRoots: l.TrustedRoots})
	if err != nil {
		return err
	}
	h, err := c.Health(ctx)
	if err != nil {
		return fmt.Errorf("probe %s/health: %w", url, err)
	}
	if h.KMSVersion != p.Policy.KMSVersion || h.Profile != string(p.Policy.Profile) {
		return outcome.VerificationErrorf("probe %s/health: KMS %s (%s), want %s (%s)", url, h.KMSVersion, h.Profile, p.Policy.KMSVersion, p.Policy.Profile)
	}
	return nil
}

func (l *PhalaKMS) interval() time.Duration {
	if l.PollInterval > 0 {
		return l.PollInterval
	}
	return 5 * time.Second
}

func (l *PhalaKMS) polls() int {
	if l.Polls > 0 {
		return l.Polls
	}
	return 120
}

// remove deletes the CVM of appID, retrying failures; counted says whether the CVM was
// counted as created.
func (l *PhalaKMS) remove(ctx context.Context, appID string, counted bool) error {
	attempts := l.DeleteAttempts
	if attempts <= 0 {
		attempts = 3
	}
	// Deletion must happen even when the run's context is cancelled.
	ctx = context.WithoutCancel(ctx)
	var err error
	for range attempts {
		if err = l.Client.Delete(ctx, appID); err == nil {
			if counted {
				l.mu.Lock()
				l.deleted++
				l.mu.Unlock()
			}
			return nil
		}
	}
	l.Log.Errorf("phala: CVM of app %s NOT deleted after %d attempts: %v (the sweeper deletes it after %s)", appID, attempts, err, phala.SweepAge)
	return fmt.Errorf("delete CVM of app %s: %w", appID, err)
}

// phalaInstance is a KMS running in a Phala CVM.
type phalaInstance struct {
	l     *PhalaKMS
	appID string
	name  string
	url   string

	once sync.Once
	err  error
}

func (i *phalaInstance) URL() string                  { return i.url }
func (i *phalaInstance) TrustedRoots() *x509.CertPool { return i.l.TrustedRoots }

// Close deletes the CVM (once; later calls return the first result).
func (i *phalaInstance) Close() error {
	i.once.Do(func() {
		i.err = i.l.remove(context.Background(), i.appID, true)
		if i.err == nil {
			i.l.Log.Infof("%s: CVM of app %s deleted", i.name, i.appID)
		}
	})
	return i.err
}
