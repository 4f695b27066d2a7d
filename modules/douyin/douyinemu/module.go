package douyinemu

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

// Module serves this emulator on the development emulator's listener, next
// to WeChat's: the wire API under /douyin/ (the base URL development gives
// douyin apps) and the device API under /emulator/douyin/. Add it with
// emulator.Module, in development only.
var Module = fx.Module("douyinemu",
	fx.Provide(emulator.AsMount(NewMount)),
)

// NewMount builds the emulator of the configured Douyin apps for the emulator's listener.
func NewMount(apps config.Apps, log *zap.Logger) emulator.Mount {
	e := New(apps, WithLogger(log.Named("emulator.douyin")))
	return emulator.Mount{Platform: config.PlatformDouyin, Wire: e.Handler(), Device: e.DeviceHandler()}
}
