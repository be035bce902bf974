package server_test

import (
	"testing"

	"github.com/statusflow/statusflow/internal/store"
)

// TestServer_Audience: the sandbox's simulated audience over HTTP: the
// default, set at creation, changed, previewed a page at a time, and an
// empty one refused with 409 empty_audience unless allowed.
func TestServer_Audience(t *testing.T) {
	t.Parallel()
	a := newNodesApp(t, store.SQLite)
	a.CreateInstance("sales", "sandbox")
	aud := func(r map[string]any) map[string]any { return r["audience"].(map[string]any) }

	r := a.Do("GET", "/api/instance/audience/sales", acct, nil)
	if r.Code != 200 || aud(r.Body)["mode"] != "contacts" || aud(r.Body)["recipients"] != 3.0 || len(aud(r.Body)["list"].([]any)) != 3 {
		t.Fatalf("default audience: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("POST", "/api/instance/new", acct, `{"name":"vip","engine":"sandbox","audience":{"mode":"only_share_with","recipients":["+15550100001","15550100002@s.whatsapp.net"]}}`); r.Code != 201 {
		t.Fatalf("create with audience: %d %s", r.Code, r.Raw)
	}
	r = a.Do("GET", "/api/instance/audience/vip", acct, nil)
	if list := aud(r.Body)["list"].([]any); aud(r.Body)["mode"] != "only_share_with" || len(list) != 2 || list[0] != "15550100001@s.whatsapp.net" {
		t.Fatalf("audience at creation: %s", r.Raw)
	}
	r = a.Do("PUT", "/api/instance/audience/sales", acct, `{"mode":"contacts","count":250}`)
	if r.Code != 200 || aud(r.Body)["recipients"] != 250.0 || len(aud(r.Body)["list"].([]any)) != 100 {
		t.Fatalf("set 250: %d %s", r.Code, r.Raw)
	}
	r = a.Do("GET", "/api/instance/audience/sales?limit=50&offset=240", acct, nil)
	if len(aud(r.Body)["list"].([]any)) != 10 {
		t.Fatalf("last page: %s", r.Raw)
	}
	p := a.Do("POST", "/api/message/status/sales", acct, `{"type":"text","message":"hi"}`)
	if p.Code != 200 || p.Body["status"] != "sent" || p.Data()["confirmed"] != true {
		t.Fatalf("publish: %d %s", p.Code, p.Raw)
	}
	if got := p.Data()["audience"].(map[string]any); got["mode"] != "contacts" || got["recipients"] != 250.0 {
		t.Fatalf("publish audience: %s", p.Raw)
	}

	if r := a.Do("PUT", "/api/instance/audience/sales", acct, `{"mode":"contacts_except","count":0}`); r.Code != 200 {
		t.Fatalf("set empty: %d %s", r.Code, r.Raw)
	}
	p = a.Do("POST", "/api/message/status/sales", acct, `{"type":"text","message":"hi"}`)
	if p.Code != 409 || p.ErrorStatus() != "empty_audience" {
		t.Fatalf("empty audience: %d %s", p.Code, p.Raw)
	}
	p = a.Do("POST", "/api/message/status/sales", acct, `{"type":"text","message":"hi","allowEmptyAudience":true}`)
	if p.Code != 200 || p.Data()["audience"].(map[string]any)["recipients"] != 0.0 {
		t.Fatalf("allowEmptyAudience: %d %s", p.Code, p.Raw)
	}
	if r := a.Do("PUT", "/api/instance/audience/sales", acct, `{"mode":"everyone"}`); r.Code != 400 {
		t.Fatalf("bad mode: %d %s", r.Code, r.Raw)
	}
	if r := a.Do("PUT", "/api/instance/audience/sales", acct, `{"mode":"contacts","count":1,"recipients":["15550100001"]}`); r.Code != 400 {
		t.Fatalf("both count and recipients: %d %s", r.Code, r.Raw)
	}
}
