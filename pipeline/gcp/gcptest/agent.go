package gcptest

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/pipeline/gcp"
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
// publishes mero-tee/tdx-quote-error. The quote is produced once per instance.
func SimAgent(auth *tdxsim.Authority, resolve ImageResolver, partSize int) Agent {
	var mu sync.Mutex
	published := map[uint64]map[string]string{}
	return func(inst *computepb.Instance) map[string]string {
		mu.Lock()
		defer mu.Unlock()
		if attrs, ok := published[inst.GetId()]; ok {
			return attrs
		}
		attrs := simPublish(auth, resolve, partSize, inst)
		published[inst.GetId()] = attrs
		return attrs
	}
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
