package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	gh "github.com/google/go-github/v93/github"

	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
)

// Defaults of RetryPolicy.
const (
	DefaultMaxAttempts    = 6
	DefaultBaseDelay      = time.Second
	DefaultMaxDelay       = 30 * time.Second
	DefaultMaxWait        = 10 * time.Minute
	DefaultAttemptTimeout = 2 * time.Minute
	// secondaryDefaultWait is what GitHub asks for after a secondary rate limit without a
	// Retry-After header: "wait for at least one minute".
	secondaryDefaultWait = time.Minute
)

// RetryPolicy bounds and paces the retries of GitHub API calls: exponential backoff with
// jitter on 5xx answers, timeouts and dropped connections; the wait GitHub asks for
// (Retry-After, or x-ratelimit-reset) on 429 and on primary and secondary rate limits.
// The zero value uses the defaults above.
type RetryPolicy struct {
	// MaxAttempts is how many times a call is tried in all (default 6).
	MaxAttempts int
	// BaseDelay is the first backoff step; each retry doubles it (default 1s).
	BaseDelay time.Duration
	// MaxDelay caps one backoff step (default 30s).
	MaxDelay time.Duration
	// MaxWait is the longest wait a rate limit may ask for; a longer one fails at once with
	// an error saying when to retry (default 10 min).
	MaxWait time.Duration
	// AttemptTimeout bounds one attempt of a call (default 2 min); an attempt that times out
	// is retried.
	AttemptTimeout time.Duration
	// Sleep waits d or until ctx is done (default: a timer). Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random duration in [0, d) (default math/rand/v2).
	Jitter func(d time.Duration) time.Duration
	// OnRetry, when set, is told about every retry before its wait (for [WARN] lines).
	OnRetry func(what string, attempt int, wait time.Duration, err error)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultMaxWait
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.Sleep == nil {
		p.Sleep = ctxio.Sleep
	}
	if p.Jitter == nil {
		p.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	return p
}

// permanentError marks an error that must not be retried even if it looks transient.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that RetryPolicy.Do returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// retryableError marks an error that is worth another attempt (a state the next attempt
// resolves, such as an upload that raced with another one).
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retryable wraps err so that RetryPolicy.Do tries again after a backoff.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err}
}

// Do runs fn until it succeeds, fails with an error that is not transient, the attempts are
// used up or ctx is done. Each attempt gets its own context bounded by AttemptTimeout.
// what names the call in errors ("upload checksums.sha256").
func (p RetryPolicy) Do(ctx context.Context, what string, fn func(ctx context.Context, attempt int) error) error {
	return p.DoTimeout(ctx, what, 0, fn)
}

// DoTimeout is Do with a per-attempt timeout for this call (0: AttemptTimeout), for calls
// whose duration grows with their size, such as uploads.
func (p RetryPolicy) DoTimeout(ctx context.Context, what string, timeout time.Duration, fn func(ctx context.Context, attempt int) error) error {
	p = p.withDefaults()
	if timeout <= 0 {
		timeout = p.AttemptTimeout
	}
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return fmt.Errorf("%s: %w (last error: %v)", what, err, last)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := fn(actx, attempt)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if timedOut {
			err = fmt.Errorf("attempt timed out after %v: %w", timeout, err)
		}
		last = err
		wait, retry := p.delay(err, attempt, timedOut)
		if !retry || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if attempt >= p.MaxAttempts {
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		}
		if wait > p.MaxWait {
			return fmt.Errorf("%s: GitHub asks to wait %v, more than the %v allowed; retry later: %w", what, wait.Round(time.Second), p.MaxWait, err)
		}
		if p.OnRetry != nil {
			p.OnRetry(what, attempt, wait, err)
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%s: %w (last error: %v)", what, serr, err)
		}
	}
}

// backoff is the exponential step of an attempt with "equal jitter": half fixed, half random,
// so waits grow and concurrent clients spread out.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < attempt && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	return d/2 + p.Jitter(d/2+1)
}

// delay decides whether err is transient and how long to wait before the next attempt.
func (p RetryPolicy) delay(err error, attempt int, timedOut bool) (time.Duration, bool) {
	if _, ok := errors.AsType[*permanentError](err); ok {
		return 0, false
	}
	if _, ok := errors.AsType[*retryableError](err); ok {
		return p.backoff(attempt), true
	}
	if timedOut {
		return p.backoff(attempt), true
	}
	if e, ok := errors.AsType[*gh.RateLimitError](err); ok {
		if reset := e.Rate.Reset.Time; !reset.IsZero() {
			return until(reset) + time.Second + p.Jitter(p.BaseDelay), true
		}
		return p.backoff(attempt), true
	}
	if e, ok := errors.AsType[*gh.AbuseRateLimitError](err); ok {
		if e.RetryAfter != nil && *e.RetryAfter > 0 {
			return min(*e.RetryAfter, longestAsk) + p.Jitter(p.BaseDelay), true
		}
		return max(secondaryDefaultWait, p.backoff(attempt)), true
	}
	if e, ok := errors.AsType[*gh.ErrorResponse](err); ok && e.Response != nil {
		code := e.Response.StatusCode
		if code == http.StatusTooManyRequests || code >= 500 {
			if w, ok := askedWait(e.Response); ok {
				return w + p.Jitter(p.BaseDelay), true
			}
			return p.backoff(attempt), true
		}
		return 0, false
	}
	if transientNetwork(err) {
		return p.backoff(attempt), true
	}
	return 0, false
}

// longestAsk caps a wait read from a server, so that adding to it cannot overflow; any wait
// this long is refused by MaxWait anyway.
const longestAsk = 365 * 24 * time.Hour

// until is the time left to t, between 0 and longestAsk.
func until(t time.Time) time.Duration { return min(max(time.Until(t), 0), longestAsk) }

// askedWait reads Retry-After (seconds or an HTTP date) or x-ratelimit-reset (epoch seconds).
func askedWait(r *http.Response) (time.Duration, bool) {
	if v := r.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			return time.Duration(min(s, int64(longestAsk/time.Second))) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return until(t), true
		}
	}
	if v := r.Header.Get(gh.HeaderRateReset); v != "" && r.Header.Get(gh.HeaderRateRemaining) == "0" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			return until(time.Unix(s, 0)) + time.Second, true
		}
	}
	return 0, false
}

// transientNetwork reports a dropped, refused or timed-out connection. A connection the server
// drops while the request body is still being written can also surface as the transport's own
// "use of closed network connection" (net.ErrClosed): the transport closed it on reading the
// server's EOF while the body was being written (seen in CI as a flaky dropped-connection test).
func transientNetwork(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded)
}
