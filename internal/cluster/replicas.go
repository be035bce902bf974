package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReplicasBucketDefault is the KV bucket where replicas announce themselves.
const ReplicasBucketDefault = "statusflow_replicas"

// ReplicaInfo is a replica as it announces itself: one key per replica in
// the replicas bucket, put at every heartbeat (a third of the lease TTL) and
// expiring after the TTL, so a dead replica drops out of the list when its
// leases lapse.
type ReplicaInfo struct {
	ID string `json:"id"`
	// Address is where its HTTP API listens (STATUSFLOW_ADDR as bound).
	Address string    `json:"address"`
	Started time.Time `json:"started"`
	// InstancesOwned is how many instance leases it held at its last heartbeat.
	InstancesOwned int       `json:"instancesOwned"`
	LastHeartbeat  time.Time `json:"lastHeartbeat"`
}

// openReplicas opens (or creates) the replicas bucket.
func openReplicas(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: ReplicasBucketDefault, Description: "statusflow replicas and their heartbeats",
		TTL: cfg.TTL, History: 1, Replicas: cfg.Replicas, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: replicas bucket: %w", err)
	}
	return kv, nil
}

// SetAddress sets what this replica announces as its address.
func (l *Leases) SetAddress(addr string) {
	l.mu.Lock()
	l.address = addr
	l.mu.Unlock()
}

// Heartbeat announces this replica (id, address, start, instances owned).
func (l *Leases) Heartbeat(ctx context.Context) error {
	l.mu.Lock()
	info := ReplicaInfo{ID: l.cfg.Replica, Address: l.address, Started: l.started, LastHeartbeat: l.cfg.Now().UTC()}
	for _, le := range l.held {
		if info.LastHeartbeat.Before(le.Deadline) {
			info.InstancesOwned++
		}
	}
	l.mu.Unlock()
	b, _ := json.Marshal(info)
	if _, err := l.reg.Put(ctx, "r."+l.cfg.Replica, b); err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	return nil
}

// Replicas lists the live replicas (those whose heartbeat is younger than
// the TTL), by id.
func (l *Leases) Replicas(ctx context.Context) ([]ReplicaInfo, error) {
	lister, err := l.reg.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []ReplicaInfo
	for k := range lister.Keys() {
		e, err := l.reg.Get(ctx, k)
		if err != nil {
			continue // expired meanwhile
		}
		var info ReplicaInfo
		if json.Unmarshal(e.Value(), &info) == nil {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Unregister removes this replica from the list (a normal stop).
func (l *Leases) Unregister(ctx context.Context) error {
	return l.reg.Delete(ctx, "r."+l.cfg.Replica)
}

// View is the cluster as GET /api/cluster shows it.
type View struct {
	Enabled   bool            `json:"enabled"`
	Replica   string          `json:"replica"`
	LeaseTTL  string          `json:"leaseTtl,omitempty"`
	Replicas  []ReplicaInfo   `json:"replicas"`
	Instances []InstanceOwner `json:"instances"`
}

// InstanceOwner is an instance and the replica holding its lease.
type InstanceOwner struct {
	Instance string `json:"instance"`
	Owner    string `json:"owner"`
}

// View reads the live replicas and the owner of every instance in
// instances (an instance without a live lease has owner "").
func (l *Leases) View(ctx context.Context, instances []string) (View, error) {
	reps, err := l.Replicas(ctx)
	if err != nil {
		return View{}, err
	}
	owners, err := l.Owners(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return View{}, err
	}
	v := View{Enabled: true, Replica: l.cfg.Replica, LeaseTTL: l.cfg.TTL.String(), Replicas: reps, Instances: []InstanceOwner{}}
	if v.Replicas == nil {
		v.Replicas = []ReplicaInfo{}
	}
	for _, name := range instances {
		v.Instances = append(v.Instances, InstanceOwner{Instance: name, Owner: owners[name]})
	}
	return v, nil
}
