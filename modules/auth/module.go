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
// DELETE /api/v1/me deletes the caller's account (user.Store.Delete) and
// answers 204 once its sessions have ended on this instance (the others
// follow within a second). When a user is banned, deleted or absorbed by a
// merge, or loses an identity, the sessions that must end are revoked
// everywhere ([EndSessions]).
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
	"errors"
	"sync"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Module provides the *Guard, registers the login API's routes and ends
// the sessions of users that are banned, deleted or absorbed by a merge
// ([EndSessions]).
var Module = fx.Module("auth",
	fx.Provide(
		NewGuard,
		NewHandlers,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
		user.AsListener(EndSessions),
		httpserver.AsRoute(NewSDK),
		// The caller's sessions: GET/DELETE /api/v1/auth/sessions (sessions.go).
		httpserver.AsRoute(NewSessions),
		// The caller's accounts: POST/DELETE /api/v1/me/identities (identities.go).
		httpserver.AsRoute(NewIdentities),
	),
)

// EndSessions returns the user listener that ends sessions on every
// instance when a user's lifecycle says so:
//
//   - user.Banned: every session of the user, reason user_banned;
//   - user.Deleted: every session, reason user_deleted;
//   - user.Merged: every session of the absorbed user, reason revoked;
//   - user.IdentityRemoved: the user's sessions through that app, reason revoked.
//
// If the token store does not answer, it tries again in the background (for
// up to the access token lifetime, when the last token it must end expires
// anyway) until the application stops.
func EndSessions(lc fx.Lifecycle, s token.Strategy, cfg config.Token, log *zap.Logger) user.Listener {
	r := &revoker{strategy: s, log: log.Named("auth"), give: cfg.TTL}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	lc.Append(fx.StopHook(func() { r.cancel(); r.wg.Wait() }))
	return r.listen
}

// RevokeMerged is the former name of [EndSessions].
//
// Deprecated: use EndSessions, which ends the sessions of banned and
// deleted users too.
var RevokeMerged = EndSessions

type revoker struct {
	strategy token.Strategy
	log      *zap.Logger
	give     time.Duration
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func (r *revoker) listen(ctx context.Context, e user.Event) {
	switch e := e.(type) {
	case user.Merged:
		r.end(ctx, e.From, "a merged user", func(ctx context.Context) error {
			return r.strategy.RevokeAll(ctx, e.From, token.ReasonRevoked)
		})
	case user.Banned:
		r.end(ctx, e.UserID, "a banned user", func(ctx context.Context) error {
			return r.strategy.RevokeAll(ctx, e.UserID, token.ReasonUserBanned)
		})
	case user.Deleted:
		r.end(ctx, e.UserID, "a deleted user", func(ctx context.Context) error {
			return r.strategy.RevokeAll(ctx, e.UserID, token.ReasonUserDeleted)
		})
	case user.IdentityRemoved:
		r.end(ctx, e.UserID, "an erased identity", func(ctx context.Context) error {
			return RevokeApp(ctx, r.strategy, e.UserID, e.Identity.Provider, e.Identity.AppID, token.ReasonRevoked)
		})
	}
}

// RevokeApp ends the user's live sessions logged in through one app.
func RevokeApp(ctx context.Context, s token.Strategy, userID int, provider, appid string, reason token.Reason) error {
	list, err := s.Sessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, sess := range list {
		if sess.Provider != provider || sess.AppID != appid {
			continue
		}
		if err := s.RevokeSession(ctx, userID, sess.ID, reason); err != nil && !errors.Is(err, token.ErrSessionNotFound) {
			return err
		}
	}
	return nil
}

// end runs revoke now and, if the store does not answer, again in the
// background until it works or there is no point any more.
func (r *revoker) end(ctx context.Context, userID int, what string, revoke func(context.Context) error) {
	err := revoke(ctx)
	if err == nil {
		return
	}
	r.log.Warn("cannot end the sessions of "+what+" yet; retrying in the background",
		zap.Int("user_id", userID), zap.Error(err))
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
			if err := revoke(r.ctx); err == nil {
				r.log.Info("sessions of "+what+" ended", zap.Int("user_id", userID))
				return
			}
		}
		r.log.Error("gave up ending the sessions of "+what+"; they end when their tokens expire", zap.Int("user_id", userID))
	}()
}
