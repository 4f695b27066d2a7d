package example_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/emulator"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/log"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// README:begin

// Points is a business module with a table of its own: loyalty points per
// user. When two users turn out to be one person, its merge hook moves the
// absorbed user's rows inside the merge's transaction (an error aborts the
// whole merge), and its listener hears of the merge after the commit.
var Points = fx.Module("points",
	fx.Provide(
		user.AsMergeHook(func(ctx context.Context, tx *ent.Tx, from, into int) error {
			_, err := tx.ExecContext(ctx, "UPDATE points SET user_id = ? WHERE user_id = ?", into, from)
			return err
		}),
		user.AsListener(func(ctx context.Context, e user.Event) {
			if m, ok := e.(user.Merged); ok {
				fmt.Printf("points: user %d is now user %d\n", m.From, m.Into)
			}
		}),
	),
)

// README:end

// Example_merge: one person logs in through mini program A (whose
// code2Session gives the unionid) and through mini program B (bound to the
// Open Platform later: no unionid yet), earning points as two users; when B
// starts giving the unionid, the two users become one and the points follow.
func Example_merge() {
	dir, _ := os.MkdirTemp("", "merge")
	defer os.RemoveAll(dir)
	env := map[string]string{
		"APP_DATA_DIR": dir, "APP_HTTP_ADDR": freeAddr(), "APP_WECHAT_EMULATOR_ADDR": freeAddr(),
		"APP_DATABASE_DSN": "file:merge?mode=memory&cache=shared", "APP_TOKEN_SECRET": strings.Repeat("s", 32),
		"APP_APPS": `[{"appid":"wxMiniA","secret":"secret-A"},{"appid":"wxMiniB","secret":"secret-B"}]`,
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		panic(err)
	}
	var client *ent.Client
	app := fx.New(
		config.Static(cfg), log.Module, database.Module, user.Module, provider.Module, platformtoken.Module, wechat.Module,
		token.Module, httpserver.Module, auth.Module, emulator.Module,
		Points,
		fx.Populate(&client),
		fx.NopLogger,
	)
	if err := app.Start(context.Background()); err != nil {
		panic(err)
	}
	defer app.Stop(context.Background())
	ctx := context.Background()
	if _, err := client.ExecContext(ctx, "CREATE TABLE points (user_id INTEGER NOT NULL, points INTEGER NOT NULL)"); err != nil {
		panic(err)
	}

	login := func(appid, unionid string) (userID int, token string) {
		var device struct{ Code string }
		post("http://"+cfg.WeChat.EmulatorAddr+"/emulator/login",
			`{"appid":"`+appid+`","openid":"o-`+appid+`","unionid":"`+unionid+`"}`, &device)
		var answer struct {
			AccessToken string `json:"access_token"`
			User        struct{ ID int }
		}
		post("http://"+cfg.HTTP.Addr+"/api/v1/auth/login", `{"code":"`+device.Code+`","appid":"`+appid+`"}`, &answer)
		return answer.User.ID, answer.AccessToken
	}
	earn := func(userID, points int) {
		if _, err := client.ExecContext(ctx, "INSERT INTO points (user_id, points) VALUES (?, ?)", userID, points); err != nil {
			panic(err)
		}
	}

	a, _ := login("wxMiniA", "u-person")
	earn(a, 10)
	b, tokenB := login("wxMiniB", "") // no unionid from B yet: another user
	earn(b, 5)
	fmt.Println("users:", a, b)

	merged, _ := login("wxMiniB", "u-person") // B gives the unionid now
	var total int
	rows, _ := client.QueryContext(ctx, "SELECT SUM(points) FROM points WHERE user_id = ?", merged)
	for rows.Next() {
		_ = rows.Scan(&total)
	}
	rows.Close()
	fmt.Printf("user %d has %d points\n", merged, total)

	req, _ := http.NewRequest("GET", "http://"+cfg.HTTP.Addr+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tokenB)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("the absorbed user's token:", resp.StatusCode)
	// Output:
	// users: 1 2
	// points: user 2 is now user 1
	// user 1 has 15 points
	// the absorbed user's token: 401
}
