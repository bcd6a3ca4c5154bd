package gcp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"

	"github.com/calimero-network/mero-release/pipeline/gcp/guestapi"
	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// setMetadataAttempts bounds the retries of a setMetadata refused because the instance's
// metadata changed between read and write (HTTP 412, a stale fingerprint).
const setMetadataAttempts = 3

// instance is a running GCP VM.
type instance struct {
	p    *Provider
	name string
	// mu serialises quote requests: the instance metadata holds one request at a time.
	mu sync.Mutex
}

func (i *instance) Name() string { return i.name }

// Quote polls the VM's guest attributes until its agent has published the boot quote (see
// the package comment), bounded by Config.QuoteTimeout.
func (i *instance) Quote(ctx context.Context) ([]byte, error) {
	return i.p.Quote(ctx, i.name)
}

// QuoteReportData asks the VM's agent for a quote over reportData (the node's half of key
// release) through the instance metadata and waits for the answer in its guest attributes,
// bounded by Config.QuoteTimeout. The caller verifies the quote and its report data.
func (i *instance) QuoteReportData(ctx context.Context, reportData [64]byte) ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.p.QuoteReportData(ctx, i.name, reportData)
}

// Quote waits for the quote the agent of VM name publishes in guest attribute
// mero-tee/tdx-quote and returns the decoded bytes.
func (p *Provider) Quote(ctx context.Context, name string) ([]byte, error) {
	raw, err := p.waitQuote(ctx, name, guestapi.QuoteKey)
	var ae *guestapi.AgentError
	if errors.As(err, &ae) {
		return nil, fmt.Errorf("gcp: vm %s: boot %w", name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("gcp: vm %s: %w", name, err)
	}
	p.cfg.Log.Infof("gcp: VM %s published its TDX quote (%d bytes)", name, len(raw))
	return raw, nil
}

// QuoteReportData writes a quote request for reportData into VM name's metadata (key
// mero-tee-quote-request, a fresh request id) and waits for the agent's answer in guest
// attribute mero-tee/quote-<id>. Concurrent calls for one VM must be serialised by the caller.
func (p *Provider) QuoteReportData(ctx context.Context, name string, reportData [64]byte) ([]byte, error) {
	var idBytes [8]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		return nil, fmt.Errorf("gcp: vm %s: request id: %w", name, err)
	}
	req := guestapi.Request{ID: hex.EncodeToString(idBytes[:]), ReportData: reportData}
	value, err := guestapi.FormatRequest(req)
	if err != nil {
		return nil, err
	}
	if err := p.setMetadata(ctx, name, guestapi.MetadataQuoteRequest, value); err != nil {
		return nil, fmt.Errorf("gcp: vm %s: send quote request %s: %w", name, req.ID, err)
	}
	raw, err := p.waitQuote(ctx, name, guestapi.ResponseKey(req.ID))
	if err != nil {
		return nil, fmt.Errorf("gcp: vm %s: quote request %s: %w", name, req.ID, err)
	}
	p.cfg.Log.Infof("gcp: VM %s answered quote request %s (%d bytes)", name, req.ID, len(raw))
	return raw, nil
}

// setMetadata sets one instance-metadata item, keeping the others: a read of the instance's
// metadata fingerprint, then instances.setMetadata, retried when the fingerprint went stale.
func (p *Provider) setMetadata(ctx context.Context, name, key, value string) error {
	var last error
	for range setMetadataAttempts {
		inst, err := p.instances.Get(ctx, &computepb.GetInstanceRequest{Project: p.cfg.Project, Zone: p.cfg.Zone, Instance: name})
		if err != nil {
			return fmt.Errorf("get instance: %w", err)
		}
		md := &computepb.Metadata{Fingerprint: inst.GetMetadata().Fingerprint}
		found := false
		for _, it := range inst.GetMetadata().GetItems() {
			if it.GetKey() == key {
				it = &computepb.Items{Key: ptr(key), Value: ptr(value)}
				found = true
			}
			md.Items = append(md.Items, it)
		}
		if !found {
			md.Items = append(md.Items, &computepb.Items{Key: ptr(key), Value: ptr(value)})
		}
		op, err := p.instances.SetMetadata(ctx, &computepb.SetMetadataInstanceRequest{Project: p.cfg.Project, Zone: p.cfg.Zone, Instance: name, MetadataResource: md})
		if err != nil {
			if isStatus(err, http.StatusPreconditionFailed) {
				last = err
				continue
			}
			return fmt.Errorf("set metadata: %w", err)
		}
		return p.waitOp(ctx, op, "set metadata of instance "+name)
	}
	return fmt.Errorf("set metadata: the fingerprint went stale %d times: %w", setMetadataAttempts, last)
}

// waitQuote polls the VM's mero-tee guest attributes until the agent has published the value
// of key (whole or in parts) and returns it decoded, bounded by Config.QuoteTimeout. A value
// that is not base64, or is empty, is a verification failure (exit 10); an error the agent
// published ends the wait at once (*guestapi.AgentError).
func (p *Provider) waitQuote(ctx context.Context, name, key string) ([]byte, error) {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.QuoteTimeout)
	defer cancel()
	queryPath := GuestAttributeNamespace + "/"
	state := "no guest attributes yet"
	for {
		ga, err := p.instances.GetGuestAttributes(wctx, &computepb.GetGuestAttributesInstanceRequest{
			Project: p.cfg.Project, Zone: p.cfg.Zone, Instance: name, QueryPath: &queryPath,
		})
		switch {
		case err == nil:
			raw, done, why, err := quoteFromAttributes(ga, key)
			if err != nil {
				return nil, err
			}
			if done {
				return raw, nil
			}
			state = why
		case isNotFound(err):
			state = "guest attribute " + GuestAttributeNamespace + "/" + key + " not published yet"
		case wctx.Err() == nil && isAPIError(err):
			return nil, fmt.Errorf("get guest attributes: %w", err)
		case wctx.Err() == nil:
			state = "get guest attributes: " + err.Error() // transport hiccup: keep polling
		}
		if err := ctxio.Sleep(wctx, p.cfg.PollInterval); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for the TDX quote in %s/%s: %w", GuestAttributeNamespace, key, ctx.Err())
			}
			return nil, fmt.Errorf("no TDX quote in guest attribute %s/%s within %s (%s); does the image run mero-tee-agent?",
				GuestAttributeNamespace, key, p.cfg.QuoteTimeout, state)
		}
	}
}

// quoteFromAttributes extracts the quote published under key from the mero-tee guest
// attributes. done is false (with why) while the agent has not finished publishing; err is
// set when it reported an error or published something that is not a quote encoding.
func quoteFromAttributes(ga *computepb.GuestAttributes, key string) (raw []byte, done bool, why string, err error) {
	attrs := map[string]string{}
	for _, it := range ga.GetQueryValue().GetItems() {
		if it.GetNamespace() == GuestAttributeNamespace {
			attrs[it.GetKey()] = it.GetValue()
		}
	}
	if ga.GetVariableKey() == GuestAttributeNamespace+"/"+key && ga.VariableValue != nil {
		attrs[key] = ga.GetVariableValue()
	}
	text, done, why, err := guestapi.Join(attrs, key)
	var ae *guestapi.AgentError
	switch {
	case errors.As(err, &ae):
		return nil, false, "", err
	case err != nil:
		return nil, false, "", outcome.VerificationErrorf("%v", err)
	case !done:
		return nil, false, why, nil
	}
	field := GuestAttributeNamespace + "/" + key
	if _, parts := attrs[guestapi.PartsKey(key)]; parts {
		field = fmt.Sprintf("%s/%s-0…%s", GuestAttributeNamespace, key, attrs[guestapi.PartsKey(key)])
	}
	raw, derr := base64.StdEncoding.Strict().DecodeString(text)
	if derr != nil {
		return nil, false, "", outcome.VerificationErrorf("guest attribute %s: not standard base64: %v", field, derr)
	}
	if len(raw) == 0 {
		return nil, false, "", outcome.VerificationErrorf("guest attribute %s: empty quote", field)
	}
	return raw, true, "", nil
}

// isStatus reports whether err is an API error with HTTP status code.
func isStatus(err error, code int) bool {
	var ae *apierror.APIError
	if errors.As(err, &ae) && ae.HTTPCode() == code {
		return true
	}
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}
