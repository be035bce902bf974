package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/statusflow/statusflow/internal/errcode"
	"github.com/statusflow/statusflow/internal/metrics"
)

// Kinds of forwarded requests, the `kind` label of
// statusflow_cluster_forwarded_total.
const (
	// KindCommand is a core command (publish, delete, schedule cancel) on
	// <prefix>.cluster.execute.<replica>.
	KindCommand = "command"
	// KindHTTP is an HTTP request of a route that needs the live session
	// (connect, reconnect, logout, delete, audience, sandbox views and
	// media) on <prefix>.cluster.http.<replica>.
	KindHTTP = "http"
)

// Headers of the forwarded HTTP request and answer on NATS beside the HTTP
// headers themselves (which travel as they are). An HTTP header of a caller
// with this prefix is dropped: only replicas set them.
const (
	hdrPrefix = "Statusflow-Fwd-"
	hdrMethod = hdrPrefix + "Method"
	hdrURI    = hdrPrefix + "Uri"
	hdrRemote = hdrPrefix + "Remote"
	hdrStatus = hdrPrefix + "Status"
	hdrSeq    = hdrPrefix + "Seq"
	hdrFinal  = hdrPrefix + "Final"
)

// chunkHeadroom is what an answer's chunk leaves of the server's maximum
// payload for the NATS headers (HTTP headers of the answer and ours).
const chunkHeadroom = 32 << 10

// HTTPRequest is an HTTP request another replica received for an instance
// this one owns.
type HTTPRequest struct {
	Method string
	// URI is the path with its query string.
	URI string
	// Remote is the caller's address as the receiving replica saw it.
	Remote string
	Header http.Header
	Body   []byte
}

// HTTPResponse is the owner's answer to an [HTTPRequest].
type HTTPResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// HTTPHandler serves a forwarded request through the owner's own HTTP
// handler chain (authentication included), never forwarding it again.
type HTTPHandler func(ctx context.Context, req *HTTPRequest) *HTTPResponse

// hopHeaders are not forwarded (RFC 9110 §7.6.1, plus what the owner
// recomputes).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Date": true, "Server": true,
}

func forwardable(key string) bool {
	k := http.CanonicalHeaderKey(key)
	return !hopHeaders[k] && !strings.HasPrefix(k, hdrPrefix)
}

// HTTPSubject is where replica takes forwarded HTTP requests.
func (f *Forwarder) HTTPSubject(replica string) string {
	return f.cfg.Prefix + ".cluster.http." + replica
}

// ServeHTTP makes this replica answer forwarded HTTP requests with h. Call
// before Start.
func (f *Forwarder) ServeHTTP(h HTTPHandler) { f.http = h }

// MaxForwardBody is the largest request body an HTTP request can be
// forwarded with (it travels in one NATS message); a larger one is refused
// with 413 by the receiving replica.
func (f *Forwarder) MaxForwardBody() int {
	return max(int(f.nc.MaxPayload())-chunkHeadroom, 0)
}

// Locate tells where a request for instance runs: "" here (this replica
// holds the lease, or nobody does and this replica takes it as the session
// opens), the owner's replica id to forward to, or the failover gap's error
// (503 disconnected with Retry-After) when nobody can serve it now.
func (f *Forwarder) Locate(ctx context.Context, instance string) (owner string, err error) {
	return f.locate(ctx, KindHTTP, instance)
}

func (f *Forwarder) locate(ctx context.Context, kind, instance string) (string, error) {
	if _, ok := f.leases.Held(instance); ok {
		return "", nil
	}
	owner, _, err := f.leases.Owner(ctx, instance)
	switch {
	case err != nil:
		f.log.Warn("cluster: read an instance's owner", "instance", instance, "err", err)
		return "", f.gap(kind, ForwardUnreachable, "the cluster cannot tell its owner")
	case owner == "":
		// Nobody holds it (new, or its owner's lease lapsed): this replica
		// takes it when the request opens its session.
		return "", nil
	case owner == f.leases.cfg.Replica:
		// A previous run of this replica (killed) still holds it until the lease lapses.
		return "", f.gap(kind, ForwardNoOwner, "failover in progress")
	}
	return owner, nil
}

// NotHere is the answer of a replica that was forwarded a request for an
// instance it does not hold while another replica does (the lease moved
// meanwhile): the gap's 503, never a second forward.
func (f *Forwarder) NotHere(instance string) error {
	return errcode.RetryAfter(errcode.Errorf(errcode.CodeDisconnected, "%s (%s); retry shortly",
		errcode.ErrDisconnected.Message, "its owner changed meanwhile"), f.leases.TTL())
}

// ForwardHTTP sends req to owner and returns its answer; in a gap (nobody
// answers, no answer in time, NATS fails) the error is the gap's 503.
func (f *Forwarder) ForwardHTTP(ctx context.Context, owner string, req *HTTPRequest) (*HTTPResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.cfg.Timeout)
		defer cancel()
	}
	msg := nats.NewMsg(f.HTTPSubject(owner))
	for k, vs := range req.Header {
		if forwardable(k) {
			for _, v := range vs {
				msg.Header.Add(k, v)
			}
		}
	}
	msg.Header.Set(hdrMethod, req.Method)
	msg.Header.Set(hdrURI, req.URI)
	msg.Header.Set(hdrRemote, req.Remote)
	msg.Data = req.Body

	// The answer may come in several messages (a media file larger than a
	// NATS message), so the reply inbox is our own subscription.
	inbox := f.nc.NewInbox()
	sub, err := f.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, f.gap(KindHTTP, ForwardUnreachable, "forwarding to its replica "+owner+" failed: "+err.Error())
	}
	defer sub.Unsubscribe()
	msg.Reply = inbox
	if err := f.nc.PublishMsg(msg); err != nil {
		return nil, f.gap(KindHTTP, ForwardUnreachable, "forwarding to its replica "+owner+" failed: "+err.Error())
	}
	var resp *HTTPResponse
	for seq := 0; ; seq++ {
		m, err := sub.NextMsgWithContext(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
			return nil, f.gap(KindHTTP, ForwardTimeout, "its replica "+owner+" did not answer in time")
		case err != nil:
			return nil, f.gap(KindHTTP, ForwardUnreachable, "forwarding to its replica "+owner+" failed: "+err.Error())
		}
		if seq == 0 && m.Header.Get("Status") == "503" && len(m.Data) == 0 {
			return nil, f.gap(KindHTTP, ForwardUnreachable, "its replica "+owner+" does not answer")
		}
		if got := m.Header.Get(hdrSeq); got != strconv.Itoa(seq) {
			metrics.ClusterForwarded(KindHTTP, ForwardError)
			return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", fmt.Errorf("owner %s: answer chunk %q, want %d", owner, got, seq))
		}
		if seq == 0 {
			status, err := strconv.Atoi(m.Header.Get(hdrStatus))
			if err != nil || status < 100 || status > 999 {
				metrics.ClusterForwarded(KindHTTP, ForwardError)
				return nil, errcode.Wrap(errcode.CodeInternal, "Internal error", fmt.Errorf("owner %s: answer without a status", owner))
			}
			resp = &HTTPResponse{Status: status, Header: http.Header{}}
			for k, vs := range m.Header {
				if forwardable(k) && k != "Status" && k != "Description" {
					resp.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
				}
			}
			resp.Body = m.Data
		} else {
			resp.Body = append(resp.Body, m.Data...)
		}
		if m.Header.Get(hdrFinal) != "" {
			break
		}
	}
	outcome := ForwardOK
	if resp.Status >= 400 {
		outcome = ForwardError
	}
	metrics.ClusterForwarded(KindHTTP, outcome)
	return resp, nil
}

// serveHTTP answers one forwarded HTTP request (on a worker of the pool, as
// commands are).
func (f *Forwarder) serveHTTP(m *nats.Msg) {
	f.mu.Lock()
	if f.stopped || f.http == nil || m.Reply == "" {
		f.mu.Unlock()
		return // the requester times out into the gap
	}
	f.inflight.Add(1)
	f.mu.Unlock()
	f.pool.run(func() {
		defer f.inflight.Done()
		req := &HTTPRequest{Method: m.Header.Get(hdrMethod), URI: m.Header.Get(hdrURI), Remote: m.Header.Get(hdrRemote),
			Header: http.Header{}, Body: m.Data}
		for k, vs := range m.Header {
			if forwardable(k) {
				req.Header[http.CanonicalHeaderKey(k)] = vs
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Timeout)
		resp := f.http(ctx, req)
		cancel()
		if err := f.answerHTTP(m.Reply, resp); err != nil {
			f.log.Warn("cluster: answer a forwarded HTTP request", "uri", req.URI, "err", err)
		}
	})
}

// answerHTTP sends resp to reply in chunks that fit a NATS message: the
// first carries the status and headers, the last is marked final.
func (f *Forwarder) answerHTTP(reply string, resp *HTTPResponse) error {
	size := max(int(f.nc.MaxPayload())-chunkHeadroom, 4<<10)
	body := resp.Body
	for seq := 0; ; seq++ {
		m := nats.NewMsg(reply)
		if seq == 0 {
			for k, vs := range resp.Header {
				if forwardable(k) {
					for _, v := range vs {
						m.Header.Add(k, v)
					}
				}
			}
			m.Header.Set(hdrStatus, strconv.Itoa(resp.Status))
		}
		m.Header.Set(hdrSeq, strconv.Itoa(seq))
		n := min(len(body), size)
		m.Data, body = body[:n], body[n:]
		if len(body) == 0 {
			m.Header.Set(hdrFinal, "1")
		}
		if err := f.nc.PublishMsg(m); err != nil {
			return err
		}
		if len(body) == 0 {
			return nil
		}
	}
}
