package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/statusflow/statusflow/internal/whatsapp"
)

// Gate returns l as the instance manager's [whatsapp.Gate].
func (l *Leases) Gate() whatsapp.Gate { return gate{l} }

type gate struct{ l *Leases }

func (g gate) Acquire(ctx context.Context, instance string) (uint64, error) {
	le, err := g.l.Acquire(ctx, instance)
	if errors.Is(err, ErrOwnedElsewhere) {
		return 0, fmt.Errorf("%w: %w", whatsapp.ErrOwnedElsewhere, err)
	}
	return le.Generation, err
}

func (g gate) Valid(instance string, generation uint64) bool { return g.l.Valid(instance, generation) }

func (g gate) Release(ctx context.Context, instance string) error { return g.l.Release(ctx, instance) }
