package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/whatsapp"
)

// KeyedMessageID is the message id of every command with Idempotency-Key
// key on instance: 3EB0 and 18 hex digits of SHA-256(instance, key). Fixing
// the id when the key is first seen means every retry of the key, on any
// front door (HTTP, respond-async, node execute, NATS trigger, inbound
// hook), sends the same id: a retry whose first attempt did reach WhatsApp
// does not post a second status under a new id that nobody can revoke.
// Reusing a key for another publication after the 24 h window gives the
// same id again; keys are per publication.
func KeyedMessageID(instance, key string) string {
	h := sha256.Sum256([]byte("statusflow/message-id\x00" + instance + "\x00" + key))
	return "3EB0" + strings.ToUpper(hex.EncodeToString(h[:9]))
}

// MessageIDFor is the id a front door pre-assigns (respond-async): the
// keyed id when the request has an Idempotency-Key, else a fresh one.
func MessageIDFor(instance, key string) string {
	if key != "" {
		return KeyedMessageID(instance, key)
	}
	return NewMessageID()
}

// Audience is who a status reaches: the phone's status privacy mode
// (contacts, contacts_except, only_share_with) and the recipient count.
type Audience struct {
	Mode       string `json:"mode"`
	Recipients int    `json:"recipients"`
}

// audience reads who a status would reach when the session can tell, and
// refuses an empty one unless the request allows it. nil when the session
// cannot tell.
func (s *Service) audience(ctx context.Context, sess whatsapp.Session, a PublishArgs) (*Audience, error) {
	ar, ok := sess.(whatsapp.AudienceReader)
	if !ok {
		return nil, nil
	}
	aud, err := ar.Audience(ctx)
	if err != nil {
		if errors.Is(err, whatsapp.ErrNotConnected) {
			return nil, &errcode.Error{Code: errcode.CodeDisconnected, Message: errcode.ErrDisconnected.Message, Err: err}
		}
		return nil, errcode.Wrap(errcode.CodeSendFailed, "Failed to send status: could not read the status audience", err)
	}
	res := &Audience{Mode: aud.Mode, Recipients: len(aud.Recipients)}
	if res.Recipients == 0 && !a.AllowEmptyAudience {
		return nil, &errcode.Error{Code: errcode.CodeEmptyAudience, Message: emptyAudienceMessage(aud.Mode)}
	}
	return res, nil
}

// emptyAudienceMessage says why a status would reach nobody and what to change.
func emptyAudienceMessage(mode string) string {
	why := "the phone's status privacy is \"My contacts\" and no contact with a saved name was found"
	switch mode {
	case whatsapp.AudienceContactsExcept:
		why = "the phone's status privacy is \"My contacts except…\" and it excludes every contact with a saved name"
	case whatsapp.AudienceOnlyShareWith:
		why = "the phone's status privacy is \"Only share with…\" and its list is empty"
	}
	return "This status would reach nobody: " + why + ". Change Status privacy on the phone (or save contacts), " +
		"or send allowEmptyAudience: true to publish anyway."
}
