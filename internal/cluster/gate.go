package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/whatsapp"
)

// Gate returns l as the instance manager's [whatsapp.Gate].
func (l *Leases) Gate() whatsapp.Gate { return gate{l} }

type gate struct{ l *Leases }

func (g gate) Acquire(ctx context.Context, instance string) (uint64, error) {
	le, err := g.l.Acquire(ctx, instance)
	switch {
	case errors.Is(err, ErrOwnedElsewhere):
		return 0, fmt.Errorf("%w: %w", whatsapp.ErrOwnedElsewhere, err)
	case err != nil:
		// NATS did not answer (a node died and the lease bucket is electing
		// a leader, a network cut): the instance cannot be opened here for
		// now, which callers answer as a failover gap (503 with
		// Retry-After), not as an internal error.
		return 0, fmt.Errorf("%w: the cluster cannot grant its lease now: %w", whatsapp.ErrNotConnected, err)
	}
	return le.Generation, nil
}

func (g gate) Valid(instance string, generation uint64) bool { return g.l.Valid(instance, generation) }

func (g gate) Release(ctx context.Context, instance string) error { return g.l.Release(ctx, instance) }

// LeasedElsewhere implements the manager's optional lease listing: one
// listing of the lease bucket tells Reconcile which instances hold a live
// lease this replica does not (another replica's, or a previous run's of
// this one), instead of a refused Create and a read per instance every tick.
func (g gate) LeasedElsewhere(ctx context.Context) (map[string]bool, error) {
	m, err := g.l.Leased(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	// A lease held here whose session is closed (it closed near the lease's
	// deadline, then the renewal went through) is reopened as before.
	for _, le := range g.l.HeldAll() {
		delete(m, le.Instance)
	}
	// Nor is one this replica let lapse while NATS did not answer and may
	// take back by revision (Leases.retake) before it expires.
	for _, inst := range g.l.Lapsed() {
		delete(m, inst)
	}
	return m, nil
}
