package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/auth"
	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

func TestAuthenticator_Authenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t, store.SQLite)
	tok := auth.NewToken("sfi_")
	if err := st.InstanceInsert(ctx, &store.Instance{Name: "sales", Engine: "sandbox", TokenHash: auth.HashToken(tok), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a := auth.New(auth.HashToken("sfa_account"), st)

	if p, err := a.Authenticate(ctx, "sfa_account"); err != nil || !p.Account {
		t.Fatalf("account: %+v %v", p, err)
	}
	if _, err := a.Authenticate(ctx, ""); !errors.Is(err, auth.ErrMissingToken) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := a.Authenticate(ctx, "nope"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("invalid: %v", err)
	}
	p, err := a.Authenticate(ctx, tok)
	if err != nil || p.Instance != "sales" || p.CanUse("sales") != nil || !errors.Is(p.CanUse("support"), auth.ErrWrongInstance) {
		t.Fatalf("instance: %+v %v", p, err)
	}
	// Deleted through this process: forgotten at once, even while cached.
	if err := st.InstanceDelete(ctx, "sales"); err != nil {
		t.Fatal(err)
	}
	a.Forget("sales")
	if _, err := a.Authenticate(ctx, tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestAccountTokenHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t, store.SQLite)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if h, _ := auth.AccountTokenHash(ctx, st, "configured", log); h != auth.HashToken("configured") {
		t.Fatal("configured token not used")
	}
	first, err := auth.AccountTokenHash(ctx, st, "", log)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := auth.AccountTokenHash(ctx, st, "", log)
	if first != second || len(first) != 64 {
		t.Fatalf("generated hash not kept: %q %q", first, second)
	}
}
