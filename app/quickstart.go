package main

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// quickStart prints, in development, the commands that log in through the
// emulator and call the API.
func quickStart(lc fx.Lifecycle, cfg *config.Config, srv *httpserver.Server) {
	if !cfg.IsDevelopment() || !cfg.WeChat.Emulator {
		return
	}
	lc.Append(fx.StartHook(func(context.Context) {
		api := "http://" + srv.Addr()
		fmt.Fprintf(os.Stderr, `
wxlogin is up (development). Try it:

  # 1. be a device: wx.login through the built-in emulator
  CODE=$(curl -s -X POST http://%[1]s/emulator/login -d '{"openid":"demo-user"}' | sed 's/.*"code":"\([^"]*\)".*/\1/')
  # 2. log in with the code
  TOKEN=$(curl -s -X POST %[2]s/api/v1/auth/login -H 'Content-Type: application/json' -d "{\"code\":\"$CODE\"}" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  # 3. call the API as that user
  curl -s %[2]s/api/v1/me -H "Authorization: Bearer $TOKEN"

`, cfg.WeChat.EmulatorAddr, api)
	}))
}
