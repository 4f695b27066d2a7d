package alipayemu

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

// Module serves this emulator on the development emulator's listener, next
// to WeChat's: the wire API under /alipay/ (the base URL development gives
// alipay apps) and the device API under /emulator/alipay/. Add it with
// emulator.Module, in development only.
var Module = fx.Module("alipayemu",
	fx.Provide(emulator.AsMount(NewMount)),
)

// NewMount builds the emulator of the configured Alipay apps, with the
// development key pairs the configuration keeps, for the emulator's listener.
func NewMount(cfg *config.Config, log *zap.Logger) (emulator.Mount, error) {
	e, err := NewDevelopment(cfg, WithLogger(log.Named("emulator.alipay")))
	if err != nil {
		return emulator.Mount{}, err
	}
	return emulator.Mount{Platform: config.PlatformAlipay, Wire: e.Handler(), Device: e.DeviceHandler()}, nil
}
