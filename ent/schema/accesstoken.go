package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AccessToken is an opaque access token of the "db" strategy. Only the
// SHA-256 of the token is stored: a leaked table is not a leaked session.
type AccessToken struct{ ent.Schema }

// Fields of the AccessToken.
func (AccessToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("token_hash").MaxLen(64).NotEmpty().Unique().Immutable().Sensitive(),
		field.String("session_id").MaxLen(64).Immutable(),
		field.Int("user_id").Immutable(),
		field.Time("expires_at").SchemaType(timeType).Immutable(),
		field.Time("created_at").SchemaType(timeType).Default(now).Immutable(),
	}
}

// Edges of the AccessToken.
func (AccessToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("session", Session.Type).Ref("access_tokens").Field("session_id").Unique().Required().Immutable(),
	}
}

// Indexes of the AccessToken.
func (AccessToken) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id"),
		index.Fields("expires_at"),
	}
}
