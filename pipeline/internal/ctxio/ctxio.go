// Package ctxio makes long reads and waits of the pipeline (hashing assets, uploading and
// downloading them, polling clouds) stop when their context is cancelled.
package ctxio

import (
	"context"
	"io"
	"time"
)

// Reader returns a reader of r that fails with ctx.Err() once ctx is done, checked before every
// Read. It has only a Read method (no WriterTo), so io.CopyBuffer really copies through the
// caller's buffer and every chunk sees the check.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx: ctx, r: r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Sleep waits d or until ctx is done, whichever comes first, and returns ctx.Err() in the latter
// case. A d of zero or less does not wait: it returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
