package platformtoken

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Store shares access tokens between the instances of a fleet, keyed by
// appid (appids are unique across a deployment, whatever their platform).
// Manager is its only caller: it reads the token, and when there is none
// (or it is due for refresh) takes the lock, fetches, stores and unlocks;
// instances that do not get the lock poll Get.
type Store interface {
	// Get returns appid's stored token; ok is false when there is none. It
	// may return a token past its RefreshAt: the manager decides.
	Get(ctx context.Context, appid string) (tok Token, ok bool, err error)
	// Set stores tok as appid's token, replacing any other; it may be
	// dropped after tok.ExpiresAt.
	Set(ctx context.Context, appid string, tok Token) error
	// Invalidate deletes appid's token only if its Value is still value.
	Invalidate(ctx context.Context, appid, value string) error
	// Lock tries to take appid's fetch lock for at most ttl; ok is false when
	// another holder has it. The lease releases it.
	Lock(ctx context.Context, appid string, ttl time.Duration) (lease string, ok bool, err error)
	// Unlock releases appid's lock if lease still holds it.
	Unlock(ctx context.Context, appid, lease string) error
}

var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*RedisStore)(nil)
)

// MemoryStore keeps tokens in this process: right for a single instance,
// or for a fleet whose platform hands every instance the same token
// (WeChat's stable_token). The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu     sync.Mutex
	tokens map[string]Token
	locks  map[string]memoryLock
}

type memoryLock struct {
	lease string
	until time.Time
}

// NewMemoryStore returns an empty in-process store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{tokens: map[string]Token{}, locks: map[string]memoryLock{}}
}

// Get returns appid's token.
func (s *MemoryStore) Get(_ context.Context, appid string) (Token, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[appid]
	return t, ok, nil
}

// Set stores appid's token.
func (s *MemoryStore) Set(_ context.Context, appid string, tok Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[appid] = tok
	return nil
}

// Invalidate deletes appid's token if it is still value.
func (s *MemoryStore) Invalidate(_ context.Context, appid, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[appid]; ok && t.Value == value {
		delete(s.tokens, appid)
	}
	return nil
}

// Lock takes appid's lock unless another unexpired lease holds it.
func (s *MemoryStore) Lock(_ context.Context, appid string, ttl time.Duration) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if l, ok := s.locks[appid]; ok && now.Before(l.until) {
		return "", false, nil
	}
	lease, err := newLease()
	if err != nil {
		return "", false, err
	}
	s.locks[appid] = memoryLock{lease: lease, until: now.Add(ttl)}
	return lease, true, nil
}

// Unlock releases appid's lock if lease holds it.
func (s *MemoryStore) Unlock(_ context.Context, appid, lease string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[appid]; ok && l.lease == lease {
		delete(s.locks, appid)
	}
	return nil
}

// newLease returns a random lock lease.
func newLease() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
