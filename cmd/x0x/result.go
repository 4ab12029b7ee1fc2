package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
)

// The bodies of the commands: argsCmd checks the number of arguments;
// most commands make one API call and print its result: apiCmd (listCmd
// for a task list's) builds such a command from what is its own, the call
// and the human output; resultCmd from a step that makes the call itself.

// call makes one API call, f, with a client of the daemon (c.client) and
// a context bounded by --timeout.
func call[T any](c *cli, f func(ctx context.Context, cl *apiclient.Client) (T, error)) (T, error) {
	cl, err := c.client()
	if err != nil {
		var zero T
		return zero, err
	}
	ctx, cancel := c.callContext()
	defer cancel()
	return f(ctx, cl)
}

// printResult prints a command's result v: its JSON with --json, else
// what human prints (nothing if human is nil).
func printResult[T any](c *cli, v T, human func(T) error) error {
	if c.g.json {
		return c.printJSON(v)
	}
	if human == nil {
		return nil
	}
	return human(v)
}

// argsCmd returns the body of a command that takes lo to hi positional
// arguments (see nargs) and runs run with them.
func argsCmd(lo, hi int, run func(args []string) error) func([]string) error {
	return func(args []string) error {
		if err := nargs(args, lo, hi); err != nil {
			return err
		}
		return run(args)
	}
}

// resultCmd is argsCmd for a command that gets its result with get and
// prints it (printResult).
func resultCmd[T any](c *cli, lo, hi int, get func(args []string) (T, error), human func(T) error) func([]string) error {
	return argsCmd(lo, hi, func(args []string) error {
		v, err := get(args)
		if err != nil {
			return err
		}
		return printResult(c, v, human)
	})
}

// apiCmd is resultCmd for a command whose result is one API call's, do's
// (see call).
func apiCmd[T any](c *cli, lo, hi int, do func(ctx context.Context, cl *apiclient.Client, args []string) (T, error), human func(T) error) func([]string) error {
	return resultCmd(c, lo, hi, func(args []string) (T, error) {
		return call(c, func(ctx context.Context, cl *apiclient.Client) (T, error) { return do(ctx, cl, args) })
	}, human)
}

// listCmd is apiCmd for a command of n arguments, the first a task list:
// do gets the list's ID (see listCall) and the other arguments.
func listCmd[T any](c *cli, n int, do func(ctx context.Context, cl *apiclient.Client, list string, args []string) (T, error), human func(T) error) func([]string) error {
	return resultCmd(c, n, n, func(args []string) (T, error) {
		return listCall(c, args[0], func(ctx context.Context, cl *apiclient.Client, list string) (T, error) {
			return do(ctx, cl, list, args[1:])
		})
	}, human)
}

// printJSON prints v as one line of JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// println prints a line of human output.
func (c *cli) println(a ...any) error {
	_, err := fmt.Fprintln(c.stdout, a...)
	return err
}

// printf prints human output.
func (c *cli) printf(format string, a ...any) error {
	_, err := fmt.Fprintf(c.stdout, format, a...)
	return err
}

// tabs returns a writer of human output that aligns tab-separated
// columns.
func (c *cli) tabs() *tabwriter.Writer {
	return tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
}

// printTable prints items, a row each (columns separated by tabs),
// aligned under header; or the line none if there are none.
func printTable[T any](c *cli, items []T, none, header string, row func(T) string) error {
	if len(items) == 0 {
		return c.println(none)
	}
	tw := c.tabs()
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}

// orEmpty is s, or an empty slice for nil (a JSON list is [], not null).
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
