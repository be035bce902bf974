package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/statusflow/statusflow/internal/apptest"
)

// owned returns each live replica's count of held leases.
func owned(c *apptest.Cluster) map[string]int {
	out := map[string]int{}
	for _, r := range c.Live() {
		out[r.ID] = len(r.Leases.HeldAll())
	}
	return out
}

func waitOwned(t *testing.T, c *apptest.Cluster, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := owned(c)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances owned %v, want %v within 30 s", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A replica alone owns every instance; a replica that joins takes its
// share one instance at a time until both own as many, then nothing moves
// any more (the two-instance hysteresis); a new instance created on the
// busier replica goes to the less loaded one.
func TestPlacement_JoinAndNewInstances(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	c := apptest.NewCluster(t, apptest.ClusterOptions{Replicas: 1, LeaseTTL: ttl})
	r0 := c.Replicas[0]
	for i := range 6 {
		r0.CreateInstance(fmt.Sprint("p", i), "sandbox")
	}
	waitOwned(t, c, map[string]int{"r0": 6})
	c.Add()
	waitOwned(t, c, map[string]int{"r0": 3, "r1": 3})
	// Balanced: for several ticks, no instance changes hands.
	owners := map[string]string{}
	for i := range 6 {
		owners[fmt.Sprint("p", i)] = c.Owner(fmt.Sprint("p", i))
	}
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for name, was := range owners {
			if now := c.Owner(name); now != was {
				t.Fatalf("%s moved from %s to %s once balanced (flapping)", name, was, now)
			}
		}
	}
	// Two new instances through r0: the first leaves it one ahead (stays),
	// the second would leave it two ahead, so it goes to r1.
	r0.CreateInstance("p6", "sandbox")
	r0.CreateInstance("p7", "sandbox")
	waitOwned(t, c, map[string]int{"r0": 4, "r1": 4})
	// Every instance still answers, through either replica.
	for i := range 8 {
		r := c.Live()[i%2].Do("GET", "/api/cluster", apptest.AccountToken, nil)
		if r.Code != 200 {
			t.Fatalf("GET /api/cluster: %d %s", r.Code, r.Raw)
		}
	}
}
