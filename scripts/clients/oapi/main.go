//go:build ignore

// Command oapi calls a running statusflow through the client oapi-codegen
// generates from its /openapi.json (scripts/clients.sh generates
// client.gen.go beside this file): it creates a sandbox instance, publishes
// a text status with the instance's one-time token, and reads the
// instance's event log until the status.published event of that trace is
// there. Every answer is read through the generated response types.
//
//	(scripts/clients.sh builds it without the ignore constraint)
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "oapi-codegen client:", err)
		os.Exit(1)
	}
}

func token(tok string) RequestEditorFn {
	return func(_ context.Context, r *http.Request) error { r.Header.Set("token", tok); return nil }
}

func run(base, account string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := NewClientWithResponses(base)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("oapi%d", time.Now().UnixNano())
	engine := Sandbox
	created, err := c.PostApiInstanceNewWithResponse(ctx, PostApiInstanceNewJSONRequestBody{Name: name, Engine: &engine}, token(account))
	if err != nil {
		return err
	}
	if created.JSON201 == nil {
		return fmt.Errorf("create: %d %s", created.StatusCode(), created.Body)
	}
	inst := created.JSON201.Instance
	if inst.Token == "" || inst.Name != name {
		return fmt.Errorf("create: no instance token in %s", created.Body)
	}

	msg := "hello from a generated client"
	pub, err := c.PostApiMessageStatusInstanceWithResponse(ctx, name, nil,
		PostApiMessageStatusInstanceJSONRequestBody{Type: StatusPublishInputTypeText, Message: &msg}, token(inst.Token))
	if err != nil {
		return err
	}
	if pub.JSON200 == nil {
		return fmt.Errorf("publish: %d %s", pub.StatusCode(), pub.Body)
	}
	trace := pub.JSON200.Data.TraceId

	for i := 0; ; i++ {
		log, err := c.GetApiEventsLogInstanceWithResponse(ctx, name, &GetApiEventsLogInstanceParams{TraceId: &trace}, token(inst.Token))
		if err != nil {
			return err
		}
		if log.JSON200 == nil {
			return fmt.Errorf("event log: %d %s", log.StatusCode(), log.Body)
		}
		for _, ev := range log.JSON200.Events {
			if ev.Type == "status.published" && ev.Data["messageId"] == pub.JSON200.Data.MessageId {
				fmt.Printf("oapi-codegen client: instance %s, message %s, %d events in trace %s\n", name, pub.JSON200.Data.MessageId, len(log.JSON200.Events), trace)
				return nil
			}
		}
		if i == 50 {
			return fmt.Errorf("event log: no status.published for %s in %s", pub.JSON200.Data.MessageId, log.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
