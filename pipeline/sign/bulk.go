package sign

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
)

// Item is one artifact of a bulk verification: its name (for messages), its bundle's JSON and
// how to open its content.
type Item struct {
	Name   string
	Bundle []byte
	Open   func() (io.ReadCloser, error)
}

// ItemResult is the verdict on one Item: Result when it verified, else Err (a verification
// error, exit 10, or the error that stopped reading the artifact).
type ItemResult struct {
	Name   string
	Result *Result
	Err    error
}

// VerifyAll verifies every item against one policy in one process: the policy is checked once,
// each artifact is read once and at most workers items are in flight (0: GOMAXPROCS). The
// results are in the order of items. The error is only for a bad policy (a usage error) or a
// cancelled context; each item's verdict is in its ItemResult.
func (v *Verifier) VerifyAll(ctx context.Context, items []Item, policy Policy, workers int) ([]ItemResult, error) {
	cp, err := compilePolicy(policy)
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([]ItemResult, len(items))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(items)) {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for i := range jobs {
				out[i] = ItemResult{Name: items[i].Name}
				out[i].Result, out[i].Err = v.verifyItem(ctx, cp, items[i], buf)
			}
		})
	}
	for i := range items {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// verifyItem parses one item's bundle, hashes its artifact with the bundle's algorithm and
// verifies the bundle over that digest.
func (v *Verifier) verifyItem(ctx context.Context, cp *compiledPolicy, it Item, buf []byte) (*Result, error) {
	b, err := ParseBundle(it.Bundle)
	if err != nil {
		return nil, err
	}
	h, err := NewDigestHash(BundleDigestAlgorithm(b))
	if err != nil {
		return nil, err
	}
	rc, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", it.Name, err)
	}
	defer rc.Close()
	if _, err := io.CopyBuffer(h, ctxio.Reader(ctx, rc), buf); err != nil {
		return nil, fmt.Errorf("read %s: %w", it.Name, err)
	}
	return v.verifyParsed(cp, b, h.Sum(nil))
}
