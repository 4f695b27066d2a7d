package user

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
)

// Module provides the ent-backed Store with the merge hooks and listeners
// of the "user.merge_hooks" and "user.listeners" groups.
var Module = fx.Module("user",
	fx.Provide(fx.Annotate(NewStore, fx.As(new(Store)))),
)

// Params are NewStore's dependencies.
type Params struct {
	fx.In
	Client    *ent.Client
	Config    config.Identity `optional:"true"`
	Hooks     []MergeHook     `group:"user.merge_hooks"`
	Listeners []Listener      `group:"user.listeners"`
	Logger    *zap.Logger     `optional:"true"`
}

// NewStore builds the EntStore for fx.
func NewStore(p Params) *EntStore {
	opts := []Option{WithMerge(p.Config.MergeOn()), WithMergeHooks(p.Hooks...), WithListeners(p.Listeners...)}
	if p.Logger != nil {
		opts = append(opts, WithLogger(p.Logger))
	}
	return NewEntStore(p.Client, opts...)
}
