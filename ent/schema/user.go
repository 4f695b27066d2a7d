package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// User is a mini program user, identified by (appid, openid).
type User struct{ ent.Schema }

// Mixin of the User.
func (User) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("appid").MaxLen(64).NotEmpty().Immutable(),
		field.String("openid").MaxLen(128).NotEmpty().Immutable(),
		field.String("unionid").MaxLen(128).Optional().Nillable(),
		// session_key decrypts the user's open data; it never leaves the server.
		field.String("session_key").MaxLen(64).Sensitive().Default(""),
		field.String("nickname").MaxLen(256).Default(""),
		field.String("avatar_url").MaxLen(1024).Default(""),
		field.String("phone").MaxLen(32).Optional().Nillable(),
		field.String("phone_country_code").MaxLen(8).Optional().Nillable(),
		field.Time("last_login_at").SchemaType(timeType).Optional().Nillable(),
	}
}

// Edges of the User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("sessions", Session.Type),
	}
}

// Indexes of the User.
func (User) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("appid", "openid").Unique(),
		index.Fields("unionid"),
	}
}
