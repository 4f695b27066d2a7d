package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// timeType stores instants with microseconds on MySQL/MariaDB; ent's default
// there is TIMESTAMP, which has second precision and ends in 2038.
var timeType = map[string]string{dialect.MySQL: "datetime(6)"}

// TimeMixin adds created_at and updated_at, both maintained by ent.
type TimeMixin struct{ mixin.Schema }

// Fields of the TimeMixin.
func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").SchemaType(timeType).Default(now).Immutable(),
		field.Time("updated_at").SchemaType(timeType).Default(now).UpdateDefault(now),
	}
}

// now is UTC so that SQLite and MySQL hold the same instants.
func now() time.Time { return time.Now().UTC() }
