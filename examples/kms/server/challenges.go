package server

import (
	"container/heap"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/calimero-network/mero-release/pipeline/kmsclient"
)

// A challenge ID is base64url (no padding) of 16 random bytes ‖ expiry (Unix nanoseconds, big
// endian) ‖ the first 16 bytes of HMAC-SHA256(per-process key, the 24 bytes before). The MAC
// lets the KMS tell a replayed or expired challenge from one it never issued without keeping
// consumed challenges in memory: outstanding challenges are the only state, bounded by the cap.
const (
	idRandom = 16
	idExpiry = 8
	idMAC    = 16
	idSize   = idRandom + idExpiry + idMAC
)

// Errors of challenge consumption, each mapped to its wire code by the handler.
var (
	errChallengeNotFound = errors.New("challenge not issued by this KMS")
	errChallengeReplayed = errors.New("challenge already used")
	errChallengeExpired  = errors.New("challenge expired")
	errTooManyChallenges = errors.New("too many outstanding challenges")
)

// Scopes of a challenge limit (limitError.Scope).
const (
	limitGlobal = "KMS"
	limitPeer   = "peerId"
	limitSource = "source address"
)

// limitError is a refused challenge: the limit of one scope is reached; RetryAfter is when its
// earliest challenge expires, rounded up to whole seconds, and is what the 429's Retry-After
// header and its body both state.
type limitError struct {
	Scope       string
	Outstanding int
	Cap         int
	RetryAfter  time.Duration
}

func (e *limitError) Error() string {
	return fmt.Sprintf("%v: %d outstanding for this %s, the cap is %d; retry after %d s", errTooManyChallenges, e.Outstanding, e.Scope, e.Cap, e.RetryAfterSeconds())
}

// Unwrap makes errors.Is(err, errTooManyChallenges) hold.
func (e *limitError) Unwrap() error { return errTooManyChallenges }

// RetryAfterSeconds is RetryAfter in whole seconds, at least 1 (the Retry-After value).
func (e *limitError) RetryAfterSeconds() int64 {
	secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// challenge is one outstanding challenge.
type challenge struct {
	id      string
	nonce   [kmsclient.NonceSize]byte
	peerID  string
	source  string
	expires time.Time
	index   int // in the expiry heap
}

// challengeLimits bound the outstanding challenges: in all, per peerId and per source address,
// so that one caller filling its share cannot starve the others' key releases.
type challengeLimits struct {
	Global, PerPeer, PerSource int
}

// challengeStore holds the outstanding challenges within its limits, each used once, each valid
// until its expiry. Expired challenges are swept in expiry order, so a full store frees its
// slots as soon as their TTL passes. Every challenge has the same TTL, so each peer's and each
// source's challenges, kept in issue order, are also in expiry order.
type challengeStore struct {
	mu       sync.Mutex
	limits   challengeLimits
	ttl      time.Duration
	key      [32]byte
	rand     io.Reader
	byID     map[string]*challenge
	byPeer   map[string][]*challenge
	bySource map[string][]*challenge
	expiry   expiryHeap
}

func newChallengeStore(limits challengeLimits, ttl time.Duration, rnd io.Reader) (*challengeStore, error) {
	s := &challengeStore{limits: limits, ttl: ttl, rand: rnd, byID: make(map[string]*challenge),
		byPeer: make(map[string][]*challenge), bySource: make(map[string][]*challenge)}
	if _, err := io.ReadFull(rnd, s.key[:]); err != nil {
		return nil, fmt.Errorf("challenge key: %w", err)
	}
	return s, nil
}

// issue creates a challenge for peerID asked from source (the caller's address), or fails with
// a *limitError (errors.Is errTooManyChallenges) when the peer's, the source's or the global
// limit is reached after sweeping the expired challenges. The peer's and the source's limits
// are checked first, so a caller over its share learns its own retry time.
func (s *challengeStore) issue(peerID, source string, now time.Time) (*challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if held := s.byPeer[peerID]; len(held) >= s.limits.PerPeer {
		return nil, &limitError{Scope: limitPeer, Outstanding: len(held), Cap: s.limits.PerPeer, RetryAfter: held[0].expires.Sub(now)}
	}
	if held := s.bySource[source]; len(held) >= s.limits.PerSource {
		return nil, &limitError{Scope: limitSource, Outstanding: len(held), Cap: s.limits.PerSource, RetryAfter: held[0].expires.Sub(now)}
	}
	if len(s.byID) >= s.limits.Global {
		return nil, &limitError{Scope: limitGlobal, Outstanding: len(s.byID), Cap: s.limits.Global, RetryAfter: s.expiry[0].expires.Sub(now)}
	}
	c := &challenge{peerID: peerID, source: source, expires: now.Add(s.ttl)}
	raw := make([]byte, idSize)
	if _, err := io.ReadFull(s.rand, raw[:idRandom]); err != nil {
		return nil, fmt.Errorf("challenge id: %w", err)
	}
	if _, err := io.ReadFull(s.rand, c.nonce[:]); err != nil {
		return nil, fmt.Errorf("challenge nonce: %w", err)
	}
	binary.BigEndian.PutUint64(raw[idRandom:], uint64(c.expires.UnixNano()))
	copy(raw[idRandom+idExpiry:], s.mac(raw[:idRandom+idExpiry]))
	c.id = base64.RawURLEncoding.EncodeToString(raw)
	s.byID[c.id] = c
	s.byPeer[peerID] = append(s.byPeer[peerID], c)
	s.bySource[source] = append(s.bySource[source], c)
	heap.Push(&s.expiry, c)
	return c, nil
}

// consume removes and returns the challenge. An ID this KMS never issued is
// errChallengeNotFound; one issued but no longer outstanding is errChallengeReplayed before its
// expiry and errChallengeExpired after; an outstanding one past its expiry is errChallengeExpired.
func (s *challengeStore) consume(id string, now time.Time) (*challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.byID[id]; ok {
		s.remove(c)
		if !now.Before(c.expires) {
			return nil, fmt.Errorf("%w at %s", errChallengeExpired, c.expires.UTC().Format(time.RFC3339Nano))
		}
		return c, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != idSize || subtle.ConstantTimeCompare(raw[idRandom+idExpiry:], s.mac(raw[:idRandom+idExpiry])) != 1 {
		return nil, errChallengeNotFound
	}
	expires := time.Unix(0, int64(binary.BigEndian.Uint64(raw[idRandom:])))
	if !now.Before(expires) {
		return nil, fmt.Errorf("%w at %s", errChallengeExpired, expires.UTC().Format(time.RFC3339Nano))
	}
	return nil, errChallengeReplayed
}

// outstanding returns the number of challenges held (expired ones not yet swept included).
func (s *challengeStore) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func (s *challengeStore) mac(b []byte) []byte {
	m := hmac.New(sha256.New, s.key[:])
	m.Write(b)
	return m.Sum(nil)[:idMAC]
}

// sweep drops expired challenges; s.mu is held.
func (s *challengeStore) sweep(now time.Time) {
	for len(s.expiry) > 0 && !now.Before(s.expiry[0].expires) {
		s.remove(s.expiry[0])
	}
}

// remove drops c from every index; s.mu is held.
func (s *challengeStore) remove(c *challenge) {
	delete(s.byID, c.id)
	heap.Remove(&s.expiry, c.index)
	dropFrom(s.byPeer, c.peerID, c)
	dropFrom(s.bySource, c.source, c)
}

// dropFrom removes c from idx[key], deleting the key when nothing is left. The slices are
// short (bounded by the per-peer and per-source limits) and c is usually the first.
func dropFrom(idx map[string][]*challenge, key string, c *challenge) {
	held := idx[key]
	for i, h := range held {
		if h == c {
			held = append(held[:i], held[i+1:]...)
			break
		}
	}
	if len(held) == 0 {
		delete(idx, key)
		return
	}
	idx[key] = held
}

// expiryHeap orders challenges by expiry, earliest first.
type expiryHeap []*challenge

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	c := x.(*challenge)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *expiryHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.index = -1
	return c
}
