// Package buildinfo names the running build, for the metrics
// (wxlogin_build_info) and the traces (service.version).
package buildinfo

import "runtime/debug"

// Version and Revision name the build. Set them at build time with
//
//	-ldflags "-X github.com/wxlogin/wxlogin/internal/buildinfo.Version=v1.2.3 -X github.com/wxlogin/wxlogin/internal/buildinfo.Revision=$(git rev-parse HEAD)"
//
// Unset, they come from the Go build information: the main module's version
// and the VCS revision Go stamps into binaries built from a checkout.
var (
	Version  string
	Revision string
)

// Get returns the build's version and VCS revision ("" when unknown).
func Get() (version, revision string) {
	version, revision = Version, Revision
	if info, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && revision == "" {
				revision = s.Value
			}
		}
	}
	return version, revision
}
