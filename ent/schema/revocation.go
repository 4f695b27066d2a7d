package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Revocation records that a session was revoked. It is the JWT deny list when
// no Redis is configured, and the feed other instances poll to drop revoked
// sessions from their verification caches. Rows expire with the last access
// token the session could have issued.
type Revocation struct{ ent.Schema }

// Fields of the Revocation.
func (Revocation) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("session_id").MaxLen(64).Immutable(),
		field.Int("user_id").Immutable(),
		// reason is why the session ended (token.Reason), told to the client.
		field.String("reason").MaxLen(32).Default("").Immutable(),
		field.Time("expires_at").SchemaType(timeType).Immutable(),
		field.Time("created_at").SchemaType(timeType).Default(now).Immutable(),
	}
}

// Indexes of the Revocation.
func (Revocation) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("session_id"),
		index.Fields("expires_at"),
	}
}
