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

// challenge is one outstanding challenge.
type challenge struct {
	id      string
	nonce   [kmsclient.NonceSize]byte
	peerID  string
	expires time.Time
	index   int // in the expiry heap
}

// challengeStore holds the outstanding challenges: at most max, each used once, each valid until
// its expiry. Expired challenges are swept in expiry order, so a full store frees its slots as
// soon as their TTL passes.
type challengeStore struct {
	mu     sync.Mutex
	max    int
	ttl    time.Duration
	key    [32]byte
	rand   io.Reader
	byID   map[string]*challenge
	expiry expiryHeap
}

func newChallengeStore(max int, ttl time.Duration, rnd io.Reader) (*challengeStore, error) {
	s := &challengeStore{max: max, ttl: ttl, rand: rnd, byID: make(map[string]*challenge)}
	if _, err := io.ReadFull(rnd, s.key[:]); err != nil {
		return nil, fmt.Errorf("challenge key: %w", err)
	}
	return s, nil
}

// issue creates a challenge for peerID, or fails with errTooManyChallenges when max challenges
// are outstanding (after sweeping the expired ones).
func (s *challengeStore) issue(peerID string, now time.Time) (*challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.byID) >= s.max {
		return nil, fmt.Errorf("%w: %d outstanding, the cap is %d; retry after %s", errTooManyChallenges, len(s.byID), s.max, s.expiry[0].expires.Sub(now).Round(time.Millisecond))
	}
	c := &challenge{peerID: peerID, expires: now.Add(s.ttl)}
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

// remove drops c from both indexes; s.mu is held.
func (s *challengeStore) remove(c *challenge) {
	delete(s.byID, c.id)
	heap.Remove(&s.expiry, c.index)
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
