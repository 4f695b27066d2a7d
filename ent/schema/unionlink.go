package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// UnionLink says which user a platform-scoped unionid belongs to. Its
// unique key is what makes concurrent first logins of one person through
// two apps create exactly one user: the second insert of a link fails and
// that login attaches to the first one's user.
type UnionLink struct{ ent.Schema }

// Fields of the UnionLink.
func (UnionLink) Fields() []ent.Field {
	return []ent.Field{
		field.String("provider").MaxLen(16).NotEmpty().Immutable(),
		field.String("unionid").MaxLen(128).NotEmpty().Immutable(),
		field.Int("user_id"),
		field.Time("created_at").SchemaType(timeType).Default(now).Immutable(),
	}
}

// Edges of the UnionLink.
func (UnionLink) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("union_links").Field("user_id").Unique().Required(),
	}
}

// Indexes of the UnionLink.
func (UnionLink) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("provider", "unionid").Unique(),
		index.Fields("user_id"),
	}
}
