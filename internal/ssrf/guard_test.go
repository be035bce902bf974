package ssrf_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/ssrf"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		given         string
		expectRefused bool
	}{
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // AWS/GCP/Azure metadata
		{"100.100.100.200", true}, // Alibaba metadata, CGNAT range
		{"100.64.0.1", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"255.255.255.255", true},
		{"240.0.0.1", true},
		{"192.0.0.192", true},
		{"198.18.0.1", true},
		{"::", true},
		{"::1", true},
		{"fc00::1", true},
		{"fd00:ec2::254", true}, // AWS IPv6 metadata
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},       // IPv4-mapped
		{"::ffff:169.254.169.254", true}, // IPv4-mapped metadata
		{"::127.0.0.1", true},            // IPv4-compatible
		{"64:ff9b::a9fe:a9fe", true},     // NAT64 of 169.254.169.254
		{"2002:7f00:1::1", true},         // 6to4 of 127.0.0.1
		{"2001:0:4136:e378::1", true},    // Teredo
		{"2001:db8::1", true},

		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"172.32.0.1", false},
		{"100.128.0.1", false},
		{"2606:4700:4700::1111", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", false},  // 6to4 of 8.8.8.8
	} {
		t.Run(tc.given, func(t *testing.T) {
			t.Parallel()
			err := ssrf.CheckAddr(netip.MustParseAddr(tc.given))
			if refused := errors.Is(err, ssrf.ErrForbiddenAddress); refused != tc.expectRefused {
				t.Errorf("CheckAddr(%s) = %v, want refused=%v", tc.given, err, tc.expectRefused)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		given     string
		withError bool
	}{
		{"http://example.com/a.png", false},
		{"HTTPS://example.com/a.png", false},
		{"https://93.184.216.34:8443/x", false},
		{"ftp://example.com/a.png", true},
		{"file:///etc/passwd", true},
		{"data:image/png;base64,AAAA", true},
		{"gopher://example.com", true},
		{"http:///nohost", true},
		{"http://user:pass@example.com/", true},
		{"//example.com/a.png", true},
		{"http://exa mple.com/", true},
	} {
		if err := ssrf.CheckURL(tc.given); (err != nil) != tc.withError {
			t.Errorf("CheckURL(%q) = %v, want error %v", tc.given, err, tc.withError)
		}
	}
}

// TestNewGuardedClient uses the client the way webhook delivery would.
func TestNewGuardedClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)

	get := func(c *http.Client, url string) error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}

	t.Run("RefusesLoopback", func(t *testing.T) {
		t.Parallel()
		c := ssrf.NewGuardedClient(ssrf.GuardConfig{})
		defer c.CloseIdleConnections()
		if err := get(c, srv.URL); !errors.Is(err, ssrf.ErrForbiddenAddress) {
			t.Errorf("err = %v, want ErrForbiddenAddress", err)
		}
	})
	t.Run("AllowPrivate", func(t *testing.T) {
		t.Parallel()
		c := ssrf.NewGuardedClient(ssrf.GuardConfig{AllowPrivate: true})
		defer c.CloseIdleConnections()
		if err := get(c, srv.URL); err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		c := ssrf.GuardConfig{}.WithDefaults()
		if c.MaxRedirects != 5 || c.ConnectTimeout != 10*time.Second || c.Timeout != 60*time.Second || c.LookupIP == nil {
			t.Errorf("defaults = %+v", c)
		}
		if got := ssrf.NewGuardedClient(ssrf.GuardConfig{Timeout: 3 * time.Second}).Timeout; got != 3*time.Second {
			t.Errorf("client timeout = %s", got)
		}
	})
}
