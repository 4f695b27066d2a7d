package token_test

import (
	"context"
	"log"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/token"
)

// Wiring the jwt strategy by hand, without fx, the way Module does it for
// an instance without Redis.
func Example_withoutFx() {
	ctx := context.Background()
	cfg, err := config.Load()
	if err != nil {
		log.Fatal(err)
	}
	client, err := database.Open(cfg.Database)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	logger := zap.NewExample()

	// Revocations made by other instances reach this one's cache through
	// the database (with Redis: token.NewRedisFeed and token.NewRedisDenyList).
	feed := token.NewPollFeed(client, cfg.Token.RevocationPoll, logger)
	if err := feed.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer feed.Stop(ctx)

	keys, err := token.NewKeySet(cfg.Token)
	if err != nil {
		log.Fatal(err)
	}
	jwtStrategy, err := token.NewJWT(client, keys, token.NewDBDenyList(client),
		token.Options{Config: cfg.Token, Feed: feed, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	defer jwtStrategy.Close() // it follows the feed to hold the deny list in memory
	strategy, err := token.NewCached(jwtStrategy, feed, token.CacheOptions{Size: cfg.Token.CacheSize})
	if err != nil {
		log.Fatal(err)
	}
	defer strategy.Close()

	cleaner := token.NewCleaner(client, cfg.Token.CleanupInterval, logger, nil)
	_ = cleaner.Start(ctx)
	defer cleaner.Stop(ctx)

	pair, err := strategy.Issue(ctx, token.Subject{UserID: 1, AppID: cfg.WeChat.AppID, OpenID: "o-example",
		Client: token.ClientMiniProgram, Device: "iPhone 15"})
	if err != nil {
		log.Fatal(err)
	}
	principal, err := strategy.Verify(ctx, pair.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	_ = strategy.Revoke(ctx, principal) // logout
}
