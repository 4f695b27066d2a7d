// Package health defines readiness checks. Any module adds one with
// [AsCheck]; modules/httpserver runs them all on GET /readyz. It depends
// on nothing else of wxlogin, so storage modules can offer checks without
// importing the HTTP layer.
//
// An application adds its own check the same way:
//
//	fx.Provide(health.AsCheck(func(c *mydep.Client) health.Check {
//		return health.Check{Name: "mydep", Run: c.Ping}
//	}))
package health

import (
	"context"

	"go.uber.org/fx"
)

// Check is one readiness check.
type Check struct {
	// Name labels the check in /readyz's answer.
	Name string
	// Run returns nil when the dependency answers.
	Run func(ctx context.Context) error
}

// AsCheck annotates a constructor of a Check so that it joins the
// "readiness" value group.
func AsCheck(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"readiness"`))
}
