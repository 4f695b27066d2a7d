package emulator

import (
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/fx"
)

// Mount is another platform's emulator, served on the same listener as
// WeChat's: its wire API under /<Platform>/ (so that platform's apps get
// http://<emulator>/<Platform> as their base URL) and its device API under
// /emulator/<Platform>/. A platform module contributes one in development
// with [AsMount].
type Mount struct {
	// Platform is the platform's name in config.Apps: "qq", "douyin", "alipay".
	Platform string
	// Wire serves the platform's own API paths.
	Wire http.Handler
	// Device serves /login, /faults, /stats … of the device API.
	Device http.Handler
}

// MountsGroup is the value group of mounts the emulator serves.
const MountsGroup = "emulator.mounts"

// AsMount annotates a constructor of a Mount so that it joins the
// "emulator.mounts" group.
func AsMount(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"`+MountsGroup+`"`))
}

// Mount serves m next to WeChat. It must be called before the emulator
// serves requests.
func (e *Emulator) Mount(m Mount) error {
	if m.Platform == "" || strings.ContainsAny(m.Platform, "/ ") || m.Platform == "emulator" {
		return fmt.Errorf("emulator: a mount needs a plain platform name, not %q", m.Platform)
	}
	if m.Wire != nil {
		e.mux.Handle("/"+m.Platform+"/", http.StripPrefix("/"+m.Platform, m.Wire))
	}
	if m.Device != nil {
		e.mux.Handle("/emulator/"+m.Platform+"/", http.StripPrefix("/emulator/"+m.Platform, m.Device))
	}
	e.mountedMu.Lock()
	e.mounted = append(e.mounted, m.Platform)
	e.mountedMu.Unlock()
	return nil
}

// Platforms lists the platforms served: "wechat" and the mounted ones.
func (e *Emulator) Platforms() []string {
	e.mountedMu.Lock()
	defer e.mountedMu.Unlock()
	return append([]string{"wechat"}, e.mounted...)
}
