"""x0x's MCP server (`x0x mcp`, issue 12) driven by a real MCP client.

scripts/test-mcp.sh builds x0xd and x0x, starts two connected daemons on
127.0.0.1 and runs this file in a venv with the Python `mcp` package:

    python tests/mcp/test_mcp.py --x0x build/x0x \
        --node HTTP_ADDR1 DATA_DIR1 --node HTTP_ADDR2 DATA_DIR2

It spawns `x0x mcp --api ADDR --data-dir DIR` for each daemon through the
package's stdio client (one MCP client per daemon) and asserts on the tool
results: client 1 publishes on a topic, which client 2 reads; client 1
creates an open task list with a task, client 2 joins it, claims the task
and completes it, and client 1 sees it done with daemon 2's agent as the
claimant; the errors an LLM meets on the way (task_not_claimed,
claimed_by_other); resource subscriptions notify both clients; direct
messages. Client 1 speaks the 2025-11-25 protocol (initialize,
resources/subscribe), client 2 the 2026-07-28 one (server/discover,
subscriptions/listen). It prints one line per check and "N passed, N failed" last; it
exits non-zero if a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.parse
import warnings
from contextlib import AsyncExitStack
from typing import Any

import mcp_types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.subscriptions import ResourceUpdated, listen

# Client 1 subscribes the 2025-11-25 way on purpose.
warnings.filterwarnings("ignore", message="resources/subscribe is removed")

TOOLS = {
    "whoami", "list_peers", "publish", "read_messages", "send_direct", "read_direct",
    "tasklist_create", "tasklist_join", "tasklist_add", "tasklist_claim", "tasklist_complete", "tasklist_list",
}

passed = 0
failed = 0


def check(ok: bool, what: str, detail: Any = "") -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL {what}: {detail}", flush=True)


class Failed(Exception):
    pass


def require(ok: bool, what: str, detail: Any = "") -> None:
    """A check the rest of the test depends on: stop at its failure."""
    check(ok, what, detail)
    if not ok:
        raise Failed(what)


def topic_uri(topic: str) -> str:
    return "x0x://topic/" + urllib.parse.quote(topic, safe="")


class Client:
    """One MCP client session with `x0x mcp` for one daemon."""

    def __init__(self, name: str, session: ClientSession, updates: asyncio.Queue[str]) -> None:
        self.name, self.session, self.updates = name, session, updates

    async def call(self, tool: str, **args: Any) -> types.CallToolResult:
        return await self.session.call_tool(tool, args)

    async def ok(self, tool: str, **args: Any) -> dict[str, Any]:
        """Calls a tool that must succeed; returns its structured content."""
        res = await self.call(tool, **args)
        text = res.content[0].text if res.content and isinstance(res.content[0], types.TextContent) else ""
        if res.is_error or not isinstance(res.structured_content, dict):
            require(False, f"{self.name}: {tool}({args}) succeeds with structured content", text)
        assert isinstance(res.structured_content, dict)
        return res.structured_content

    async def error(self, tool: str, code: str, **args: Any) -> None:
        """Calls a tool that must fail with an API error code."""
        res = await self.call(tool, **args)
        text = res.content[0].text if res.content and isinstance(res.content[0], types.TextContent) else ""
        check(bool(res.is_error) and text.startswith(code + ":"), f"{self.name}: {tool} is a tool error {code}",
              f"is_error={res.is_error} {text!r}")

    async def wait_update(self, uri: str, poke: Any = None, timeout: float = 20.0) -> bool:
        """Waits for notifications/resources/updated for uri, calling poke
        (which makes news) before each short wait."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if poke is not None:
                await poke()
            try:
                got = await asyncio.wait_for(self.updates.get(), 0.5)
            except asyncio.TimeoutError:
                continue
            if got == uri:
                return True
        return False


async def open_client(stack: AsyncExitStack, name: str, x0x: str, api: str, data_dir: str, modern: bool) -> Client:
    params = StdioServerParameters(command=x0x, args=["mcp", "--api", api, "--data-dir", data_dir])
    read, write = await stack.enter_async_context(stdio_client(params))
    updates: asyncio.Queue[str] = asyncio.Queue()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.put_nowait(str(message.params.uri))

    session = await stack.enter_async_context(
        ClientSession(read, write, message_handler=on_message,
                      client_info=types.Implementation(name=f"x0x-test-{name}", version="1")))
    if modern:
        await session.discover()
    else:
        await session.initialize()
    info, caps = session.server_info, session.server_capabilities
    require(info is not None and info.name == "x0x", f"{name}: connected to x0x mcp at protocol {session.protocol_version}", info)
    check(caps is not None and caps.resources is not None and bool(caps.resources.subscribe),
          f"{name}: resource subscriptions advertised", caps)
    return Client(name, session, updates)


async def eventually(what: str, cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            check(True, what)
            return
        await asyncio.sleep(0.2)
    require(False, what, f"not within {timeout} s")


async def scenario(x0x: str, nodes: list[tuple[str, str]]) -> None:
    async with AsyncExitStack() as stack:
        c1 = await open_client(stack, "client1", x0x, *nodes[0], modern=False)
        c2 = await open_client(stack, "client2", x0x, *nodes[1], modern=True)
        check(c1.session.protocol_version == "2025-11-25" and c2.session.protocol_version == "2026-07-28",
              "the two protocol generations", (c1.session.protocol_version, c2.session.protocol_version))

        tools = await c1.session.list_tools()
        names = {t.name for t in tools.tools}
        check(names == TOOLS, "the twelve tools are listed", sorted(names))
        check(all(t.description and t.output_schema for t in tools.tools), "every tool has a description and an output schema")

        me1 = await c1.ok("whoami")
        me2 = await c2.ok("whoami")
        agent1, agent2 = me1["agent_id"], me2["agent_id"]
        check(len(agent1) == 64 and len(agent2) == 64 and agent1 != agent2, "whoami: two agents", (agent1, agent2))

        async def peered() -> bool:
            peers = (await c1.ok("list_peers"))["peers"]
            return any(p["id"] == me2["machine_id"] for p in peers)
        await eventually("client1's list_peers shows daemon 2", peered)

        # Topics. client2's first read follows the topic; client1 publishes
        # until client2's long-polled read has the message.
        topic = "mcp/e2e topic"
        first = await c2.ok("read_messages", topic=topic)
        check(first["followed_now"] is True and first["items"] == [], "client2's first read_messages follows the topic", first)
        got: dict[str, Any] = {"items": []}
        for attempt in range(40):
            pub = await c1.ok("publish", topic=topic, text="hello from client 1")
            if attempt == 0:
                check(len(pub["id"]) == 64 and pub["topic"] == topic, "client1's publish returns the message id", pub)
            got = await c2.ok("read_messages", topic=topic, wait_ms=500)
            if got["items"]:
                break
        items = got["items"]
        require(bool(items), "client2 reads client1's message", got)
        check(items[0]["text"] == "hello from client 1" and items[0]["from"] == agent1,
              "the message's text and sender (daemon 1's agent)", items[0])
        check(got["next_cursor"] == items[-1]["cursor"], "next_cursor is the last item's cursor", got)
        again = await c2.ok("read_messages", topic=topic)
        check(all(m["cursor"] > got["next_cursor"] for m in again["items"]),
              "without after, the next read continues after the last one", again)

        # A subscription to a topic (subscriptions/listen) notifies client2
        # of client1's messages.
        news = "mcp/news"
        uri = topic_uri(news)
        check(uri == "x0x://topic/mcp%2Fnews", "the topic URI is percent-encoded", uri)
        async with listen(c2.session, resource_subscriptions=[uri]) as sub:
            check(list(sub.honored.resource_subscriptions or []) == [uri], "client2's subscription is acknowledged", sub.honored)
            notified = False
            deadline = time.monotonic() + 20
            while not notified and time.monotonic() < deadline:
                await c1.ok("publish", topic=news, text="breaking")
                try:
                    event = await asyncio.wait_for(sub.__anext__(), 0.5)
                except asyncio.TimeoutError:
                    continue
                notified = isinstance(event, ResourceUpdated) and event.uri == uri
            check(notified, "client2 is notified of news on a subscribed topic")
        rr = await c2.session.read_resource(uri)
        content = rr.contents[0]
        body = json.loads(content.text) if isinstance(content, types.TextResourceContents) else {}
        check(any(m.get("text") == "breaking" for m in body.get("messages", [])), "the topic resource shows the message", body)
        listed = await c2.session.list_resources()
        check(uri in {str(r.uri) for r in listed.resources}, "resources/list names the followed topic",
              [str(r.uri) for r in listed.resources])

        # A task list: client1 creates it with a task and subscribes to it;
        # client2 joins, claims and completes the task.
        lst = await c1.ok("tasklist_create", name="mcp e2e", open=True)
        list_id = lst["id"]
        check(len(list_id) == 64 and lst["open_to_all"] is True, "client1 creates an open task list", lst)
        task = await c1.ok("tasklist_add", list=list_id, title="ship the MCP server", description="with a real client")
        task_id = task["id"]
        check(task["state"] == "open" and task["created_by"] == agent1, "client1 adds a task", task)
        list_uri = "x0x://tasklist/" + list_id
        await c1.session.subscribe_resource(list_uri)

        joined = await c2.ok("tasklist_join", list=list_id)
        check(joined["id"] == list_id and joined["joined"] is True, "client2 joins the list", joined)

        async def c2_sees_task() -> bool:
            snap = (await c2.ok("tasklist_list", list=list_id))["list"]
            return len(snap["tasks"]) == 1 and snap["tasks"][0]["id"] == task_id
        await eventually("client2 sees the task", c2_sees_task)
        await c2.error("tasklist_complete", "task_not_claimed", list=list_id, task=task_id)
        claimed = await c2.ok("tasklist_claim", list=list_id, task=task_id[:8])
        check(claimed["state"] == "claimed" and claimed["claimant"] == agent2, "client2 claims the task (by a prefix)", claimed)
        check(await c1.wait_update(list_uri), "client1 is notified of the claim on its subscribed list")

        async def c1_sees_claim() -> bool:
            t = (await c1.ok("tasklist_list", list=list_id))["list"]["tasks"][0]
            return t["state"] == "claimed" and t["claimant"] == agent2
        await eventually("client1 sees client2's claim", c1_sees_claim)
        await c1.error("tasklist_complete", "claimed_by_other", list=list_id, task=task_id)
        done = await c2.ok("tasklist_complete", list=list_id, task=task_id)
        check(done["state"] == "done", "client2 completes the task", done)

        async def c1_sees_done() -> bool:
            t = (await c1.ok("tasklist_list", list=list_id))["list"]["tasks"][0]
            return t["state"] == "done" and t["claimant"] == agent2
        await eventually("client1's tasklist_list shows the task done, claimant daemon 2's agent", c1_sees_done)
        await c1.error("tasklist_claim", "task_done", list=list_id, task=task_id)

        # The split: one client publishes and claims, the other
        # reads and completes. x0x lets only the winning claimant complete
        # a task, so client2 completed the task it claimed (above), and a
        # task client1 claims cannot be completed by client2.
        task2 = await c1.ok("tasklist_add", list=list_id, title="review the MCP server")
        claimed2 = await c1.ok("tasklist_claim", list=list_id, task=task2["id"])
        check(claimed2["state"] == "claimed" and claimed2["claimant"] == agent1, "client1 claims a second task", claimed2)

        async def c2_sees_claim2() -> bool:
            tasks = (await c2.ok("tasklist_list", list=list_id))["list"]["tasks"]
            return any(t["id"] == task2["id"] and t["claimant"] == agent1 for t in tasks)
        await eventually("client2 sees client1's claim", c2_sees_claim2)
        await c2.error("tasklist_complete", "claimed_by_other", list=list_id, task=task2["id"])
        lists = await c1.ok("tasklist_list")
        check([entry["id"] for entry in lists["lists"]] == [list_id], "client1's tasklist_list without a list lists it", lists)
        rr = await c1.session.read_resource(list_uri)
        content = rr.contents[0]
        snap = json.loads(content.text) if isinstance(content, types.TextResourceContents) else {}
        check(snap.get("id") == list_id and any(t.get("id") == task_id and t.get("state") == "done" for t in snap.get("tasks", [])),
              "the task list resource shows it done", snap)

        # Direct messages, client1 to daemon 2's agent.
        sent = await c1.ok("send_direct", to=agent2, text="psst")
        check(sent["ok"] is True, "client1 sends a direct message", sent)
        dm = await c2.ok("read_direct", wait_ms=5000)
        check(len(dm["items"]) == 1 and dm["items"][0]["text"] == "psst" and dm["items"][0]["from"] == agent1,
              "client2 reads it", dm)
        await c1.error("send_direct", "no_route", to="00" * 32, text="nobody")
        await c2.error("read_messages", "invalid_argument", topic=topic, limit=5000)


def leaves(e: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups (anyio's task groups)."""
    inner = getattr(e, "exceptions", None)
    if not isinstance(inner, (list, tuple)):
        return [e]
    return [leaf for x in inner for leaf in leaves(x)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--x0x", required=True, help="the x0x executable")
    ap.add_argument("--node", nargs=2, action="append", metavar=("HTTP_ADDR", "DATA_DIR"), required=True)
    ap.add_argument("--timeout", type=float, default=90.0)
    a = ap.parse_args()
    if len(a.node) != 2:
        ap.error("give --node twice")

    async def run() -> None:
        await asyncio.wait_for(scenario(a.x0x, [tuple(n) for n in a.node]), a.timeout)

    try:
        asyncio.run(run())
    except Exception as e:  # a failed requirement; or a protocol error, a timeout, a crash of x0x mcp
        others = [x for x in leaves(e) if not isinstance(x, Failed)]
        if others:
            check(False, "the scenario runs to its end", repr(others[0]))
    print(f"mcp: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
