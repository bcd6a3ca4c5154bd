// Package guestapi is the contract between the GCP VM provider (package gcp, on the runner)
// and mero-tee-agent (package agent, inside the node image): the instance-metadata keys the
// runner writes, the guest-attribute keys the agent publishes, the format of a quote request
// and the way a long value is split into parts. It has no dependencies, so that the agent
// does not link the compute client.
//
// The channel is the GCE metadata server in both directions, through the Compute Engine API
// the runner is already authorised for: the runner writes instance metadata (insert, then
// instances.setMetadata), the agent reads it from the metadata server and answers in guest
// attributes, which the runner reads with instances.getGuestAttributes. No port of the VM is
// reachable from outside, so there is no firewall rule to create, delete or sweep.
package guestapi

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
)

// Instance metadata the runner writes (keys under instance/attributes/).
const (
	// MetadataGuestAttributes enables guest attributes on the instance ("TRUE").
	MetadataGuestAttributes = "enable-guest-attributes"
	// MetadataNonce is the boot nonce: 128 lower-case hex characters (64 bytes).
	MetadataNonce = "mero-tee-nonce"
	// MetadataProfile is the profile the image was built for.
	MetadataProfile = "mero-tee-profile"
	// MetadataQuoteRequest is the current quote request: "<id>:<128 hex characters>"
	// (FormatRequest). The runner replaces it for every request.
	MetadataQuoteRequest = "mero-tee-quote-request"
)

// Guest attributes the agent publishes, all in namespace Namespace.
const (
	// Namespace is the guest-attribute namespace of every value the agent publishes.
	Namespace = "mero-tee"
	// QuoteKey holds the boot quote (REPORTDATA = the boot nonce), standard base64.
	QuoteKey = "tdx-quote"
	// QuotePartsKey holds the part count when the boot quote is published in parts.
	QuotePartsKey = "tdx-quote-parts"
	// QuoteErrorKey holds why the agent could not produce the boot quote.
	QuoteErrorKey = "tdx-quote-error"
	// AgentVersionKey holds the agent's version once it serves requests.
	AgentVersionKey = "agent-version"
)

// Limits of the contract.
const (
	// MaxParts bounds the part count of one value.
	MaxParts = 64
	// DefaultPartSize is the size (characters) of one part the agent publishes.
	DefaultPartSize = 4096
	// MaxRequestSize bounds a quote request's metadata value.
	MaxRequestSize = 256
	// MaxErrorSize bounds an error message the agent publishes.
	MaxErrorSize = 1024
	// ReportDataSize is the size of a TDX quote's REPORTDATA.
	ReportDataSize = 64
)

var idRE = lazyre.New(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Request is one quote request: an id the response is published under and the report data
// the quote must carry.
type Request struct {
	ID         string
	ReportData [ReportDataSize]byte
}

// ResponseKey is the guest-attribute key of the quote answering request id.
func ResponseKey(id string) string { return "quote-" + id }

// ValidateID checks a request id: 1–32 lower-case letters, digits or '-', starting with a
// letter or digit (so that every response key is a valid guest-attribute key).
func ValidateID(id string) error {
	if !idRE().MatchString(id) {
		return fmt.Errorf("request id %q: want 1–32 lower-case letters, digits or '-'", id)
	}
	return nil
}

// FormatRequest is the metadata value of r.
func FormatRequest(r Request) (string, error) {
	if err := ValidateID(r.ID); err != nil {
		return "", err
	}
	return r.ID + ":" + hex.EncodeToString(r.ReportData[:]), nil
}

// ParseRequest reads a quote request; anything but "<id>:<128 lower-case hex>" is an error.
func ParseRequest(s string) (Request, error) {
	if len(s) > MaxRequestSize {
		return Request{}, fmt.Errorf("quote request: %d bytes, at most %d", len(s), MaxRequestSize)
	}
	id, data, ok := strings.Cut(s, ":")
	if !ok {
		return Request{}, fmt.Errorf("quote request: want ID:REPORTDATA_HEX")
	}
	if err := ValidateID(id); err != nil {
		return Request{}, fmt.Errorf("quote request: %w", err)
	}
	if len(data) != 2*ReportDataSize || strings.ToLower(data) != data {
		return Request{}, fmt.Errorf("quote request %s: report data: want %d lower-case hex characters", id, 2*ReportDataSize)
	}
	r := Request{ID: id}
	if _, err := hex.Decode(r.ReportData[:], []byte(data)); err != nil {
		return Request{}, fmt.Errorf("quote request %s: report data: %v", id, err)
	}
	return r, nil
}

// PartsKey is the key holding the part count of the value published under key.
func PartsKey(key string) string { return key + "-parts" }

// ErrorKey is the key holding the error that replaces the value published under key.
func ErrorKey(key string) string { return key + "-error" }

// PartKey is the key of part i of the value published under key.
func PartKey(key string, i int) string { return key + "-" + strconv.Itoa(i) }

// Split returns the guest attributes that publish text under key: key=text when it fits in
// partSize (≤ 0: DefaultPartSize), else PartsKey(key)=N and PartKey(key, 0…N-1). A text
// needing more than MaxParts parts is an error.
func Split(key, text string, partSize int) (map[string]string, error) {
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	if len(text) <= partSize {
		return map[string]string{key: text}, nil
	}
	n := (len(text) + partSize - 1) / partSize
	if n > MaxParts {
		return nil, fmt.Errorf("%s: %d characters need %d parts of %d, at most %d", key, len(text), n, partSize, MaxParts)
	}
	out := map[string]string{PartsKey(key): strconv.Itoa(n)}
	for i := range n {
		out[PartKey(key, i)] = text[i*partSize : min((i+1)*partSize, len(text))]
	}
	return out, nil
}

// Join reads the value published under key from attrs (as Split wrote it). done is false
// while it is not (completely) published, with why; err is set when the agent published
// ErrorKey(key) (AgentError) or a part count that is not 1–MaxParts.
func Join(attrs map[string]string, key string) (text string, done bool, why string, err error) {
	if msg, ok := attrs[ErrorKey(key)]; ok {
		return "", false, "", &AgentError{Key: ErrorKey(key), Message: msg}
	}
	if v, ok := attrs[key]; ok {
		return v, true, "", nil
	}
	countText, ok := attrs[PartsKey(key)]
	if !ok {
		return "", false, "guest attribute " + Namespace + "/" + key + " not published yet", nil
	}
	n, perr := strconv.Atoi(countText)
	if perr != nil || n < 1 || n > MaxParts {
		return "", false, "", fmt.Errorf("guest attribute %s/%s: %q is not a part count 1–%d", Namespace, PartsKey(key), countText, MaxParts)
	}
	var b strings.Builder
	for i := range n {
		part, ok := attrs[PartKey(key, i)]
		if !ok {
			return "", false, fmt.Sprintf("%s part %d of %d not published yet", key, i, n), nil
		}
		b.WriteString(part)
	}
	return b.String(), true, "", nil
}

// AgentError is an error the agent published instead of a value.
type AgentError struct {
	Key     string
	Message string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("agent reported %s/%s: %s", Namespace, e.Key, e.Message)
}

// Truncate shortens an error message to MaxErrorSize bytes for publishing.
func Truncate(msg string) string {
	if len(msg) <= MaxErrorSize {
		return msg
	}
	return msg[:MaxErrorSize-3] + "..."
}
