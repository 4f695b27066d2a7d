// Package auth is the login API and the middleware that protects routes.
//
// Routes: POST /api/v1/auth/login, /refresh, /logout, /logout/all and
// GET/PATCH /api/v1/me (see [Handlers.Register]); GET /api/v1/auth/sessions
// and DELETE /api/v1/auth/sessions/{id} (see [Sessions]). Login resolves the
// app (the request's "appid", or the only configured app) through the
// provider.Registry, lets that app's platform vouch for the identity, finds
// or creates the user through user.Store and issues tokens naming the user
// and the identity. The middleware reads only "Authorization: Bearer
// <token>", verifies it through the configured token.Strategy and gives
// handlers a token.Principal ([PrincipalOf]).
//
// When two users turn out to be one person (user.Merged), the absorbed
// user's sessions are revoked everywhere ([RevokeMerged]).
//
// With a *ratelimit.Limits in the graph (ratelimit.Module), failed logins
// are limited per client address and refreshes per session (429
// rate_limited); with an [AvatarPolicy] (modules/avatar provides one),
// PATCH /api/v1/me refuses an avatar URL the policy refuses.
//
// Business modules take a *Guard and protect their routes with
// Guard.Handler(). An application may replace a platform's side of login by
// decorating that platform's provider (for WeChat, *wechat.Clients), the
// user storage by decorating user.Store, and the token checks by decorating
// token.Strategy.
package auth

import (
	"context"
	"sync"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Module provides the *Guard, registers the login API's routes and revokes
// the sessions of users absorbed by a merge.
var Module = fx.Module("auth",
	fx.Provide(
		NewGuard,
		NewHandlers,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
		user.AsListener(RevokeMerged),
		httpserver.AsRoute(NewSDK),
		// The caller's sessions: GET/DELETE /api/v1/auth/sessions (sessions.go).
		httpserver.AsRoute(NewSessions),
	),
)

// RevokeMerged returns the user listener that ends every session of a user
// absorbed by a merge, on every instance. If the store does not answer, it
// tries again in the background (for up to the access token lifetime, when
// the last token it must end expires anyway) until the application stops.
func RevokeMerged(lc fx.Lifecycle, s token.Strategy, cfg config.Token, log *zap.Logger) user.Listener {
	r := &revoker{strategy: s, log: log.Named("auth"), give: cfg.TTL}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	lc.Append(fx.StopHook(func() { r.cancel(); r.wg.Wait() }))
	return r.listen
}

type revoker struct {
	strategy token.Strategy
	log      *zap.Logger
	give     time.Duration
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func (r *revoker) listen(ctx context.Context, e user.Event) {
	m, ok := e.(user.Merged)
	if !ok {
		return
	}
	err := r.strategy.RevokeAll(ctx, m.From, token.ReasonRevoked)
	if err == nil {
		return
	}
	r.log.Warn("cannot revoke the sessions of a merged user yet; retrying in the background",
		zap.Int("user_id", m.From), zap.Error(err))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		deadline := time.Now().Add(max(r.give, time.Minute))
		for wait := 100 * time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 10*time.Second) {
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(wait):
			}
			if err := r.strategy.RevokeAll(r.ctx, m.From, token.ReasonRevoked); err == nil {
				r.log.Info("sessions of a merged user revoked", zap.Int("user_id", m.From))
				return
			}
		}
		r.log.Error("gave up revoking the sessions of a merged user; they end when their tokens expire", zap.Int("user_id", m.From))
	}()
}
