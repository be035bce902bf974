// Package app wires statusflow together: config → store → engines → core →
// front doors. main.go calls it; tests start whole servers with it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/config"
	"github.com/statusflow/statusflow/internal/events"
	"github.com/statusflow/statusflow/internal/status"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/whatsapp"
	"github.com/statusflow/statusflow/schemas"
	"github.com/statusflow/statusflow/server"
)

// App is a running statusflow.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Store    *store.Store
	Manager  *whatsapp.Manager
	Service  *status.Service
	Recorder *events.Recorder
	Server   *server.Server

	listener net.Listener
	stops    []func(ctx context.Context) error
}

// NewLogger returns the JSON logger (text on a terminal, or as configured).
func NewLogger(format string, w io.Writer) *slog.Logger {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// New builds every part from cfg. Nothing listens until Start.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{Config: cfg, Log: log}
	defer func() {
		if err != nil {
			a.Stop(context.Background())
		}
	}()
	a.Store, err = store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a.stops = append(a.stops, func(context.Context) error { return a.Store.Close() })

	accountHash, err := auth.AccountTokenHash(ctx, a.Store, cfg.AccountToken, log)
	if err != nil {
		return nil, fmt.Errorf("account token: %w", err)
	}

	a.Recorder = events.NewRecorder(a.Store, log)
	engines := []whatsapp.Engine{whatsapp.NewSandbox(a.Store)}
	a.Manager = whatsapp.NewManager(a.Store, log, engines...)
	a.stops = append(a.stops, func(context.Context) error { a.Manager.Stop(); return nil })

	validator, err := schemas.New()
	if err != nil {
		return nil, err
	}
	a.Service = status.NewService(a.Manager, a.Store, nil, a.Recorder, nil, log)
	a.Manager.OnState = func(c whatsapp.StateChange) { a.Service.EmitInstanceState(context.Background(), c) }

	a.Server = server.New(server.Deps{
		Store: a.Store, Manager: a.Manager, Service: a.Service, Validator: validator, Log: log,
		Checks: map[string]func(context.Context) error{
			"database": a.Store.Ping,
		},
		Auth: auth.New(accountHash, a.Store),
	}, server.Config{RateLimit: cfg.RateLimit})
	return a, nil
}

// Start opens the stored instances and starts serving HTTP on cfg.Addr.
func (a *App) Start(ctx context.Context) error {
	if err := a.Manager.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("STATUSFLOW_ADDR %s: %w", a.Config.Addr, err)
	}
	a.listener = ln
	go func() {
		if err := a.Server.App().Listener(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			a.Log.Error("http server stopped", "err", err)
		}
	}()
	a.Log.Info("statusflow listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the HTTP address actually listened on (useful with port 0).
func (a *App) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// Stop shuts down in reverse order of start. A second Stop is harmless.
func (a *App) Stop(ctx context.Context) error {
	var errs []error
	if a.Server != nil && a.listener != nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		errs = append(errs, a.Server.Shutdown(sctx))
		cancel()
		a.listener = nil
	}
	for i := len(a.stops) - 1; i >= 0; i-- {
		errs = append(errs, a.stops[i](ctx))
	}
	a.stops = nil
	return errors.Join(errs...)
}
