package httpserver

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/wxlogin/wxlogin/config"
)

const localClientIP = "wxlogin.client_ip"

// ClientIP is the address of the client that sent the request. It is the
// connection's peer, unless that peer is a trusted proxy
// (config.HTTP.TrustedProxies): then it is the rightmost address of the
// proxy header (config.HTTP.ProxyHeader, X-Forwarded-For by default) that is
// not itself a trusted proxy. Addresses left of it were written by the
// client and prove nothing, which is why the leftmost one is never taken.
func ClientIP(c *fiber.Ctx) string {
	if ip, ok := c.Locals(localClientIP).(string); ok {
		return ip
	}
	return c.Context().RemoteIP().String()
}

// proxyTrust finds the client's address behind trusted proxies.
type proxyTrust struct {
	header  string
	trusted []netip.Prefix
}

func newProxyTrust(cfg config.HTTP) (*proxyTrust, error) {
	prefixes, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		return nil, fmt.Errorf("http: APP_HTTP_TRUSTED_PROXIES: %w", err)
	}
	header := cfg.ProxyHeader
	if header == "" {
		header = fiber.HeaderXForwardedFor
	}
	return &proxyTrust{header: header, trusted: prefixes}, nil
}

func (p *proxyTrust) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p.trusted {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

func (p *proxyTrust) clientIP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Context().RemoteIP().String()
	}
	peer = peer.Unmap()
	if len(p.trusted) == 0 || !p.isTrusted(peer) {
		return peer.String()
	}
	// Every proxy appends the address it received the request from; walk
	// back from the right over the proxies we trust. Several header lines
	// count as one list, in order.
	var hops []string
	c.Request().Header.VisitAll(func(k, v []byte) {
		if strings.EqualFold(string(k), p.header) {
			hops = append(hops, strings.Split(string(v), ",")...)
		}
	})
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // garbage: keep the last address a trusted proxy vouched for
		}
		client = a.Unmap()
		if !p.isTrusted(client) {
			break
		}
	}
	return client.String()
}

// parseHop reads one entry of the proxy header: an address, possibly with a
// port ("1.2.3.4:5678", "[2001:db8::1]:443"), as some proxies write it.
func parseHop(h string) (netip.Addr, bool) {
	h = strings.TrimSpace(h)
	if a, err := netip.ParseAddr(h); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}
