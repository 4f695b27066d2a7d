package qqemu

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

// Module serves this emulator on the development emulator's listener, next
// to WeChat's: the wire API under /qq/ (the base URL development gives
// qq apps) and the device API under /emulator/qq/. Add it with
// emulator.Module, in development only.
var Module = fx.Module("qqemu",
	fx.Provide(emulator.AsMount(NewMount)),
)

// NewMount builds the emulator of the configured QQ apps for the emulator's listener.
func NewMount(apps config.Apps, log *zap.Logger) emulator.Mount {
	e := New(apps, WithLogger(log.Named("emulator.qq")))
	return emulator.Mount{Platform: config.PlatformQQ, Wire: e.Handler(), Device: e.DeviceHandler()}
}
