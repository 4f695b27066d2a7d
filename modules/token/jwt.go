package token

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxlogin/wxlogin/ent"
)

// JWT is the "jwt" strategy: access tokens are JWTs (claims sub, iat, exp,
// jti, iss, aud, sid, appid, openid; header kid) signed with the newest key
// of a [KeySet]. Verification accepts the configured algorithm only,
// requires exp, checks iss and aud, looks the kid up among the configured
// keys only, and
// refuses sessions on the [DenyList]. Sessions and refresh tokens live in
// the database.
//
// Verification does no I/O: every instance holds the deny list in memory
// (loaded when its feed is live, kept current by the feed), and asks the
// deny list itself only while the feed cannot vouch that it missed nothing.
type JWT struct {
	client   *ent.Client
	keys     *KeySet
	deny     DenyList
	opt      Options
	sessions sessions
	parser   *jwt.Parser
	revoked  *revocationSet
	unsub    func()
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
// [DBDenyList] with a [PollFeed]). It follows o.Feed until Close.
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
	j := &JWT{
		client: client, keys: keys, deny: deny, opt: o,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{keys.alg}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(o.Config.Issuer),
			jwt.WithAudience(o.Config.JWTAudience()),
			jwt.WithTimeFunc(o.Now),
		),
		revoked: newRevocationSet(deny, o.Config.TTL, o.Now, o.Logger),
	}
	j.sessions = sessions{client: client, opt: o, access: j.signFor, end: j.denyTx, batch: o.Batch,
		batchAccess: func(row *ent.Session, now time.Time) (string, time.Time, string, []any, error) {
			tok, exp, err := j.sign(row.ID, row.UserID, row.Provider, row.Appid, row.Openid, now)
			return tok, exp, "", nil, err
		}}
	j.unsub = o.Feed.Subscribe(j.revoked)
	return j, nil
}

// Close stops following the feed.
func (j *JWT) Close() {
	j.unsub()
	j.revoked.close()
}

// Name is "jwt".
func (j *JWT) Name() string { return NameJWT }

// String names the strategy, never its keys.
func (j *JWT) String() string { return "token.JWT{" + j.keys.String() + "}" }

// Keys is the strategy's key set.
func (j *JWT) Keys() *KeySet { return j.keys }

// Issue starts a session and signs its first access token.
func (j *JWT) Issue(ctx context.Context, subj Subject) (Pair, error) {
	return j.sessions.issue(ctx, subj)
}

func (j *JWT) signFor(_ context.Context, _ *ent.Client, row *ent.Session, now time.Time) (string, time.Time, error) {
	return j.sign(row.ID, row.UserID, row.Provider, row.Appid, row.Openid, now)
}

func (j *JWT) sign(sid string, userID int, provider, appID, openID string, now time.Time) (string, time.Time, error) {
	exp := expiry(now, j.opt.Config.TTL)
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    j.opt.Config.Issuer,
			Audience:  jwt.ClaimStrings{j.opt.Config.JWTAudience()},
			Subject:   strconv.Itoa(userID),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        randomString(16),
		},
		SessionID: sid,
		Provider:  provider,
		AppID:     appID,
		OpenID:    openID,
	}
	t := jwt.NewWithClaims(j.keys.method, c)
	t.Header["kid"] = j.keys.signKID
	s, err := t.SignedString(j.keys.signKey)
	if err != nil {
		return "", time.Time{}, errors.New("token: sign JWT failed") // the library's error may describe the key
	}
	return s, exp, nil
}

// denyTx puts sessions that end on the deny list before the transaction
// that ends them commits, so that a failure leaves them live; a deny list
// in the database writes in that transaction (ctx carries it).
func (j *JWT) denyTx(ctx context.Context, _ *ent.Client, e ending, now time.Time) error {
	return j.deny.Deny(ctx, e.userID, e.sids, e.reason, expiry(now, j.opt.Config.TTL))
}

// Verify checks the signature and claims, then whether the session was
// revoked: in memory, and in the deny list only while the in-memory set
// cannot vouch for a miss.
func (j *JWT) Verify(ctx context.Context, accessToken string) (Principal, error) {
	if accessToken == "" {
		return Principal{}, unauthenticated(ReasonInvalid, "empty")
	}
	var c accessClaims
	now := j.opt.Now()
	if _, err := j.parser.ParseWithClaims(accessToken, &c, j.keys.keyFor); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) && c.SessionID != "" {
			// Signed by us and expired: say so, unless we know it was revoked.
			if reason, revoked, _ := j.revoked.lookup(c.SessionID, now); revoked {
				return Principal{}, unauthenticated(reason, "session revoked")
			}
			return Principal{}, unauthenticated(ReasonExpired, "JWT expired")
		}
		return Principal{}, unauthenticated(ReasonInvalid, jwtReason(err))
	}
	uid, err := strconv.Atoi(c.Subject)
	if err != nil || uid <= 0 || c.SessionID == "" || c.ID == "" {
		return Principal{}, unauthenticated(ReasonInvalid, "claims sub, sid or jti missing or malformed")
	}
	reason, revoked, vouched := j.revoked.lookup(c.SessionID, now)
	if revoked {
		return Principal{}, unauthenticated(reason, "session revoked")
	}
	if !vouched {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		reason, denied, err := j.deny.Denied(ctx, c.SessionID, now)
		if err != nil {
			return Principal{}, unavailable("read the deny list", err)
		}
		if denied {
			return Principal{}, unauthenticated(reason, "session revoked")
		}
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
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "JWT audience not accepted"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "JWT not valid yet"
	default:
		return "JWT invalid"
	}
}

// Refresh rotates the refresh token and signs a new access token.
func (j *JWT) Refresh(ctx context.Context, refreshToken string) (Pair, error) {
	return j.sessions.refresh(ctx, refreshToken)
}

// Revoke logs p's session out: its refresh token at once, its access
// tokens through the deny list until the last one expires.
func (j *JWT) Revoke(ctx context.Context, p Principal) error {
	if p.SessionID == "" {
		return errConfig("revoke: the principal names no session")
	}
	_, err := j.sessions.revoke(ctx, p.UserID, []string{p.SessionID}, ReasonLoggedOut, false)
	return err
}

// RevokeSession ends one live session of the user.
func (j *JWT) RevokeSession(ctx context.Context, userID int, sessionID string, reason Reason) error {
	return j.sessions.revokeSession(ctx, userID, sessionID, reason)
}

// RevokeAll ends every session of the user.
func (j *JWT) RevokeAll(ctx context.Context, userID int, reason Reason) error {
	_, err := j.sessions.revoke(ctx, userID, nil, reason, false)
	return err
}

// Sessions lists the user's live sessions.
func (j *JWT) Sessions(ctx context.Context, userID int) ([]SessionInfo, error) {
	return j.sessions.list(ctx, userID)
}
