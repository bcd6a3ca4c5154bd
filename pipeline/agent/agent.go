// Package agent is mero-tee-agent, the program the node image runs at boot (a systemd unit
// installed by examples/node-image/packer/provision.sh). It takes TDX quotes through the
// kernel's configfs-tsm interface (github.com/google/go-configfs-tsm) and speaks only to the
// GCE metadata server, following the contract of package gcp/guestapi:
//
//  1. it reads the boot nonce from instance metadata mero-tee-nonce, quotes it (REPORTDATA =
//     the 64 nonce bytes) and publishes the quote as guest attribute mero-tee/tdx-quote
//     (standard base64, in parts when long), or mero-tee/tdx-quote-error;
//  2. it then watches instance metadata mero-tee-quote-request ("ID:REPORTDATA_HEX", written
//     by the runner with instances.setMetadata) and answers each new request with a quote over
//     exactly that report data in mero-tee/quote-ID (or mero-tee/quote-ID-error), removing the
//     previous answer first, so that at most one answer is kept.
//
// The agent listens on no port and runs no other program: its only input is the metadata
// server's answers, read with bounded sizes; a request that is not exactly of the documented
// form is answered with an error and never reaches the TSM.
package agent

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"

	"github.com/calimero-network/mero-release/pipeline/gcp/guestapi"
	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// Defaults of Config.
const (
	DefaultMetadataURL  = "http://metadata.google.internal/computeMetadata/v1"
	DefaultPollInterval = time.Second
)

// Quoter produces TDX quotes over caller-chosen report data.
type Quoter interface {
	Quote(ctx context.Context, reportData [64]byte) ([]byte, error)
}

// TSMQuoter quotes through a configfs-tsm report client: linuxtsm.MakeClient() in the guest
// (/sys/kernel/config/tsm/report), a fake in tests.
type TSMQuoter struct {
	Client configfsi.Client
}

// Quote writes reportData as the report's inblob and returns the outblob: a TDX quote.
func (q TSMQuoter) Quote(_ context.Context, reportData [64]byte) ([]byte, error) {
	resp, err := report.Get(q.Client, &report.Request{InBlob: reportData[:]})
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm report: %w", err)
	}
	if p := strings.TrimSpace(resp.Provider); p != "tdx_guest" {
		return nil, fmt.Errorf("configfs-tsm report: provider %q, want tdx_guest (is this a TDX guest?)", p)
	}
	return resp.OutBlob, nil
}

// Config configures Run.
type Config struct {
	// MetadataURL is the metadata server's root (default DefaultMetadataURL).
	MetadataURL string
	// Quoter takes the quotes.
	Quoter Quoter
	// PollInterval is the pause between reads of the metadata (default DefaultPollInterval).
	PollInterval time.Duration
	// PartSize is the size of one published part (default guestapi.DefaultPartSize).
	PartSize int
	// Version is published as mero-tee/agent-version.
	Version string
	// Log receives progress lines (nil discards).
	Log *outcome.Logger
}

// Run serves until ctx ends (then it returns nil): the boot quote, then quote requests.
// Failures of the metadata server are logged and retried; it returns an error only for a bad
// configuration.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Quoter == nil {
		return outcome.UsageErrorf("agent: no quoter")
	}
	if cfg.MetadataURL == "" {
		cfg.MetadataURL = DefaultMetadataURL
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	md, err := newMetadata(cfg.MetadataURL)
	if err != nil {
		return err
	}
	a := &agent{cfg: cfg, md: md, published: map[string]bool{}}
	a.boot(ctx)
	if ctx.Err() != nil {
		return nil
	}
	a.put(ctx, guestapi.AgentVersionKey, cfg.Version)
	a.serve(ctx)
	return nil
}

// agent is one Run.
type agent struct {
	cfg Config
	md  *metadata
	// published are the keys of the current answer (removed before the next one).
	published map[string]bool
}

// boot waits for the boot nonce, quotes it and publishes the quote (or why it could not).
func (a *agent) boot(ctx context.Context) {
	var nonceHex string
	for {
		v, found, err := a.md.attribute(ctx, guestapi.MetadataNonce, 2*guestapi.ReportDataSize)
		switch {
		case err != nil:
			a.cfg.Log.Warnf("agent: read metadata %s: %v", guestapi.MetadataNonce, err)
		case found:
			nonceHex = v
		}
		if nonceHex != "" || ctxio.Sleep(ctx, a.cfg.PollInterval) != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return
	}
	var nonce [64]byte
	if b, err := hex.DecodeString(nonceHex); err != nil || len(b) != len(nonce) || strings.ToLower(nonceHex) != nonceHex {
		a.publishError(ctx, guestapi.QuoteKey, fmt.Sprintf("metadata %s: want %d lower-case hex characters", guestapi.MetadataNonce, 2*len(nonce)))
		return
	} else {
		copy(nonce[:], b)
	}
	raw, err := a.quote(ctx, nonce)
	if err != nil {
		a.publishError(ctx, guestapi.QuoteKey, err.Error())
		return
	}
	a.publish(ctx, guestapi.QuoteKey, raw, false)
	a.cfg.Log.Infof("agent: published the boot quote (%d bytes)", len(raw))
}

// serve answers quote requests until ctx ends.
func (a *agent) serve(ctx context.Context) {
	last := ""
	for {
		v, found, err := a.md.attribute(ctx, guestapi.MetadataQuoteRequest, guestapi.MaxRequestSize)
		switch {
		case err != nil && ctx.Err() == nil:
			a.cfg.Log.Warnf("agent: read metadata %s: %v", guestapi.MetadataQuoteRequest, err)
		case found && v != last:
			last = v
			a.answer(ctx, v)
		}
		if ctxio.Sleep(ctx, a.cfg.PollInterval) != nil {
			return
		}
	}
}

// answer handles one request value.
func (a *agent) answer(ctx context.Context, value string) {
	req, err := guestapi.ParseRequest(value)
	if err != nil {
		id, _, _ := strings.Cut(value, ":")
		if guestapi.ValidateID(id) != nil {
			a.cfg.Log.Warnf("agent: ignored a request without a valid id: %v", err)
			return
		}
		a.clearPrevious(ctx)
		a.publishError(ctx, guestapi.ResponseKey(id), err.Error())
		return
	}
	a.clearPrevious(ctx)
	raw, err := a.quote(ctx, req.ReportData)
	if err != nil {
		a.publishError(ctx, guestapi.ResponseKey(req.ID), err.Error())
		return
	}
	a.publish(ctx, guestapi.ResponseKey(req.ID), raw, true)
	a.cfg.Log.Infof("agent: answered quote request %s (%d bytes)", req.ID, len(raw))
}

// quote takes a quote and checks that it is a TDX quote carrying reportData.
func (a *agent) quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	raw, err := a.cfg.Quoter.Quote(ctx, reportData)
	if err != nil {
		return nil, err
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		return nil, fmt.Errorf("the TSM returned no TDX quote: %w", err)
	}
	if q.ReportData != reportData {
		return nil, errors.New("the TSM returned a quote over other report data")
	}
	return raw, nil
}

// publish publishes raw (base64) under key; answer marks it as the current answer.
func (a *agent) publish(ctx context.Context, key string, raw []byte, answer bool) {
	attrs, err := guestapi.Split(key, base64.StdEncoding.EncodeToString(raw), a.cfg.PartSize)
	if err != nil {
		a.publishError(ctx, key, err.Error())
		return
	}
	// Parts first, the part count (or the whole value) last: a reader never sees a count
	// whose parts are missing.
	keys := slices.Sorted(maps.Keys(attrs))
	if pk := guestapi.PartsKey(key); attrs[pk] != "" {
		keys = append(slices.DeleteFunc(keys, func(k string) bool { return k == pk }), pk)
	}
	for _, k := range keys {
		if answer {
			a.published[k] = true
		}
		a.put(ctx, k, attrs[k])
	}
}

// publishError publishes msg as the error of key.
func (a *agent) publishError(ctx context.Context, key, msg string) {
	a.cfg.Log.Warnf("agent: %s: %s", key, msg)
	if key != guestapi.QuoteKey {
		a.published[guestapi.ErrorKey(key)] = true
	}
	a.put(ctx, guestapi.ErrorKey(key), guestapi.Truncate(msg))
}

// clearPrevious removes the previous answer's guest attributes.
func (a *agent) clearPrevious(ctx context.Context) {
	for _, k := range slices.Sorted(maps.Keys(a.published)) {
		if err := a.md.deleteGuestAttribute(ctx, guestapi.Namespace, k); err != nil {
			a.cfg.Log.Warnf("agent: remove guest attribute %s/%s: %v", guestapi.Namespace, k, err)
		}
		delete(a.published, k)
	}
}

// put publishes one guest attribute, logging a failure.
func (a *agent) put(ctx context.Context, key, value string) {
	if err := a.md.putGuestAttribute(ctx, guestapi.Namespace, key, value); err != nil {
		a.cfg.Log.Errorf("agent: publish guest attribute %s/%s: %v", guestapi.Namespace, key, err)
	}
}

// Unavailable is a Quoter for a guest without a usable TSM: every quote fails with err, so
// that the runner reads the reason in mero-tee/tdx-quote-error instead of waiting.
func Unavailable(err error) Quoter { return unavailable{err} }

type unavailable struct{ err error }

func (u unavailable) Quote(context.Context, [64]byte) ([]byte, error) {
	return nil, fmt.Errorf("configfs-tsm unavailable: %w", u.err)
}
