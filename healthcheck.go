package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/statusflow/statusflow/internal/config"
)

// healthcheck is `statusflow healthcheck [-live]`: it asks the server
// configured by the same environment and flags (STATUSFLOW_ADDR) whether
// it is ready (GET /readyz; with -live only alive, GET /healthz) and
// exits 0 when it answers 200, 1 otherwise. The container image has no
// curl, so its HEALTHCHECK runs this.
func healthcheck(args []string) int {
	path := "/readyz"
	if len(args) > 0 && (args[0] == "-live" || args[0] == "--live") {
		path, args = "/healthz", args[1:]
	}
	cfg, err := config.Load(args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "statusflow healthcheck:", err)
		return 2
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "statusflow healthcheck: STATUSFLOW_ADDR:", err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "statusflow healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "statusflow healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "statusflow healthcheck:", path, "answered", resp.Status)
		return 1
	}
	return 0
}
