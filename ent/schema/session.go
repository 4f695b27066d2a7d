package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Session is one login (a refresh-token family): it is created at login, its
// refresh token rotates on every refresh, and revoking it ends the access
// tokens issued under it.
type Session struct{ ent.Schema }

// Mixin of the Session.
func (Session) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Session.
func (Session) Fields() []ent.Field {
	return []ent.Field{
		// id is random and opaque; it is the "sid" of the tokens issued under it.
		field.String("id").MaxLen(64).NotEmpty().Immutable(),
		field.Int("user_id").Immutable(),
		// provider, appid and openid name the identity the session logged in
		// with. openid and device are personal data: they are blanked when the
		// user is deleted or the identity erased (user.Store), hence mutable.
		field.String("provider").MaxLen(16).Default("wechat").Immutable(),
		field.String("appid").MaxLen(64).Immutable(),
		field.String("openid").MaxLen(128),
		// client is the kind of client that logged in (miniprogram, h5, app,
		// web); device is the client's free-text name for itself.
		field.String("client").MaxLen(16).Default("").Immutable(),
		field.String("device").MaxLen(256).Default(""),
		// last_seen_at moves at login and at every refresh (not on every
		// request). NULL for sessions from before the column: seen at login.
		// (No SQL default: an expression default makes the migrator rebuild
		// the table on every run on SQLite.)
		field.Time("last_seen_at").SchemaType(timeType).Optional().Nillable(),
		// refresh_hash is the SHA-256 (hex) of the current refresh token's secret.
		field.String("refresh_hash").MaxLen(64).Sensitive(),
		// refresh_expires_at is when the session ends unless refreshed: the
		// refresh TTL, shortened by the idle timeout when one is configured.
		field.Time("refresh_expires_at").SchemaType(timeType),
		field.Int("generation").Default(0),
		// prev_refresh_hash is the refresh token the last rotation replaced,
		// accepted again during the grace window (concurrent refreshes) with
		// refresh_sealed: the current refresh secret, AES-GCM sealed under a
		// key derived from the token secret, handed to such late callers.
		field.String("prev_refresh_hash").MaxLen(64).Default("").Sensitive(),
		field.Time("rotated_at").SchemaType(timeType).Optional().Nillable(),
		field.String("refresh_sealed").MaxLen(128).Default("").Sensitive(),
		field.Time("revoked_at").SchemaType(timeType).Optional().Nillable(),
		// revoke_reason tells the client why its tokens stopped working
		// (token.Reason: logged_out, revoked, replaced, …).
		field.String("revoke_reason").MaxLen(32).Optional(),
	}
}

// Edges of the Session.
func (Session) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("sessions").Field("user_id").Unique().Required().Immutable(),
		edge.To("access_tokens", AccessToken.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of the Session.
func (Session) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id"),
		index.Fields("refresh_expires_at"),
	}
}
