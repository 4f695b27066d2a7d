package user

import (
	"fmt"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/seal"
	"github.com/wxlogin/wxlogin/modules/database"
)

// Module provides the ent-backed Store with the merge hooks and listeners
// of the "user.merge_hooks" and "user.listeners" groups.
var Module = fx.Module("user",
	fx.Provide(fx.Annotate(NewStore, fx.As(new(Store)))),
)

// Params are NewStore's dependencies.
type Params struct {
	fx.In
	Client *ent.Client
	// Batch lets a returning login take one round trip on MySQL (nil elsewhere).
	Batch     *database.Batch `optional:"true"`
	Config    config.Identity
	Hooks     []MergeHook `group:"user.merge_hooks"`
	Listeners []Listener  `group:"user.listeners"`
	Logger    *zap.Logger `optional:"true"`
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
	opts := []Option{WithMerge(p.Config.MergeOn()), WithMergeHooks(p.Hooks...), WithListeners(p.Listeners...), WithSessionKeyRing(ring)}
	if p.Logger != nil {
		opts = append(opts, WithLogger(p.Logger))
	}
	if p.Batch != nil {
		opts = append(opts, WithBatch(p.Batch))
	}
	return NewEntStore(p.Client, opts...), nil
}
