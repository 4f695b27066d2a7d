package user

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/periodic"
	"github.com/wxlogin/wxlogin/internal/seal"
	"github.com/wxlogin/wxlogin/modules/database"
)

// Module provides the ent-backed Store with the merge hooks, delete hooks
// and listeners of the "user.merge_hooks", "user.delete_hooks" and
// "user.listeners" groups, and ends lapsed bans in the background
// ([EntStore.LapseBans], every [LapseInterval]).
var Module = fx.Module("user",
	fx.Provide(fx.Annotate(NewStore, fx.As(new(Store)))),
)

// LapseInterval is how often the Module ends lapsed bans. A lapsed ban
// refuses nothing even before (see [StatusOf]); this only updates the row
// and tells the listeners.
const LapseInterval = time.Minute

// Params are NewStore's dependencies.
type Params struct {
	fx.In
	Client *ent.Client
	// Batch lets a returning login take one round trip on MySQL (nil elsewhere).
	Batch       *database.Batch `optional:"true"`
	Config      config.Identity
	Hooks       []MergeHook  `group:"user.merge_hooks"`
	DeleteHooks []DeleteHook `group:"user.delete_hooks"`
	Listeners   []Listener   `group:"user.listeners"`
	Logger      *zap.Logger  `optional:"true"`
	// Lifecycle runs the job ending lapsed bans; without it there is none.
	Lifecycle fx.Lifecycle `optional:"true"`
}

// NewStore builds the EntStore for fx; session keys are encrypted with
// config.Identity's keys.
func NewStore(p Params) (*EntStore, error) {
	keys, err := p.Config.Keys()
	if err != nil {
		return nil, fmt.Errorf("user: the keys encrypting session keys: %w", err)
	}
	ring, err := seal.New(keys...)
	if err != nil {
		return nil, fmt.Errorf("user: the keys encrypting session keys: %w", err)
	}
	opts := []Option{WithMerge(p.Config.MergeOn()), WithMergeHooks(p.Hooks...), WithDeleteHooks(p.DeleteHooks...),
		WithListeners(p.Listeners...), WithSessionKeyRing(ring)}
	if p.Logger != nil {
		opts = append(opts, WithLogger(p.Logger))
	}
	if p.Batch != nil {
		opts = append(opts, WithBatch(p.Batch))
	}
	s := NewEntStore(p.Client, opts...)
	if p.Lifecycle != nil {
		periodic.OnLifecycle(p.Lifecycle, LapseInterval, s.lapseOnce)
	}
	return s, nil
}

// lapseOnce ends the bans that have lapsed (one tick of the background job).
func (s *EntStore) lapseOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.LapseBans(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("cannot end lapsed bans now; trying again later", zap.Error(err))
	}
}
