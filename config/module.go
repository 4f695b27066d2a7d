package config

import "go.uber.org/fx"

// Module loads the configuration from the process environment (see [Load])
// and provides it with its sections.
var Module = fx.Module("config",
	fx.Provide(Load),
	sections,
)

// Static provides a configuration built in code, with its sections, in
// place of [Module]. The configuration must come from [LoadFrom] or have
// been completed the same way.
func Static(cfg *Config) fx.Option {
	return fx.Module("config", fx.Supply(cfg), sections)
}

var sections = fx.Provide(
	func(c *Config) HTTP { return c.HTTP },
	func(c *Config) Database { return c.Database },
	func(c *Config) WeChat { return c.WeChat },
	func(c *Config) Token { return c.Token },
	func(c *Config) Redis { return c.Redis },
	func(c *Config) Avatar { return c.Avatar },
	func(c *Config) Apps { return c.Apps },
	func(c *Config) Identity { return c.Identity },
	func(c *Config) Admin { return c.Admin },
	func(c *Config) Operator { return c.Operator },
	func(c *Config) RateLimit { return c.RateLimit },
)
