package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/saorsa-labs/x0x-go/cmd/internal/apiclient"
	"github.com/saorsa-labs/x0x-go/cmd/internal/localapi"
)

// resolveList returns the ID of the task list arg names: a full ID, or a
// unique prefix (8+ hex digits) of a list the daemon stores.
func resolveList(ctx context.Context, cl *apiclient.Client, arg string) (string, error) {
	v := strings.ToLower(arg)
	if err := checkList(v); err != nil {
		return "", err
	}
	if len(v) == 64 {
		return v, nil
	}
	lists, err := cl.TaskLists(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, l := range lists {
		if strings.HasPrefix(l.ID, v) {
			found = append(found, l.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", &exitError{code: exitFailed, msg: fmt.Sprintf("no task list this daemon stores starts with %s (not_found)", v),
			hint: "x0x tasks ls lists them; x0x tasks join takes a shared list's full ID"}
	case 1:
		return found[0], nil
	}
	return "", failed("several task lists start with %s: give more digits (ambiguous)", v)
}

// checkList checks the syntax of a LIST argument.
func checkList(arg string) error {
	if v := strings.ToLower(arg); len(v) < 8 || len(v) > 64 || !isHex(v) {
		return usageError("LIST: want a task list ID (64 hex digits) or a unique prefix of 8 or more: %q", arg)
	}
	return nil
}

func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == ""
}

// listCall makes one API call, f, on the list named by arg (see call):
// f gets its ID (resolveList).
func listCall[T any](c *cli, arg string, f func(ctx context.Context, cl *apiclient.Client, list string) (T, error)) (T, error) {
	var zero T
	if err := checkList(arg); err != nil {
		return zero, err
	}
	return call(c, func(ctx context.Context, cl *apiclient.Client) (T, error) {
		list, err := resolveList(ctx, cl, arg)
		if err != nil {
			return zero, err
		}
		return f(ctx, cl, list)
	})
}

func cmdTasksNew(c *cli, fs *flag.FlagSet) func([]string) error {
	open := fs.Bool("open", false, "every agent that knows the list's ID may write to it")
	return apiCmd(c, 1, 1, func(ctx context.Context, cl *apiclient.Client, args []string) (localapi.TaskListInfo, error) {
		return cl.CreateTaskList(ctx, args[0], *open)
	}, func(l localapi.TaskListInfo) error {
		return c.println(l.ID)
	})
}

func cmdTasksJoin(c *cli, fs *flag.FlagSet) func([]string) error {
	return listCmd(c, 1, func(ctx context.Context, cl *apiclient.Client, list string, _ []string) (localapi.TaskListInfo, error) {
		return cl.JoinTaskList(ctx, list)
	}, func(l localapi.TaskListInfo) error {
		name := l.Name
		if name == "" {
			name = "(its name arrives with its members' changes)"
		}
		return c.printf("joined %s %s\n", l.ID, name)
	})
}

func cmdTasksAdd(c *cli, fs *flag.FlagSet) func([]string) error {
	desc := fs.String("description", "", "the task's `description`")
	return listCmd(c, 2, func(ctx context.Context, cl *apiclient.Client, list string, args []string) (localapi.Task, error) {
		return cl.AddTask(ctx, list, args[0], *desc)
	}, func(t localapi.Task) error {
		return c.println(t.ID)
	})
}

func cmdTasksClaim(c *cli, fs *flag.FlagSet) func([]string) error {
	return taskOp(c, "claimed", (*apiclient.Client).Claim)
}

func cmdTasksDone(c *cli, fs *flag.FlagSet) func([]string) error {
	return taskOp(c, "done", (*apiclient.Client).Complete)
}

func taskOp(c *cli, verb string, op func(*apiclient.Client, context.Context, string, string) (localapi.Task, error)) func([]string) error {
	return listCmd(c, 2, func(ctx context.Context, cl *apiclient.Client, list string, args []string) (localapi.Task, error) {
		return op(cl, ctx, list, args[0])
	}, func(t localapi.Task) error {
		return c.printf("%s %s %s\n", verb, short(t.ID), t.Title)
	})
}

func cmdTasksLs(c *cli, fs *flag.FlagSet) func([]string) error {
	one := listCmd(c, 1, func(ctx context.Context, cl *apiclient.Client, list string, _ []string) (localapi.TaskListSnapshot, error) {
		return cl.TaskList(ctx, list)
	}, c.printTasks)
	all := apiCmd(c, 0, 0, func(ctx context.Context, cl *apiclient.Client, _ []string) (localapi.TaskListIndex, error) {
		lists, err := cl.TaskLists(ctx)
		return localapi.TaskListIndex{Lists: orEmpty(lists)}, err
	}, c.printLists)
	return argsCmd(0, 1, func(args []string) error {
		if len(args) == 1 {
			return one(args)
		}
		return all(args)
	})
}

func (c *cli) printLists(x localapi.TaskListIndex) error {
	return printTable(c, x.Lists, "no task lists (x0x tasks new NAME creates one)", "LIST\tJOINED\tOPEN\tOPS\tNAME", func(l localapi.TaskListInfo) string {
		return fmt.Sprintf("%s\t%s\t%s\t%d\t%s", l.ID, yesNo(l.Joined), yesNo(l.Open), l.Operations, l.Name)
	})
}

func (c *cli) printTasks(s localapi.TaskListSnapshot) error {
	access := "only its writers"
	if s.Open {
		access = "open to all"
	}
	plural := "s"
	if len(s.Tasks) == 1 {
		plural = ""
	}
	fmt.Fprintf(c.stdout, "%s %s (%s, %d task%s)\n", s.ID, s.Name, access, len(s.Tasks), plural)
	if len(s.Tasks) == 0 {
		return nil
	}
	return printTable(c, s.Tasks, "", "TASK\tSTATE\tCLAIMANT\tTITLE", func(t localapi.Task) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s", short(t.ID), t.State, short(t.Claimant), oneLine(t.Title))
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cmdTasksWatch(c *cli, fs *flag.FlagSet) func([]string) error {
	after := afterFlag(fs, "start after this `CURSOR` (0: the oldest change the daemon keeps; default: from now on)")
	return argsCmd(1, 1, func(args []string) error {
		if err := checkList(args[0]); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		ctx, cancel := c.callContext()
		list, err := resolveList(ctx, cl, args[0])
		cancel()
		if err != nil {
			return err
		}
		last := *after
		err = cl.StreamChanges(c.ctx, list, *after, func(ch localapi.TaskChange) error {
			last = &ch.Cursor
			return printResult(c, ch, func(ch localapi.TaskChange) error {
				where := ""
				if ch.Local {
					where = " (here)"
				}
				return c.printf("%d %s task %s by %s%s\n", ch.Cursor, ch.Op, short(ch.Task), short(ch.Author), where)
			})
		}, c.onMissed())
		return c.streamEnd(cl, err, last)
	})
}
