package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Identity is one account of a person on one app: the (provider, appid,
// openid) a platform vouched for at login. It belongs to exactly one user.
type Identity struct{ ent.Schema }

// Mixin of the Identity.
func (Identity) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Identity.
func (Identity) Fields() []ent.Field {
	return []ent.Field{
		// provider is the platform: wechat, qq, douyin, alipay.
		field.String("provider").MaxLen(16).NotEmpty().Immutable(),
		// kind is the app's kind: miniprogram or oauth.
		field.String("kind").MaxLen(16).NotEmpty(),
		field.String("appid").MaxLen(64).NotEmpty().Immutable(),
		field.String("openid").MaxLen(128).NotEmpty().Immutable(),
		// unionid is platform-scoped; which user owns a unionid is UnionLink's.
		field.String("unionid").MaxLen(128).Optional().Nillable(),
		// session_key decrypts this account's open data; it never leaves
		// the server. Empty for apps without one (OAuth).
		field.String("session_key").MaxLen(256).Sensitive().Default(""),
		field.Time("last_login_at").SchemaType(timeType).Optional().Nillable(),
		field.Int("user_id"),
	}
}

// Edges of the Identity.
func (Identity) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("identities").Field("user_id").Unique().Required(),
	}
}

// Indexes of the Identity.
func (Identity) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("provider", "appid", "openid").Unique(),
		index.Fields("provider", "unionid"),
		index.Fields("user_id"),
	}
}
