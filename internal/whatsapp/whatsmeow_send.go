package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// ready waits until the session is connected (logged in and contacts
// synced). It returns at once with [ErrNotConnected] when the session is
// unlinked, disconnected or logged out (the error also matches
// [ErrNotPaired] when unlinked), and after the engine's sync timeout when a
// connecting session does not get there; ctx's error when ctx ends first.
func (s *whatsmeowSession) ready(ctx context.Context) (waClient, error) {
	timeout := time.NewTimer(s.engine.syncTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		st, ch, cli, closed, linked := s.state, s.changed, s.cli, s.closed, s.jid != ""
		s.mu.Unlock()
		switch {
		case closed:
			return nil, fmt.Errorf("%w: session closed", ErrNotConnected)
		case !linked:
			return nil, fmt.Errorf("%w: %w", ErrNotConnected, ErrNotPaired)
		case st == StateConnected:
			return cli, nil
		case st != StateConnecting:
			return nil, fmt.Errorf("%w: %s", ErrNotConnected, st)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, fmt.Errorf("%w: not logged in and synced within %s", ErrNotConnected, s.engine.syncTimeout)
		}
	}
}

// mediaType maps a [MediaKind] to whatsmeow's upload bucket.
func mediaType(kind MediaKind) (whatsmeow.MediaType, error) {
	switch kind {
	case MediaImage:
		return whatsmeow.MediaImage, nil
	case MediaVideo:
		return whatsmeow.MediaVideo, nil
	case MediaAudio:
		return whatsmeow.MediaAudio, nil
	}
	return "", fmt.Errorf("unknown media kind %q", kind)
}

// Upload implements [Session]: it waits for the session to be ready, then
// encrypts r through a temporary file and uploads it with whatsmeow.
func (s *whatsmeowSession) Upload(ctx context.Context, r io.ReadSeeker, size int64, kind MediaKind) (*Upload, error) {
	mt, err := mediaType(kind)
	if err != nil {
		return nil, err
	}
	cli, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind media: %w", err)
	}
	var body io.Reader = r
	if size > 0 {
		body = io.LimitReader(r, size)
	}
	resp, err := cli.UploadReader(ctx, body, nil, mt)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", kind, notConnected(err))
	}
	return &Upload{
		URL:           resp.URL,
		DirectPath:    resp.DirectPath,
		MediaKey:      resp.MediaKey,
		FileEncSHA256: resp.FileEncSHA256,
		FileSHA256:    resp.FileSHA256,
		FileLength:    resp.FileLength,
		// whatsmeow makes the media key inside UploadReader, just now.
		MediaKeyTimestamp: s.engine.now().Unix(),
	}, nil
}

// SendStatus implements [Session]: it waits for the session to be ready and
// sends msg to status@broadcast with message id id (see [whatsmeowSession.send]:
// deadline by audience size, [ErrUnconfirmed], [RefusedError]).
func (s *whatsmeowSession) SendStatus(ctx context.Context, id string, msg *waE2E.Message) (time.Time, error) {
	cli, err := s.ready(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return s.send(ctx, cli, id, msg)
}

// RevokeStatus implements [Session]: it sends a revoke of this device's
// status id to status@broadcast.
func (s *whatsmeowSession) RevokeStatus(ctx context.Context, id string) (time.Time, error) {
	cli, err := s.ready(ctx)
	if err != nil {
		return time.Time{}, err
	}
	rev := cli.BuildRevoke(types.StatusBroadcastJID, types.EmptyJID, id)
	resp, err := cli.SendMessage(ctx, types.StatusBroadcastJID, rev)
	if err != nil {
		return time.Time{}, notConnected(err)
	}
	return resp.Timestamp.UTC(), nil
}

// notConnected wraps whatsmeow's connection errors in [ErrNotConnected].
func notConnected(err error) error {
	if errors.Is(err, whatsmeow.ErrNotConnected) || errors.Is(err, whatsmeow.ErrNotLoggedIn) {
		return fmt.Errorf("%w: %v", ErrNotConnected, err)
	}
	return err
}
