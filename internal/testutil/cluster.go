package testutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/config"
)

// ClusterEnv names the variable that points tests at a running Redis
// Cluster (comma-separated node addresses), as .ci/run sets it so that all
// test packages share one cluster.
const ClusterEnv = "WXLOGIN_TEST_REDIS_CLUSTER"

var cluster struct {
	once  sync.Once
	addrs []string
	err   error
	// stdin of the nodes' wrappers: held open for the life of the process;
	// when it ends, the wrappers read EOF and stop their node.
	keep []io.WriteCloser
}

// RedisClusterAddrs returns the node addresses of a Redis Cluster for tests:
// those of WXLOGIN_TEST_REDIS_CLUSTER, else three `redis-server
// --cluster-enabled yes` nodes on free ports, started once per test process
// and stopped when the process ends. A cluster that cannot be had skips the
// test on a developer machine and fails it under CI.
func RedisClusterAddrs(t testing.TB) []string {
	t.Helper()
	cluster.once.Do(func() {
		if v := os.Getenv(ClusterEnv); v != "" {
			cluster.addrs = config.Redis{Addr: v}.Addrs()
			cluster.err = waitForCluster(cluster.addrs, 10*time.Second)
			return
		}
		for range 3 { // ports are chosen free but may be taken meanwhile: retry
			if cluster.addrs, cluster.err = startCluster(); cluster.err == nil {
				return
			}
		}
	})
	if cluster.err != nil {
		Unavailable(t, "Redis Cluster", cluster.err)
	}
	return cluster.addrs
}

// RedisClusterConfig returns a Redis section for the test cluster with a
// key prefix private to this test; the test's keys are deleted when it ends.
func RedisClusterConfig(t testing.TB) config.Redis {
	t.Helper()
	addrs := RedisClusterAddrs(t)
	cfg := config.Redis{Addr: strings.Join(addrs, ","), Prefix: RandomName("wxtest:") + ":"}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			iter := n.Scan(ctx, 0, cfg.Prefix+"*", 500).Iterator()
			for iter.Next(ctx) {
				n.Del(ctx, iter.Val())
			}
			return iter.Err()
		})
	})
	return cfg
}

// RedisCluster returns a cluster client on the test cluster and this test's
// key prefix.
func RedisCluster(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	cfg := RedisClusterConfig(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.Addrs()})
	t.Cleanup(func() { c.Close() })
	return c, cfg.Prefix
}

// startCluster starts three nodes and joins them into a cluster.
func startCluster() ([]string, error) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed: %w", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is not installed: %w", err)
	}
	dir, err := os.MkdirTemp("", "wxlogin-redis-cluster-")
	if err != nil {
		return nil, err
	}
	var addrs []string
	for range 3 {
		port, err := freeClusterPort()
		if err != nil {
			return nil, err
		}
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return nil, err
		}
		// The wrapper stops the node when the test process goes away,
		// however it ends: its stdin (held by this process) reaches EOF.
		script := fmt.Sprintf(`%q --port %d --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf `+
			`--cluster-node-timeout 2000 --dir %q --save "" --appendonly no --logfile %q & pid=$!; `+
			`read _ignored; kill $pid; wait $pid; rm -rf %q; rmdir %q 2>/dev/null`,
			server, port, nodeDir, filepath.Join(nodeDir, "redis.log"), nodeDir, dir)
		cmd := exec.Command("sh", "-c", script)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		cluster.keep = append(cluster.keep, stdin)
		go func() { _ = cmd.Wait() }()
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for _, a := range addrs {
		if err := pingUntil(a, 10*time.Second); err != nil {
			stopNodes()
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		stopNodes()
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	if err := waitForCluster(addrs, 20*time.Second); err != nil {
		stopNodes()
		return nil, err
	}
	return addrs, nil
}

func stopNodes() {
	for _, w := range cluster.keep {
		w.Close()
	}
	cluster.keep = nil
}

// freeClusterPort finds a port that is free together with its cluster bus
// port (+10000), both below the ephemeral range (see FreeAddr).
func freeClusterPort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(2768) // bus ports 30000–32767: below the ephemeral range
		a, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p, nil
	}
	return 0, errors.New("no free port pair for a Redis Cluster node")
}

func pingUntil(addr string, within time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis node %s did not start: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForCluster waits until every node reports the cluster ok and a
// cluster client can write keys of several slots.
func waitForCluster(addrs []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		last = clusterReady(addrs)
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("redis cluster %s not ready: %w", strings.Join(addrs, ","), last)
}

func clusterReady(addrs []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		info, err := c.ClusterInfo(ctx).Result()
		c.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %s: cluster_state not ok", a)
		}
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	for i := range 8 {
		key := fmt.Sprintf("wxtest:ready:%d", i)
		if err := c.Set(ctx, key, "1", time.Second).Err(); err != nil {
			return err
		}
	}
	return nil
}
