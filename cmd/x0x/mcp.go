package main

import (
	"context"
	"io"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/mcpserver"
)

// runMCP serves the Model Context Protocol on stdin/stdout for the daemon
// that client talks to, until ctx ends or stdin closes (package
// cmd/internal/mcpserver: the tools, resources and subscriptions).
func runMCP(ctx context.Context, client *apiclient.Client, stdin io.Reader, stdout io.Writer) error {
	return mcpserver.Run(ctx, client, stdin, stdout)
}
