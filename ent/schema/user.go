package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// User is a person: their profile and status. How they log in is their
// identities (one account per app); a user has one or more.
type User struct{ ent.Schema }

// Mixin of the User.
func (User) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("nickname").MaxLen(256).Default(""),
		field.String("avatar_url").MaxLen(1024).Default(""),
		field.String("phone").MaxLen(32).Optional().Nillable(),
		field.String("phone_country_code").MaxLen(8).Optional().Nillable(),
		// status: active; banned (until banned_until, when set); deleted (a
		// tombstone without personal data); merged (absorbed into merged_into).
		field.Enum("status").Values("active", "banned", "deleted", "merged").Default("active"),
		field.Time("banned_until").SchemaType(timeType).Optional().Nillable(),
		// ban_reason is for operators; it is never shown to the user.
		field.String("ban_reason").MaxLen(512).Optional(),
		field.Int("merged_into").Optional().Nillable(),
	}
}

// Edges of the User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("identities", Identity.Type),
		edge.To("union_links", UnionLink.Type),
		edge.To("sessions", Session.Type),
	}
}

// Indexes of the User.
func (User) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("phone"),
	}
}
