package sign

import (
	"context"
	"sync"
	"sync/atomic"
)

// Lazy is a Signer built on its first use: a run that signs nothing (a re-run of a published
// release) never decrypts a key (scrypt) or asks for a token. A failed build is returned by
// every call. It is safe for concurrent use.
type Lazy struct {
	once  sync.Once
	built atomic.Bool
	build func() (Signer, error)
	s     Signer
	err   error
}

// NewLazy returns a Signer that calls build once, when something is first signed.
func NewLazy(build func() (Signer, error)) *Lazy { return &Lazy{build: build} }

// Built reports whether the signer was built (something was signed, or tried to be).
func (l *Lazy) Built() bool { return l.built.Load() }

func (l *Lazy) signer() (Signer, error) {
	l.once.Do(func() {
		l.built.Store(true)
		l.s, l.err = l.build()
	})
	return l.s, l.err
}

// Sign builds the signer when needed and signs content.
func (l *Lazy) Sign(ctx context.Context, content []byte) ([]byte, error) {
	s, err := l.signer()
	if err != nil {
		return nil, err
	}
	return s.Sign(ctx, content)
}

// SignFile builds the signer when needed and signs the file at path.
func (l *Lazy) SignFile(ctx context.Context, path string) ([]byte, error) {
	s, err := l.signer()
	if err != nil {
		return nil, err
	}
	return s.SignFile(ctx, path)
}

// SignDSSE builds the signer when needed and signs payload as a DSSE envelope.
func (l *Lazy) SignDSSE(ctx context.Context, payloadType string, payload []byte) ([]byte, error) {
	s, err := l.signer()
	if err != nil {
		return nil, err
	}
	return s.SignDSSE(ctx, payloadType, payload)
}
