// Package platformtoken keeps the server access tokens of every platform
// (WeChat, QQ, Douyin) fleet-wide: one fetch per expiry window and appid
// across all instances of a deployment.
//
// A [Manager] hands out one appid's token: from its own memory while fresh,
// else from the shared [Store], else fetched with the platform's
// [FetchFunc] — once per process (single-flight) and once per fleet (the
// store's lock; the other instances poll the store for the token the lock
// holder stores). Tokens are used until [RefreshMargin] before they expire
// (half-way for short lifetimes). If the store fails (Redis down), the
// manager logs a warning and fetches without it, so logins keep working.
//
// Platforms whose business APIs reject a token that another party has
// superseded (WeChat's 40001) pass [WithRejected]: [Manager.Do] then
// deletes the rejected token from the store only if it is still the current
// one (compare-and-delete), reads the store again (another instance may have
// refreshed it) and retries the call once. [WithUnavailable] turns the
// manager's own failures (the caller gave up waiting) into the platform's
// error type.
//
// Stores are keyed by appid alone: appids are unique across a deployment,
// whatever their platform. [RedisStore] keeps each app's token and lock
// under keys with an {appid} hash tag, so they live in one Redis Cluster slot.
// Tokens never appear in logs, errors or fmt output ([Token] prints as
// "[redacted]").
//
// # fx
//
// [Module] provides the [Store]: a [RedisStore] with config.Redis.Prefix when
// the graph holds a redis.UniversalClient or a *redis.Client (modules/redis),
// else a [MemoryStore]. List it once in an application that uses any
// platform module. An application replaces the store with
//
//	fx.Decorate(func(platformtoken.Store) platformtoken.Store { return myStore })
//
// Without fx, [New] builds a manager on any Store.
package platformtoken
