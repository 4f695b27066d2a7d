package wechat

import (
	"testing"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// The Redis store on a Redis Cluster: each of its scripts touches one key,
// so the store contract and the fleet's fetch lock hold there too.
func init() {
	stores = append(stores, struct {
		name string
		make func(t *testing.T) TokenStore
	}{"redis-cluster", func(t *testing.T) TokenStore {
		rdb, prefix := testutil.RedisCluster(t)
		return NewRedisStore(rdb, prefix)
	}})
}

func TestRedisClusterFleetFetchesOnce(t *testing.T) {
	rdb, prefix := testutil.RedisCluster(t)
	fleetFetchesOnce(t, rdb, prefix)
}
