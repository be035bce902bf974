package server

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/statusflow/statusflow/internal/cluster"
	"github.com/statusflow/statusflow/internal/errcode"
)

// ClusterView is what GET /api/cluster reads from internal/cluster: the
// live replicas and the owner of each instance.
type ClusterView interface {
	View(ctx context.Context, instances []string) (cluster.View, error)
}

// SetCluster makes GET /api/cluster show v (clustering on). Call before serving.
func (s *Server) SetCluster(v ClusterView) { s.cluster = v }

// getCluster is GET /api/cluster.
func (s *Server) getCluster(c *fiber.Ctx) error {
	if s.cluster == nil {
		return OK(c, "Clustering is off", fiber.Map{"data": cluster.View{Replicas: []cluster.ReplicaInfo{}, Instances: []cluster.InstanceOwner{}}})
	}
	ctx := c.UserContext()
	list, err := s.deps.Instances.InstanceList(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(list))
	for i, in := range list {
		names[i] = in.Name
	}
	v, err := s.cluster.View(ctx, names)
	if err != nil {
		// The cluster's KV is unreachable: this replica cannot tell.
		return errcode.Wrap(errcode.CodeInternal, "Cluster state unavailable", err)
	}
	return OK(c, strconv.Itoa(len(v.Replicas))+" replicas", fiber.Map{"data": v})
}
