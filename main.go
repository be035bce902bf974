// Command statusflow publishes WhatsApp Status for automation tools.
// `go run .` starts it on its embedded defaults; see README.md.
// `statusflow healthcheck` asks a running one whether it is ready.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/statusflow/statusflow/internal/app"
	"github.com/statusflow/statusflow/internal/config"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Args[2:]))
	}
	cfg, err := config.Load(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "statusflow:", err)
		os.Exit(2)
	}
	log := app.NewLogger(cfg.LogFormat, os.Stdout)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("statusflow did not start", "err", err)
		os.Exit(1)
	}
	if err := a.Start(ctx); err != nil {
		log.Error("statusflow did not start", "err", err)
		a.Stop(context.Background())
		os.Exit(1)
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Stop(sctx); err != nil {
		log.Error("shutdown", "err", err)
	}
}
