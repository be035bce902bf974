package errcode_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/statusflow/statusflow/internal/errcode"
)

func TestError_IsMatchesByCode(t *testing.T) {
	notFound := errcode.New(errcode.CodeWebhookNotFound, "Webhook not found")
	wrapped := fmt.Errorf("upsert: %w", errcode.Wrap(errcode.CodeWebhookNotFound, "gone", errors.New("sql: no rows")))
	if !errors.Is(wrapped, notFound) {
		t.Error("a wrapped error with the same code does not match the sentinel")
	}
	if errors.Is(wrapped, errcode.New(errcode.CodeDeliveryNotFound, "Delivery not found")) {
		t.Error("an error matches a sentinel of another code")
	}
	if got := errcode.AsError(errors.New("boom")); got.Code != errcode.CodeInternal || got.Message != "Internal error" {
		t.Errorf("AsError(plain) = %+v", got)
	}
}

func TestCode_PublicHidesEdgeCodesButNotBusCodes(t *testing.T) {
	for _, c := range []errcode.Code{errcode.CodeTokenMissing, errcode.CodeTokenInvalid, errcode.CodeWrongInstance, errcode.CodeWebhookNotFound, errcode.CodeReplayed, errcode.CodeInvalid} {
		if c.Public() {
			t.Errorf("%s is public; HTTP envelopes never showed it", c)
		}
	}
	for _, c := range []errcode.Code{errcode.CodeUnauthorized, errcode.CodeForbidden, errcode.CodeDuplicate, errcode.CodeBadSubject, errcode.CodeDisconnected} {
		if !c.Public() {
			t.Errorf("%s is not public; NATS reply envelopes show it", c)
		}
	}
}
