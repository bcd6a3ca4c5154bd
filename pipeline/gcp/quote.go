package gcp

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// maxQuoteParts bounds tdx-quote-parts.
const maxQuoteParts = 64

// instance is a running GCP VM.
type instance struct {
	p    *Provider
	name string
}

func (i *instance) Name() string { return i.name }

// Quote polls the VM's guest attributes until its boot agent has published the quote (see
// the package comment), bounded by Config.QuoteTimeout.
func (i *instance) Quote(ctx context.Context) ([]byte, error) {
	return i.p.Quote(ctx, i.name)
}

// Quote waits for the quote the boot agent of VM name publishes in guest attribute
// mero-tee/tdx-quote and returns the decoded bytes.
func (p *Provider) Quote(ctx context.Context, name string) ([]byte, error) {
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
			raw, done, why, err := quoteFromAttributes(ga)
			if err != nil {
				return nil, fmt.Errorf("gcp: vm %s: %w", name, err)
			}
			if done {
				p.cfg.Log.Infof("gcp: VM %s published its TDX quote (%d bytes)", name, len(raw))
				return raw, nil
			}
			state = why
		case isNotFound(err):
			state = "guest attribute " + GuestAttributeNamespace + "/" + QuoteKey + " not published yet"
		case wctx.Err() == nil && isAPIError(err):
			return nil, fmt.Errorf("gcp: vm %s: get guest attributes: %w", name, err)
		case wctx.Err() == nil:
			state = "get guest attributes: " + err.Error() // transport hiccup: keep polling
		}
		if err := ctxio.Sleep(wctx, p.cfg.PollInterval); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("gcp: vm %s: wait for the TDX quote: %w", name, ctx.Err())
			}
			return nil, fmt.Errorf("gcp: vm %s: no TDX quote in guest attribute %s/%s within %s (%s); does the image run the mero-tee boot agent?",
				name, GuestAttributeNamespace, QuoteKey, p.cfg.QuoteTimeout, state)
		}
	}
}

// quoteFromAttributes extracts the quote from the mero-tee guest attributes. done is false
// (with why) while the agent has not finished publishing; err is set when it reported an
// error or published something that is not a quote encoding.
func quoteFromAttributes(ga *computepb.GuestAttributes) (raw []byte, done bool, why string, err error) {
	attrs := map[string]string{}
	for _, it := range ga.GetQueryValue().GetItems() {
		if it.GetNamespace() == GuestAttributeNamespace {
			attrs[it.GetKey()] = it.GetValue()
		}
	}
	if ga.GetVariableKey() == GuestAttributeNamespace+"/"+QuoteKey && ga.VariableValue != nil {
		attrs[QuoteKey] = ga.GetVariableValue()
	}
	if msg, ok := attrs[QuoteErrorKey]; ok {
		return nil, false, "", fmt.Errorf("boot agent reported %s/%s: %s", GuestAttributeNamespace, QuoteErrorKey, msg)
	}
	text, ok := attrs[QuoteKey]
	field := GuestAttributeNamespace + "/" + QuoteKey
	if !ok {
		partsText, ok := attrs[QuotePartsKey]
		if !ok {
			return nil, false, "guest attribute " + field + " not published yet", nil
		}
		n, perr := strconv.Atoi(partsText)
		if perr != nil || n < 1 || n > maxQuoteParts {
			return nil, false, "", outcome.VerificationErrorf("guest attribute %s/%s: %q is not a part count 1–%d", GuestAttributeNamespace, QuotePartsKey, partsText, maxQuoteParts)
		}
		text = ""
		for i := range n {
			part, ok := attrs[fmt.Sprintf("%s-%d", QuoteKey, i)]
			if !ok {
				return nil, false, fmt.Sprintf("quote part %d of %d not published yet", i, n), nil
			}
			text += part
		}
		field = fmt.Sprintf("%s/%s-0…%d", GuestAttributeNamespace, QuoteKey, n-1)
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
