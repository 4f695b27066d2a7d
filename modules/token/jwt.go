package token

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/session"
)

// JWT is the "jwt" strategy: access tokens are JWTs (claims sub, iat, exp,
// jti, iss, sid, appid, openid; header kid) signed with the newest key of a
// [KeySet]. Verification accepts the configured algorithm only, requires
// exp, checks iss, looks the kid up among the configured keys only, and
// refuses sessions on the [DenyList]. Sessions and refresh tokens live in
// the database.
type JWT struct {
	client   *ent.Client
	keys     *KeySet
	deny     DenyList
	opt      Options
	sessions sessions
	parser   *jwt.Parser
}

var _ Strategy = (*JWT)(nil)

// accessClaims are the claims of an access JWT.
type accessClaims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	Provider  string `json:"prv,omitempty"`
	AppID     string `json:"appid,omitempty"`
	OpenID    string `json:"openid,omitempty"`
}

// NewJWT returns the jwt strategy: sessions in client, keys from keys,
// revoked sessions in deny (a [RedisDenyList] with a [RedisFeed], or a
// [DBDenyList] with a [PollFeed]).
func NewJWT(client *ent.Client, keys *KeySet, deny DenyList, o Options) (*JWT, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if keys == nil || deny == nil {
		return nil, errConfig("NewJWT needs a key set and a deny list")
	}
	if o.Config.Issuer == "" {
		return nil, errConfig("the JWT issuer must not be empty")
	}
	o = o.complete()
	return &JWT{
		client: client, keys: keys, deny: deny, opt: o,
		sessions: sessions{client: client, opt: o},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{keys.alg}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(o.Config.Issuer),
			jwt.WithTimeFunc(o.Now),
		),
	}, nil
}

// Name is "jwt".
func (j *JWT) Name() string { return NameJWT }

// String names the strategy, never its keys.
func (j *JWT) String() string { return "token.JWT{" + j.keys.String() + "}" }

// Keys is the strategy's key set.
func (j *JWT) Keys() *KeySet { return j.keys }

// Issue starts a session and signs its first access token.
func (j *JWT) Issue(ctx context.Context, subj Subject) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := j.opt.Now()
	row, refresh, err := j.sessions.create(ctx, j.client, subj, now)
	if err != nil {
		return Pair{}, err
	}
	access, exp, err := j.sign(row, now)
	if err != nil {
		return Pair{}, err
	}
	return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refresh,
		RefreshExpiresAt: row.RefreshExpiresAt, SessionID: row.ID}, nil
}

func (j *JWT) sign(row *ent.Session, now time.Time) (string, time.Time, error) {
	exp := expiry(now, j.opt.Config.TTL)
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    j.opt.Config.Issuer,
			Subject:   strconv.Itoa(row.UserID),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        randomString(16),
		},
		SessionID: row.ID,
		Provider:  row.Provider,
		AppID:     row.Appid,
		OpenID:    row.Openid,
	}
	t := jwt.NewWithClaims(j.keys.method, c)
	t.Header["kid"] = j.keys.signKID
	s, err := t.SignedString(j.keys.signKey)
	if err != nil {
		return "", time.Time{}, errors.New("token: sign JWT failed") // the library's error may describe the key
	}
	return s, exp, nil
}

// Verify checks the signature and claims, then the deny list.
func (j *JWT) Verify(ctx context.Context, accessToken string) (Principal, error) {
	if accessToken == "" {
		return Principal{}, unauthenticated("empty")
	}
	var c accessClaims
	if _, err := j.parser.ParseWithClaims(accessToken, &c, j.keys.keyFor); err != nil {
		return Principal{}, unauthenticated(jwtReason(err))
	}
	uid, err := strconv.Atoi(c.Subject)
	if err != nil || uid <= 0 || c.SessionID == "" || c.ID == "" {
		return Principal{}, unauthenticated("claims sub, sid or jti missing or malformed")
	}
	now := j.opt.Now()
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	denied, err := j.deny.Denied(ctx, c.SessionID, now)
	if err != nil {
		return Principal{}, err
	}
	if denied {
		return Principal{}, unauthenticated("session revoked")
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider
	}
	return Principal{UserID: uid, Provider: c.Provider, AppID: c.AppID, OpenID: c.OpenID, SessionID: c.SessionID,
		TokenID: c.ID, ExpiresAt: c.ExpiresAt.UTC()}, nil
}

// jwtReason names what failed without quoting the library, whose messages
// could one day carry token content.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed JWT"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "JWT unverifiable (algorithm or kid not accepted)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "JWT signature invalid"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "JWT claim missing"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "JWT expired"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "JWT issuer not accepted"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "JWT not valid yet"
	default:
		return "JWT invalid"
	}
}

// Refresh rotates the refresh token and signs a new access token.
func (j *JWT) Refresh(ctx context.Context, refreshToken string) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := j.opt.Now()
	rot, err := j.sessions.rotate(ctx, refreshToken, now, nil, j.revoke)
	if err != nil {
		return Pair{}, err
	}
	access, exp, err := j.sign(rot.session, now)
	if err != nil {
		return Pair{}, err
	}
	return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: rot.refresh,
		RefreshExpiresAt: rot.session.RefreshExpiresAt, SessionID: rot.session.ID}, nil
}

// Revoke ends p's session: its refresh token at once, its access tokens
// through the deny list until the last one expires.
func (j *JWT) Revoke(ctx context.Context, p Principal) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if p.SessionID == "" {
		return errors.New("token: revoke: the principal names no session")
	}
	return j.revoke(ctx, p.UserID, []string{p.SessionID}, reasonLogout)
}

// RevokeAll ends every session of the user.
func (j *JWT) RevokeAll(ctx context.Context, userID int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	sids, err := liveSessions(ctx, j.client, userID)
	if err != nil {
		return err
	}
	if err := j.deny.Deny(ctx, userID, sids, j.denyUntil()); err != nil {
		return err
	}
	if _, err := markRevoked(ctx, j.client, userID, sids, reasonLogoutAll, j.opt.Now()); err != nil {
		return err
	}
	return j.opt.Feed.Publish(ctx, Revoked{UserID: userID, SessionIDs: sids, AllSessions: true})
}

func (j *JWT) revoke(ctx context.Context, userID int, sids []string, reason string) error {
	// Deny only sessions of this user, so a principal cannot name another's.
	owned, err := j.client.Session.Query().Where(session.IDIn(sids...), session.UserID(userID)).IDs(ctx)
	if err != nil {
		return fmt.Errorf("token: read sessions: %w", err)
	}
	if len(owned) == 0 {
		return nil
	}
	if err := j.deny.Deny(ctx, userID, owned, j.denyUntil()); err != nil {
		return err
	}
	if _, err := markRevoked(ctx, j.client, userID, owned, reason, j.opt.Now()); err != nil {
		return err
	}
	return j.opt.Feed.Publish(ctx, Revoked{UserID: userID, SessionIDs: owned})
}

// denyUntil is when the last access token issued until now expires.
func (j *JWT) denyUntil() time.Time { return expiry(j.opt.Now(), j.opt.Config.TTL) }
