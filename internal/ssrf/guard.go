// Package ssrf is the HTTP client for URLs that come from users (media
// URLs, webhook URLs): it refuses schemes other than http and https and
// every connection to a loopback, private, link-local, CGNAT, multicast or
// otherwise reserved address, checked at dial time (so DNS rebinding and
// redirects cannot get around it). Media downloads and webhook deliveries
// both use it.
package ssrf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Errors of the SSRF guard. Callers branch on them with errors.Is; the
// returned errors add the offending URL or address.
var (
	// ErrUnsupportedScheme is returned by [CheckURL] (and so for a redirect)
	// for anything but http and https: file://, ftp://, gopher://, data: …
	ErrUnsupportedScheme = errors.New("only http and https URLs are allowed")
	// ErrForbiddenAddress is returned when a connection would reach a
	// loopback, private, link-local (including cloud metadata), CGNAT,
	// multicast, unspecified or otherwise reserved address.
	ErrForbiddenAddress = errors.New("address is not allowed")
	// ErrTooManyRedirects is returned when a fetch is redirected more often
	// than [GuardConfig.MaxRedirects].
	ErrTooManyRedirects = errors.New("too many redirects")
)

// Defaults of [GuardConfig].
const (
	DefaultMaxRedirects   = 5
	DefaultConnectTimeout = 10 * time.Second
	DefaultHeaderTimeout  = 15 * time.Second
	DefaultTotalTimeout   = 60 * time.Second
)

// LookupFunc resolves a host name to addresses, like
// [net.Resolver.LookupNetIP]. network is "ip".
type LookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// GuardConfig configures [NewGuardedClient]: an HTTP client for URLs that
// come from users (media URLs, webhook URLs), which must never be a way into
// the server's own network.
type GuardConfig struct {
	// AllowPrivate lets connections reach every address, private ones
	// included. For tests and trusted LANs (STATUSFLOW_MEDIA_ALLOW_PRIVATE,
	// STATUSFLOW_WEBHOOK_ALLOW_PRIVATE). Defaults to false.
	AllowPrivate bool

	// AllowAddrs are exact IP:port pairs allowed even though their address is
	// refused otherwise, e.g. one trusted internal media host. Tests use it
	// to let a loopback server through while everything else stays refused.
	// Defaults to none.
	AllowAddrs []netip.AddrPort

	// LookupIP resolves host names before dialling. The answer is still
	// checked at dial time, so a resolver can never let a forbidden address
	// through. Tests set it to map names without real DNS. Defaults to
	// [net.DefaultResolver]'s LookupNetIP.
	LookupIP LookupFunc

	// MaxRedirects is how many redirects a request may follow; each new hop
	// is checked again (scheme at redirect, address at dial). Defaults to
	// [DefaultMaxRedirects]; a negative value refuses every redirect.
	MaxRedirects int

	// ConnectTimeout bounds each TCP connect and TLS handshake. Defaults to
	// [DefaultConnectTimeout].
	ConnectTimeout time.Duration

	// HeaderTimeout bounds the wait for the response headers after the
	// request is written. Defaults to [DefaultHeaderTimeout].
	HeaderTimeout time.Duration

	// Timeout bounds a whole request, redirects and body reading included
	// (http.Client.Timeout), so a server that trickles its body cannot hold a
	// request forever. Defaults to [DefaultTotalTimeout].
	Timeout time.Duration
}

// WithDefaults returns the config with every zero field set to its default.
func (c GuardConfig) WithDefaults() GuardConfig {
	if c.LookupIP == nil {
		c.LookupIP = net.DefaultResolver.LookupNetIP
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTotalTimeout
	}
	return c
}

// NewGuardedClient returns an HTTP client that refuses forbidden addresses.
// The check runs in the dialer's Control function, on the address actually
// being connected to: after DNS resolution (so a public name pointing at
// 169.254.169.254 is refused), for every redirect hop, and for every
// connection attempt of a name with several addresses. Environment proxies are
// ignored, since a proxy would make the dialled address the proxy's.
//
// Refused connections fail with an error wrapping [ErrForbiddenAddress];
// non-http(s) redirects with [ErrUnsupportedScheme]; a long redirect chain
// with [ErrTooManyRedirects]. Callers should still run [CheckURL] on the
// first URL: the client cannot tell a file:// URL's intent from its error.
func NewGuardedClient(cfg GuardConfig) *http.Client {
	cfg = cfg.WithDefaults()
	g := &guard{cfg: cfg}
	g.dialer = &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second, Control: g.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dial,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          32,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, max(cfg.MaxRedirects, 0))
			}
			return CheckURL(req.URL.String())
		},
	}
}

// CheckURL reports whether rawURL may be fetched at all: an absolute http or
// https URL with a host and no user info (credentials in a URL would be sent to
// whatever the name resolves to). It does not resolve the host; the address
// check happens when the guarded client dials.
func CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return fmt.Errorf("%w: scheme %q", ErrUnsupportedScheme, u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("invalid URL: no host")
	}
	if u.User != nil {
		return fmt.Errorf("invalid URL: user info is not allowed")
	}
	return nil
}

// CheckAddr reports whether addr is one the guard refuses when private
// addresses are not allowed, with [ErrForbiddenAddress] and the range's name.
// IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible, NAT64 and 6to4 forms are
// judged by the IPv4 address they carry.
func CheckAddr(addr netip.Addr) error {
	if name, bad := forbidden(addr); bad {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, addr, name)
	}
	return nil
}

type namedPrefix struct {
	p    netip.Prefix
	name string
}

func prefixes(list ...string) []namedPrefix {
	out := make([]namedPrefix, 0, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		out = append(out, namedPrefix{netip.MustParsePrefix(list[i]), list[i+1]})
	}
	return out
}

// The refused ranges (IANA special-purpose registries, RFC 6890 and later).
// Documentation and benchmarking ranges are refused too: nothing legitimate
// serves media there, and some networks route them internally.
var (
	forbiddenV4 = prefixes(
		"0.0.0.0/8", "the unspecified/\"this network\" range",
		"10.0.0.0/8", "private (RFC 1918)",
		"100.64.0.0/10", "carrier-grade NAT (RFC 6598)",
		"127.0.0.0/8", "loopback",
		"169.254.0.0/16", "link-local (cloud metadata)",
		"172.16.0.0/12", "private (RFC 1918)",
		"192.0.0.0/24", "IETF protocol assignments",
		"192.0.2.0/24", "documentation (TEST-NET-1)",
		"192.88.99.0/24", "6to4 relay anycast",
		"192.168.0.0/16", "private (RFC 1918)",
		"198.18.0.0/15", "benchmarking",
		"198.51.100.0/24", "documentation (TEST-NET-2)",
		"203.0.113.0/24", "documentation (TEST-NET-3)",
		"224.0.0.0/4", "multicast",
		"240.0.0.0/4", "reserved (and broadcast)",
	)
	forbiddenV6 = prefixes(
		"::/128", "unspecified",
		"::1/128", "loopback",
		"64:ff9b:1::/48", "local-use NAT64",
		"100::/64", "discard-only",
		"2001::/32", "Teredo",
		"2001:db8::/32", "documentation",
		"fc00::/7", "unique local (private)",
		"fe80::/10", "link-local",
		"fec0::/10", "site-local",
		"ff00::/8", "multicast",
	)
	ipv4Compatible = netip.MustParsePrefix("::/96")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// forbidden names the refused range addr is in.
func forbidden(addr netip.Addr) (string, bool) {
	if !addr.IsValid() {
		return "invalid", true
	}
	addr = addr.WithZone("")
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is4() {
		for _, n := range forbiddenV4 {
			if n.p.Contains(addr) {
				return n.name, true
			}
		}
		return "", false
	}
	for _, n := range forbiddenV6 {
		if n.p.Contains(addr) {
			return n.name, true
		}
	}
	b := addr.As16()
	switch {
	case ipv4Compatible.Contains(addr), nat64.Contains(addr):
		if name, bad := forbidden(netip.AddrFrom4([4]byte(b[12:16]))); bad {
			return name + " (embedded IPv4)", true
		}
	case sixToFour.Contains(addr):
		if name, bad := forbidden(netip.AddrFrom4([4]byte(b[2:6]))); bad {
			return name + " (6to4)", true
		}
	}
	return "", false
}

type guard struct {
	cfg    GuardConfig
	dialer *net.Dialer
}

// allowed is the one address check; everything dialled passes through it.
func (g *guard) allowed(ap netip.AddrPort) error {
	if g.cfg.AllowPrivate {
		return nil
	}
	for _, a := range g.cfg.AllowAddrs {
		if a.Addr().Unmap() == ap.Addr().Unmap() && a.Port() == ap.Port() {
			return nil
		}
	}
	return CheckAddr(ap.Addr())
}

// control runs after the address is chosen and before the socket connects.
func (g *guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrForbiddenAddress, address)
	}
	return g.allowed(ap)
}

// dial resolves with the configured resolver and dials each address in turn.
// The dialer's Control does the check; resolving here only lets tests (and
// deployments) bring their own resolver.
func (g *guard) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = g.cfg.LookupIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("no address for %q", host)
		}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := g.dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
