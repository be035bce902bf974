package whatsapp

import (
	"context"
	"errors"
	"slices"
)

// Privacy modes of a status audience, as the phone's "Status privacy" names
// them. They are part of the API (`audience.mode`).
const (
	// AudienceContacts: "My contacts": every saved contact.
	AudienceContacts = "contacts"
	// AudienceContactsExcept: "My contacts except…": saved contacts but a list.
	AudienceContactsExcept = "contacts_except"
	// AudienceOnlyShareWith: "Only share with…": a list, saved or not.
	AudienceOnlyShareWith = "only_share_with"
)

// AudienceModes lists every privacy mode, for schemas and docs.
func AudienceModes() []string {
	return []string{AudienceContacts, AudienceContactsExcept, AudienceOnlyShareWith}
}

// Audience is who a status would reach: the privacy mode and the recipients
// (user JIDs, own account excluded), sorted.
type Audience struct {
	Mode       string
	Recipients []string
}

// AudienceReader is a session that can tell who a status would reach. Both
// engines implement it; the core asks before every send.
type AudienceReader interface {
	Audience(ctx context.Context) (*Audience, error)
}

// ErrContactsNotSynced: the audience depends on the contact list and the
// contact list has not been synced yet.
var ErrContactsNotSynced = errors.New("whatsapp: contacts not synced yet")

// sortedAudience returns a with its recipients sorted and deduplicated.
func sortedAudience(mode string, recipients []string) *Audience {
	slices.Sort(recipients)
	return &Audience{Mode: mode, Recipients: slices.Compact(recipients)}
}
