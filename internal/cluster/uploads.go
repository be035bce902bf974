package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusflow/statusflow/internal/media"
)

// UploadsBucket is the JetStream object store holding uploaded media when
// clustering is on.
const UploadsBucket = "statusflow_uploads"

// uploadReadTimeout bounds reading one upload from the object store.
const uploadReadTimeout = 2 * time.Minute

// Uploads keeps uploaded media (POST /api/media/:instance) in a JetStream
// object store every replica reads, so a mediaUrl uploaded through one
// replica publishes on whichever owns the instance, also after a failover.
// The store chunks the files (a media file is larger than a NATS message),
// keeps STATUSFLOW_NATS_REPLICAS copies, and drops each upload when its
// lifetime ends (the bucket's TTL is the uploads' TTL). It is a
// [media.UploadBlobs].
type Uploads struct {
	obs jetstream.ObjectStore
}

// OpenUploads opens (creating) the uploads bucket: replicas copies, entries
// expiring after ttl.
func OpenUploads(ctx context.Context, js jetstream.JetStream, replicas int, ttl time.Duration) (*Uploads, error) {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: UploadsBucket,
		Description: "statusflow: media uploaded with POST /api/media/:instance, until published or expired",
		TTL:         ttl, Replicas: max(replicas, 1), Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("cluster: uploads bucket: %w", err)
	}
	return &Uploads{obs: obs}, nil
}

const uploadMetaKey = "upload"

// PutUpload stores an upload's bytes with its description.
func (u *Uploads) PutUpload(ctx context.Context, up *media.Upload, r io.Reader) error {
	meta, err := json.Marshal(up)
	if err != nil {
		return err
	}
	_, err = u.obs.Put(ctx, jetstream.ObjectMeta{Name: up.ID, Metadata: map[string]string{uploadMetaKey: string(meta)}}, r)
	return err
}

func describe(info *jetstream.ObjectInfo) (*media.Upload, error) {
	var up media.Upload
	if err := json.Unmarshal([]byte(info.Metadata[uploadMetaKey]), &up); err != nil || up.ID == "" {
		return nil, media.ErrUploadNotFound
	}
	return &up, nil
}

// InfoUpload describes an upload; [media.ErrUploadNotFound] when none.
func (u *Uploads) InfoUpload(ctx context.Context, id string) (*media.Upload, error) {
	info, err := u.obs.GetInfo(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, media.ErrUploadNotFound
	}
	if err != nil {
		return nil, err
	}
	return describe(info)
}

// GetUpload returns an upload and its bytes (read them, then Close);
// [media.ErrUploadNotFound] when none.
func (u *Uploads) GetUpload(ctx context.Context, id string) (*media.Upload, io.ReadCloser, error) {
	// The read outlives the caller's request (an HTTP answer streams after
	// its handler returned): its own deadline, cancelled by Close.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), uploadReadTimeout)
	res, err := u.obs.Get(rctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		cancel()
		return nil, nil, media.ErrUploadNotFound
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		cancel()
		return nil, nil, err
	}
	up, err := describe(info)
	if err != nil {
		res.Close()
		cancel()
		return nil, nil, err
	}
	return up, &objectReader{ObjectResult: res, cancel: cancel}, nil
}

// DeleteUpload removes an upload; a missing one is not an error.
func (u *Uploads) DeleteUpload(ctx context.Context, id string) error {
	err := u.obs.Delete(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return err
}

// objectReader ends its read's context on Close.
type objectReader struct {
	jetstream.ObjectResult
	cancel context.CancelFunc
	once   sync.Once
}

func (r *objectReader) Close() error {
	err := r.ObjectResult.Close()
	r.once.Do(r.cancel)
	return err
}
