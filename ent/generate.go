// Package ent holds the generated ORM code; ./schema is hand-written and the
// rest is reproduced exactly by `go generate ./ent`.
package ent

//go:generate go run -mod=mod entgo.io/ent/cmd/ent generate --feature sql/upsert,sql/execquery ./schema
