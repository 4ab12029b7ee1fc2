package mcpserver

import (
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
)

// HTTPSessionTimeout is how long an MCP session over HTTP may stay idle
// before the handler closes it (and its subscriptions' watchers stop).
const HTTPSessionTimeout = 10 * time.Minute

// HTTPHandler serves the same MCP server over the streamable HTTP
// transport (one MCP session per client; POST, GET and DELETE on the
// handler's path). It has no authentication of its own: mount it behind
// the local API's bearer-token check, or on 127.0.0.1 only (the SDK
// refuses requests whose Host is not localhost when the listener is, so a
// web page cannot reach it by DNS rebinding).
func HTTPHandler(client *apiclient.Client, opts Options) http.Handler {
	srv := New(client, opts)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{SessionTimeout: HTTPSessionTimeout, Logger: opts.Logger})
}
