package example_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
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
	"github.com/wxlogin/wxlogin/modules/wechatpush"
)

// README:begin

// Addresses is a business module that keeps delivery addresses per user.
// When a user is deleted, its delete hook erases their rows inside the
// deletion's transaction (an error aborts the whole deletion: nothing is
// erased and the client gets 503 delete_failed). When the person withdraws
// the address authorization in WeChat (RevokeInfo 2), its listener erases
// them too; it hears bans and deletions after their commit.
var Addresses = fx.Module("addresses",
	fx.Provide(
		user.AsDeleteHook(func(ctx context.Context, tx *ent.Tx, userID int) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM addresses WHERE user_id = ?", userID)
			return err
		}),
		user.AsListener(func(db *ent.Client) user.Listener {
			return func(ctx context.Context, e user.Event) {
				switch e := e.(type) {
				case user.ProfileCleared:
					if slices.Contains(e.RevokeInfo, 2) { // WeChat: the address authorization was withdrawn
						_, _ = db.ExecContext(ctx, "DELETE FROM addresses WHERE user_id = ?", e.UserID)
					}
				case user.Banned:
					fmt.Printf("addresses: user %d banned\n", e.UserID)
				case user.Deleted:
					fmt.Printf("addresses: user %d deleted (cause: %s)\n", e.UserID, e.Cause)
				}
			}
		}),
	),
)

// README:end

// Example_delete: a user keeps addresses; WeChat tells the service the
// person withdrew the address authorization, then the person deletes the
// account: the addresses go each time, and the token stops working.
func Example_delete() {
	dir, _ := os.MkdirTemp("", "delete")
	defer os.RemoveAll(dir)
	env := map[string]string{
		"APP_DATA_DIR": dir, "APP_HTTP_ADDR": freeAddr(), "APP_WECHAT_EMULATOR_ADDR": freeAddr(),
		"APP_DATABASE_DSN": "file:delete?mode=memory&cache=shared", "APP_TOKEN_SECRET": strings.Repeat("s", 32),
		"APP_APPS": `[{"appid":"wxMini","secret":"secret","push_token":"pushToken"}]`,
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		panic(err)
	}
	var client *ent.Client
	app := fx.New(
		config.Static(cfg), log.Module, database.Module, user.Module, provider.Module, platformtoken.Module, wechat.Module,
		token.Module, httpserver.Module, auth.Module, emulator.Module, wechatpush.Module,
		Addresses,
		fx.Populate(&client),
		fx.NopLogger,
	)
	if err := app.Start(context.Background()); err != nil {
		panic(err)
	}
	defer app.Stop(context.Background())
	ctx := context.Background()
	if _, err := client.ExecContext(ctx, "CREATE TABLE addresses (user_id INTEGER NOT NULL, address TEXT NOT NULL)"); err != nil {
		panic(err)
	}
	emu := "http://" + cfg.WeChat.EmulatorAddr
	var device struct{ Code string }
	post(emu+"/emulator/login", `{"openid":"o-person"}`, &device)
	var answer struct {
		AccessToken string `json:"access_token"`
		User        struct{ ID int }
	}
	post("http://"+cfg.HTTP.Addr+"/api/v1/auth/login", `{"code":"`+device.Code+`"}`, &answer)
	addresses := func() int {
		var n int
		rows, _ := client.QueryContext(ctx, "SELECT COUNT(*) FROM addresses WHERE user_id = ?", answer.User.ID)
		for rows.Next() {
			_ = rows.Scan(&n)
		}
		rows.Close()
		return n
	}
	add := func() {
		if _, err := client.ExecContext(ctx, "INSERT INTO addresses (user_id, address) VALUES (?, '北京市海淀区')", answer.User.ID); err != nil {
			panic(err)
		}
	}
	add()
	add()
	fmt.Println("addresses:", addresses())

	var pushed struct{ Status int }
	post(emu+"/emulator/push", `{"event":"user_authorization_revoke","openid":"o-person","revoke_info":"2"}`, &pushed)
	fmt.Println("WeChat's push answered", pushed.Status, "; addresses:", addresses())

	add()
	req, _ := http.NewRequest("DELETE", "http://"+cfg.HTTP.Addr+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+answer.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("DELETE /api/v1/me:", resp.StatusCode, "; addresses:", addresses())

	req, _ = http.NewRequest("GET", "http://"+cfg.HTTP.Addr+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+answer.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("the token:", resp.StatusCode)
	// Output:
	// addresses: 2
	// WeChat's push answered 200 ; addresses: 0
	// addresses: user 1 deleted (cause: user)
	// DELETE /api/v1/me: 204 ; addresses: 0
	// the token: 401
}
