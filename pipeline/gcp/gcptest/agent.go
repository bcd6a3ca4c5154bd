package gcptest

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"sync"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/gcp/guestapi"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// ImageResolver maps a VM's boot image (projects/P/global/images/NAME) and profile to the
// node-image description the simulator boots.
type ImageResolver func(image, profile string) (*tdxsim.Image, error)

// SimAgent plays the mero-tee boot agent with the TDX simulator, following the contract of
// package gcp: it boots the image resolve returns, reads the nonce from metadata
// mero-tee-nonce, and publishes a quote with REPORTDATA = nonce, base64, as guest attribute
// mero-tee/tdx-quote (in parts when partSize > 0 and the text is longer). When it cannot, it
// publishes mero-tee/tdx-quote-error. It also answers the current quote request (metadata
// mero-tee-quote-request) in mero-tee/quote-<id>, or quote-<id>-error. Each answer is produced
// once per instance and request; the real agent is pipeline/agent (see agenttest).
func SimAgent(auth *tdxsim.Authority, resolve ImageResolver, partSize int) Agent {
	var mu sync.Mutex
	published := map[string]map[string]string{}
	return func(inst *computepb.Instance) map[string]string {
		mu.Lock()
		defer mu.Unlock()
		req, _ := Metadata(inst, gcp.MetadataQuoteRequest)
		key := fmt.Sprint(inst.GetId()) + "|" + req
		if attrs, ok := published[key]; ok {
			return attrs
		}
		attrs := simPublish(auth, resolve, partSize, inst)
		if req != "" {
			maps.Copy(attrs, simAnswer(auth, resolve, inst, req))
		}
		published[key] = attrs
		return attrs
	}
}

// simAnswer answers a quote request as the agent would.
func simAnswer(auth *tdxsim.Authority, resolve ImageResolver, inst *computepb.Instance, value string) map[string]string {
	id, _, _ := strings.Cut(value, ":")
	r, err := guestapi.ParseRequest(value)
	if err != nil {
		return map[string]string{guestapi.ErrorKey(guestapi.ResponseKey(id)): err.Error()}
	}
	profile, _ := Metadata(inst, gcp.MetadataProfile)
	img, err := resolve(SourceImage(inst), profile)
	if err != nil {
		return map[string]string{guestapi.ErrorKey(guestapi.ResponseKey(r.ID)): err.Error()}
	}
	booted, err := auth.Boot(context.Background(), img)
	if err != nil {
		return map[string]string{guestapi.ErrorKey(guestapi.ResponseKey(r.ID)): err.Error()}
	}
	defer booted.Shutdown()
	q, err := booted.Quote(r.ReportData)
	if err != nil {
		return map[string]string{guestapi.ErrorKey(guestapi.ResponseKey(r.ID)): err.Error()}
	}
	return map[string]string{guestapi.ResponseKey(r.ID): base64.StdEncoding.EncodeToString(q)}
}

func simPublish(auth *tdxsim.Authority, resolve ImageResolver, partSize int, inst *computepb.Instance) map[string]string {
	fail := func(format string, args ...any) map[string]string {
		return map[string]string{gcp.QuoteErrorKey: fmt.Sprintf(format, args...)}
	}
	nonceHex, _ := Metadata(inst, gcp.MetadataNonce)
	profile, _ := Metadata(inst, gcp.MetadataProfile)
	b, err := hex.DecodeString(nonceHex)
	if err != nil || len(b) != vm.NonceSize {
		return fail("metadata %s: want %d hex-encoded bytes", gcp.MetadataNonce, vm.NonceSize)
	}
	var nonce [vm.NonceSize]byte
	copy(nonce[:], b)
	img, err := resolve(SourceImage(inst), profile)
	if err != nil {
		return fail("boot image: %v", err)
	}
	booted, err := auth.Boot(context.Background(), img)
	if err != nil {
		return fail("boot: %v", err)
	}
	defer booted.Shutdown()
	q, err := booted.Quote(vm.ReportDataFor(nonce))
	if err != nil {
		return fail("quote: %v", err)
	}
	text := base64.StdEncoding.EncodeToString(q)
	if partSize <= 0 || len(text) <= partSize {
		return map[string]string{gcp.QuoteKey: text}
	}
	attrs := map[string]string{}
	n := 0
	for ; len(text) > 0; n++ {
		k := min(partSize, len(text))
		attrs[fmt.Sprintf("%s-%d", gcp.QuoteKey, n)] = text[:k]
		text = text[k:]
	}
	attrs[gcp.QuotePartsKey] = fmt.Sprint(n)
	return attrs
}
