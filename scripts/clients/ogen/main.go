//go:build ignore

// Command ogen calls a running statusflow through the client ogen generates
// from its /openapi.json (scripts/clients.sh generates ./api): it lists the
// instances with the account token and reads the answer through the
// generated types. The oapi-codegen client runs the longer scenario.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ogen-go/ogen/ogenerrors"

	"ogenclient/api"
)

// tokens supplies the account token in the token header and skips the
// other schemes of the document.
type tokens struct{ tok string }

func (t tokens) TokenHeader(context.Context, api.OperationName) (api.TokenHeader, error) {
	return api.TokenHeader{APIKey: t.tok}, nil
}

func (t tokens) BearerAuth(context.Context, api.OperationName) (api.BearerAuth, error) {
	return api.BearerAuth{}, ogenerrors.ErrSkipClientSecurity
}

func (t tokens) TokenQuery(context.Context, api.OperationName) (api.TokenQuery, error) {
	return api.TokenQuery{}, ogenerrors.ErrSkipClientSecurity
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := api.NewClient(os.Args[1], tokens{os.Args[2]})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ogen client:", err)
		os.Exit(1)
	}
	res, err := c.GetApiInstanceList(ctx, api.GetApiInstanceListParams{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ogen client:", err)
		os.Exit(1)
	}
	list, ok := res.(*api.InstanceListReply)
	if !ok || !list.Success {
		fmt.Fprintf(os.Stderr, "ogen client: unexpected answer %#v\n", res)
		os.Exit(1)
	}
	fmt.Printf("ogen client: %d instances\n", len(list.Instances))
}
