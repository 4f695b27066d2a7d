package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AvatarUpload records who uploaded each stored avatar file: only its
// owner may point their avatar at it, replacing it deletes only files the
// user owned, and files nobody points at are swept. The row is written
// before the file and deleted after it, so every stored file has one.
type AvatarUpload struct{ ent.Schema }

// Fields of the AvatarUpload.
func (AvatarUpload) Fields() []ent.Field {
	return []ent.Field{
		// name is the file's name in the avatar storage (32 hex digits and
		// an extension).
		field.String("name").MaxLen(64).Unique().Immutable(),
		// user_id is the owner; a merge moves it to the surviving user.
		field.Int("user_id"),
		field.Time("created_at").SchemaType(timeType).Default(now).Immutable(),
	}
}

// Indexes of the AvatarUpload.
func (AvatarUpload) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id"),
	}
}
