package github

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
)

// TestTransientNetworkClosedConnection: a connection the server drops while the body is being
// written can surface as "use of closed network connection"; it is retried like a reset.
func TestTransientNetworkClosedConnection(t *testing.T) {
	closed := &url.Error{Op: "Post", URL: "http://127.0.0.1:1/upload", Err: &net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}}
	if !transientNetwork(closed) {
		t.Fatalf("%v is not transient", closed)
	}
	if transientNetwork(fmt.Errorf("upload: %w", context.Canceled)) {
		t.Fatal("a cancelled request is transient")
	}
	if transientNetwork(fmt.Errorf("upload: %w", &net.AddrError{Err: "bad", Addr: "x"})) {
		t.Fatal("an address error is transient")
	}
}
