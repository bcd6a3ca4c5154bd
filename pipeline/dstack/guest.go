package dstack

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// GuestSockets are the unix sockets of the dstack guest agent, in the order a CVM's app tries
// them (SPEC §11).
var guestSockets = []string{"/var/run/dstack/dstack.sock", "/run/dstack/dstack.sock", "/var/run/dstack.sock", "/run/dstack.sock"}

// GuestSockets returns the guest agent's unix socket paths in the order they are tried.
func GuestSockets() []string { return append([]string(nil), guestSockets...) }

// RuntimeEventType is the event type of the dstack runtime events extended into RTMR3.
const RuntimeEventType uint32 = 0x08000001

// GuestClient calls the dstack guest agent API (HTTP over a unix socket, or an http:// URL for
// development): GetQuote, Info and GetKey, each a POST with a JSON body.
type GuestClient struct {
	endpoint string
	base     string
	http     *http.Client
}

// NewGuestClient returns a client of the guest agent at endpoint: a unix socket path, or an
// http:// URL. An empty endpoint means the first of GuestSockets that exists.
func NewGuestClient(endpoint string) (*GuestClient, error) {
	if endpoint == "" {
		for _, p := range guestSockets {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
				endpoint = p
				break
			}
		}
		if endpoint == "" {
			return nil, fmt.Errorf("dstack guest agent: none of %s exists (not in a dstack CVM?)", strings.Join(guestSockets, ", "))
		}
	}
	c := &GuestClient{endpoint: endpoint}
	if strings.HasPrefix(endpoint, "http://") {
		c.base = strings.TrimSuffix(endpoint, "/")
		c.http = &http.Client{Timeout: 30 * time.Second}
		return c, nil
	}
	sock := endpoint
	c.base = "http://dstack"
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	return c, nil
}

// Endpoint is the socket path or URL the client calls.
func (c *GuestClient) Endpoint() string { return c.endpoint }

// GuestEvent is one event-log entry of GetQuote.
type GuestEvent struct {
	IMR          int    `json:"imr"`
	EventType    uint32 `json:"event_type"`
	Digest       string `json:"digest"`
	Event        string `json:"event"`
	EventPayload string `json:"event_payload"`
}

// GuestQuote is the answer of GetQuote.
type GuestQuote struct {
	// Quote is the TDX quote.
	Quote []byte
	// EventLog is the decoded event log (the API sends it as a JSON string).
	EventLog []GuestEvent
	// ReportData is the report data the quote carries (64 bytes).
	ReportData []byte
	// VMConfig is the VM configuration JSON the agent reports.
	VMConfig string
}

type quoteWire struct {
	Quote      string `json:"quote"`
	EventLog   string `json:"event_log"`
	ReportData string `json:"report_data"`
	VMConfig   string `json:"vm_config"`
}

// GetQuote asks for a TDX quote over reportData (at most 64 bytes; dstack pads with zeros).
func (c *GuestClient) GetQuote(ctx context.Context, reportData []byte) (*GuestQuote, error) {
	if len(reportData) > 64 {
		return nil, fmt.Errorf("dstack GetQuote: report data is %d bytes, at most 64", len(reportData))
	}
	var w quoteWire
	if err := c.call(ctx, "/GetQuote", map[string]string{"report_data": hex.EncodeToString(reportData)}, &w); err != nil {
		return nil, err
	}
	q := &GuestQuote{VMConfig: w.VMConfig}
	var err error
	if q.Quote, err = hex.DecodeString(w.Quote); err != nil || len(q.Quote) == 0 {
		return nil, fmt.Errorf("dstack GetQuote: quote is not hex: %v", err)
	}
	if q.ReportData, err = hex.DecodeString(w.ReportData); err != nil {
		return nil, fmt.Errorf("dstack GetQuote: report_data is not hex: %w", err)
	}
	if w.EventLog != "" {
		if err := json.Unmarshal([]byte(w.EventLog), &q.EventLog); err != nil {
			return nil, fmt.Errorf("dstack GetQuote: event_log: %w", err)
		}
	}
	return q, nil
}

// Events returns the event log as tdx events, to replay the RTMRs (tdx.Replay).
func (q *GuestQuote) Events() ([]tdx.Event, error) {
	out := make([]tdx.Event, 0, len(q.EventLog))
	for i, e := range q.EventLog {
		d, err := hex.DecodeString(e.Digest)
		if err != nil || len(d) != tdx.RegisterSize {
			return nil, fmt.Errorf("dstack event %d: digest is not 96 hex characters", i)
		}
		text := e.Event
		if e.EventPayload != "" {
			text += ": " + e.EventPayload
		}
		out = append(out, tdx.Event{IMR: e.IMR, Digest: [tdx.RegisterSize]byte(d), EventType: fmt.Sprintf("0x%08x", e.EventType), Event: text})
	}
	return out, nil
}

// Info is the answer of Info: the app's identity and the CVM's TCB info.
type Info struct {
	AppID       string          `json:"app_id"`
	InstanceID  string          `json:"instance_id"`
	ComposeHash string          `json:"compose_hash"`
	AppName     string          `json:"app_name"`
	TCBInfo     json.RawMessage `json:"tcb_info"`
}

// Info asks for the app's identity.
func (c *GuestClient) Info(ctx context.Context) (*Info, error) {
	var out Info
	if err := c.call(ctx, "/Info", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Key is the answer of GetKey: a key derived for the app and the chain of signatures that
// binds it to the KMS root.
type Key struct {
	Key            []byte
	SignatureChain [][]byte
}

// GetKey asks for the app key at path for purpose, of algorithm (e.g. "secp256k1").
func (c *GuestClient) GetKey(ctx context.Context, path, purpose, algorithm string) (*Key, error) {
	var w struct {
		Key            string   `json:"key"`
		SignatureChain []string `json:"signature_chain"`
	}
	if err := c.call(ctx, "/GetKey", map[string]string{"path": path, "purpose": purpose, "algorithm": algorithm}, &w); err != nil {
		return nil, err
	}
	k := &Key{}
	var err error
	if k.Key, err = hex.DecodeString(w.Key); err != nil || len(k.Key) == 0 {
		return nil, fmt.Errorf("dstack GetKey: key is not hex: %v", err)
	}
	for i, s := range w.SignatureChain {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("dstack GetKey: signature_chain[%d] is not hex: %w", i, err)
		}
		k.SignatureChain = append(k.SignatureChain, b)
	}
	return k, nil
}

func (c *GuestClient) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("dstack %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("dstack %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("dstack %s at %s: %w", path, c.endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("dstack %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("dstack %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("dstack %s: decode: %w", path, err)
	}
	return nil
}
