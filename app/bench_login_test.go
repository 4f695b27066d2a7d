package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/valyala/fasthttp"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// BenchmarkLogin measures logins per second on MariaDB the way production
// runs them: the service in its own process with the emulator in it, many
// distinct users, benchClients parallel clients over loopback. It prints
// first logins/s and returning logins/s next to the ceiling measured in the
// same run: a raw single-row INSERT … ON DUPLICATE KEY UPDATE of the
// identities table (what a login must at least do) from as many clients,
// with the driver settings the service uses. It also prints the database
// statements per login, from MariaDB's own counters.
//
// WXLOGIN_BENCH_LOGINS sets the logins per phase (default 6000).
func BenchmarkLogin(b *testing.B) {
	n := 6000
	if v := os.Getenv("WXLOGIN_BENCH_LOGINS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			b.Fatalf("WXLOGIN_BENCH_LOGINS: %q", v)
		}
	}
	db := testutil.MariaDBConfig(b)
	emuAddr := freeAddr(b)
	svc := startService(b, benchSpec{Vars: map[string]string{
		"APP_HTTP_ADDR": freeAddr(b), "APP_WECHAT_EMULATOR_ADDR": emuAddr,
		"APP_DATABASE_DRIVER": "mysql", "APP_DATABASE_DSN": db.DSN,
		"APP_TOKEN_SECRET": strings.Repeat("bench-login-secret-", 3),
	}})
	raw := rawDB(b, db.DSN)

	codes := func(prefix string) []string {
		out := make([]string, n)
		parallel(b, n, func(i int) error {
			var d struct{ Code string }
			body := fmt.Sprintf(`{"openid":"%s-%07d"}`, prefix, i)
			if err := postJSON("http://"+emuAddr+"/emulator/login", body, &d); err != nil {
				return err
			}
			out[i] = d.Code
			return nil
		})
		return out
	}
	login := func(codes []string) float64 {
		client := &fasthttp.HostClient{Addr: svc.addr, MaxConns: 2 * benchClients, ReadTimeout: 30 * time.Second}
		start := time.Now()
		parallel(b, len(codes), func(i int) error {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + svc.addr + "/api/v1/auth/login")
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			req.SetBodyString(`{"code":"` + codes[i] + `"}`)
			if err := client.Do(req, resp); err != nil {
				return err
			}
			if resp.StatusCode() != 200 {
				return fmt.Errorf("login: %d %s", resp.StatusCode(), resp.Body())
			}
			return nil
		})
		return float64(len(codes)) / time.Since(start).Seconds()
	}

	var first, returning, ceiling float64
	var firstStmts, returningStmts map[string]float64
	var firstCPU, returningCPU [2]time.Duration
	mariadb := mariadbCPU()
	measure := func(c []string) (float64, map[string]float64, [2]time.Duration) {
		before, svc0, db0 := statements(b, raw), svc.cpuTime(), mariadb()
		rate := login(c)
		cpu := [2]time.Duration{(svc.cpuTime() - svc0) / time.Duration(n), (mariadb() - db0) / time.Duration(n)}
		return rate, perLogin(statements(b, raw), before, n), cpu
	}
	b.Run("first-logins", func(b *testing.B) {
		first, firstStmts, firstCPU = measure(codes("o-first"))
		b.ReportMetric(first, "logins/s")
	})
	b.Run("returning-logins", func(b *testing.B) {
		returning, returningStmts, returningCPU = measure(codes("o-first"))
		b.ReportMetric(returning, "logins/s")
	})
	var ceilingCPU time.Duration
	b.Run("upsert-ceiling", func(b *testing.B) {
		db0 := mariadb()
		ceiling = upsertCeiling(b, raw, n)
		ceilingCPU = (mariadb() - db0) / time.Duration(3*n)
		b.ReportMetric(ceiling, "rows/s")
	})
	if ceiling == 0 {
		return
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nlogins on MariaDB, one run, %d parallel clients, %d logins per phase:\n", benchClients, n)
	fmt.Fprintf(&out, "  raw single-row upsert (ceiling) %8.0f rows/s                                             CPU per row: MariaDB %s\n", ceiling, ceilingCPU)
	fmt.Fprintf(&out, "  first logins                    %8.0f logins/s  %.2f×   statements per login: %s; CPU per login: service %s, MariaDB %s\n",
		first, first/ceiling, describeStatements(firstStmts), firstCPU[0], firstCPU[1])
	fmt.Fprintf(&out, "  returning users                 %8.0f logins/s  %.2f×   statements per login: %s; CPU per login: service %s, MariaDB %s\n",
		returning, returning/ceiling, describeStatements(returningStmts), returningCPU[0], returningCPU[1])
	fmt.Print(out.String())
}

// mariadbCPU returns a function reading the CPU time MariaDB's server
// process has used (0 when it cannot be found on this machine).
func mariadbCPU() func() time.Duration {
	out, _ := exec.Command("pgrep", "-x", "mariadbd").Output()
	var pid int
	if _, err := fmt.Sscan(string(out), &pid); err != nil || pid == 0 {
		return func() time.Duration { return 0 }
	}
	p := &benchProc{cmd: &exec.Cmd{Process: &os.Process{Pid: pid}}}
	return p.cpuTime
}

// rawDB opens the benchmark's own connection to the service's database,
// with the driver settings the service uses (interpolateParams).
func rawDB(b *testing.B, dsn string) *sql.DB {
	b.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	mc.InterpolateParams = true
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(2 * benchClients)
	db.SetMaxIdleConns(2 * benchClients)
	b.Cleanup(func() { db.Close() })
	return db
}

// upsertCeiling upserts n rows of the identities table's kind (its unique
// key, a session key and times), from benchClients clients, and returns the
// rows per second: the least a login writes, done as fast as it can be.
func upsertCeiling(b *testing.B, db *sql.DB, n int) float64 {
	b.Helper()
	var owner int
	if err := db.QueryRow("SELECT id FROM users ORDER BY id LIMIT 1").Scan(&owner); err != nil {
		b.Fatal(err)
	}
	const q = "INSERT INTO identities (created_at, updated_at, provider, kind, appid, openid, session_key, last_login_at, user_id) " +
		"VALUES (?, ?, 'wechat', 'miniprogram', 'wxCeiling', ?, ?, ?, ?) " +
		"ON DUPLICATE KEY UPDATE session_key = VALUES(session_key), last_login_at = VALUES(last_login_at), updated_at = VALUES(updated_at)"
	run := func() float64 {
		start := time.Now()
		parallel(b, n, func(i int) error {
			now := time.Now().UTC()
			_, err := db.Exec(q, now, now, fmt.Sprintf("o-ceiling-%07d", i), fmt.Sprintf("key-%d-%d", i, now.UnixNano()), now, owner)
			return err
		})
		return float64(n) / time.Since(start).Seconds()
	}
	run() // inserts; the measured run updates existing rows, as a returning login does
	return max(run(), run())
}

// statements reads MariaDB's counters of statements received.
func statements(b *testing.B, db *sql.DB) map[string]float64 {
	b.Helper()
	rows, err := db.Query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select','Com_insert','Com_update','Com_delete'," +
		"'Com_begin','Com_commit','Com_rollback','Com_stmt_prepare','Com_stmt_execute','Com_stmt_close','Com_insert_select','Com_replace')")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var name string
		var v float64
		if err := rows.Scan(&name, &v); err != nil {
			b.Fatal(err)
		}
		out[strings.TrimPrefix(strings.ToLower(name), "com_")] = v
	}
	return out
}

func perLogin(after, before map[string]float64, n int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := (v - before[k]) / float64(n); d >= 0.005 {
			out[k] = d
		}
	}
	return out
}

func describeStatements(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	total := 0.0
	for k, v := range m {
		keys = append(keys, k)
		if !strings.HasPrefix(k, "stmt_") {
			total += v
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f", k, m[k])
	}
	return fmt.Sprintf("%.2f (%s)", total, strings.Join(parts, ", "))
}

// parallel runs do(0..n-1) from benchClients goroutines and fails the
// benchmark on the first error.
func parallel(b *testing.B, n int, do func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range benchClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

func postJSON(url, body string, out any) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod("POST")
	req.SetBodyString(body)
	if err := fasthttp.DoTimeout(req, resp, 30*time.Second); err != nil {
		return err
	}
	if resp.StatusCode() != 200 {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode(), resp.Body())
	}
	return json.Unmarshal(resp.Body(), out)
}
