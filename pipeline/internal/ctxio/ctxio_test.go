package ctxio

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := Reader(ctx, strings.NewReader("hello world"))
	if _, ok := r.(io.WriterTo); ok {
		t.Error("the reader implements io.WriterTo: io.CopyBuffer would bypass the check")
	}
	buf := make([]byte, 5)
	if n, err := r.Read(buf); n != 5 || err != nil || string(buf) != "hello" {
		t.Fatalf("Read = %d %q, %v", n, buf[:n], err)
	}
	cancel()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: Read = %d, %v; want 0, context.Canceled", n, err)
	}
	// A copy through a cancelled reader stops with the context's error.
	if _, err := io.Copy(io.Discard, Reader(ctx, strings.NewReader("x"))); !errors.Is(err, context.Canceled) {
		t.Errorf("io.Copy after cancel: %v", err)
	}
	// The underlying reader's errors pass through.
	if _, err := io.ReadAll(Reader(context.Background(), strings.NewReader("abc"))); err != nil {
		t.Errorf("ReadAll: %v", err)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep: %v", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, d := range []time.Duration{-time.Second, 0, time.Hour} {
		if err := Sleep(ctx, d); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep(cancelled, %s) = %v, want context.Canceled", d, err)
		}
	}
}
