'use strict';
// Private groups (ABI 0.7) between three agents on 127.0.0.1: key
// packages, create, invite, the invitation (event and list), accept,
// messages both ways, info and change events, a group task list all
// members write to, update, remove (the removed side gets 'removed'),
// decline, leave, close; an agent started again from its data directory
// has its groups open. Skipped while the linked libx0x lacks x0x_group_*.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { x0x, tempDir, makeAgents, nextEvent, sleep } = require('./helpers');

const skip = x0x.capabilities.groups ? false : 'needs x0x_group_* in libx0x';
const HEX64 = /^[0-9a-f]{64}$/;

/** A bootstrap agent `a` with `b` and `c` joined through it (a is directly connected to both). */
async function trio(t) {
  const [a] = await makeAgents(t, 1);
  const [b, c] = await makeAgents(t, 2, () => ({ bootstrap: [a.connectAddr] }));
  await Promise.all([b.joinNetwork({ timeoutMs: 10000 }), c.joinNetwork({ timeoutMs: 10000 })]);
  for (const [x, y] of [[a, b], [a, c], [b, a], [c, a]]) await x.waitForAgent(y.agentId, { timeoutMs: 10000 });
  return [a, b, c];
}

/** Polls f() until it returns a truthy value, at most ms. */
async function until(what, f, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await f();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
}

/** Resolves with the next item of stream matching pred (LaggedErrors skipped), or rejects after ms. */
async function nextMatching(stream, pred, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no matching item within ${ms} ms`);
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no matching item within ${ms} ms`)), left); });
    let item;
    try {
      item = await Promise.race([stream.next(), timeout]);
    } catch (e) {
      if (e instanceof x0x.LaggedError) continue;
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (item === null) throw new Error('the stream ended');
    if (pred(item)) return item;
  }
}

/** Publishes on group g every 200 ms until stream has a message from g's agent with text, at most ms. */
async function publishUntilHeard(g, stream, text, ms = 20000) {
  const deadline = Date.now() + ms;
  const heard = nextMatching(stream, (m) => m.from === g.agent.agentId && m.data.toString() === text, ms);
  heard.catch(() => {});
  let got = null;
  heard.then((m) => { got = m; }, () => {});
  while (Date.now() < deadline && got === null) {
    await g.publish(text);
    await Promise.race([heard.catch(() => {}), sleep(200)]);
  }
  return heard;
}

/** Invites `who` into group g and has it accept; returns who's Group. */
async function inviteAndAccept(g, who) {
  const inv = nextEvent(who, 'groupInvitation', (i) => i.group === g.id, 20000);
  await g.invite(who.agentId, { timeoutMs: 20000 });
  await inv;
  return who.acceptInvitation(g.id);
}

test('groups: invite, accept, messages both ways, task list, update, remove, decline, leave, close', { skip, timeout: 180000 }, async (t) => {
  const [a, b, c] = await trio(t);
  const refused = (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_REFUSED' && e.status === x0x.Status.X0X_ERR_REFUSED;

  // Create: a is the only member.
  const ga = await a.createGroup();
  assert.match(ga.id, HEX64);
  assert.equal(ga.agent, a);
  assert.deepEqual(a.groups(), [ga]);
  let info = ga.info();
  assert.equal(info.id, ga.id);
  assert.deepEqual(info.members, [a.agentId]);
  assert.equal(info.closed, false);
  assert.equal(typeof info.epoch, 'number');
  assert.ok(info.online.includes(a.agentId));

  // b does not accept invitations before it published a key package.
  await assert.rejects(ga.invite(b.agentId, { timeoutMs: 10000 }), refused);

  const kp = await b.publishKeyPackage();
  assert.ok(Buffer.isBuffer(kp) && kp.length > 1000, `a key package (${kp.length} bytes)`);
  await c.publishKeyPackage();

  // Invite: the invitation arrives as an event and in the list.
  const eventsA = ga.events();
  const invited = nextEvent(b, 'groupInvitation', () => true, 20000);
  await ga.invite(b.agentId, { timeoutMs: 20000 });
  const inv = await invited;
  assert.equal(inv.group, ga.id);
  assert.equal(inv.from, a.agentId);
  assert.deepEqual([...inv.members].sort(), [a.agentId, b.agentId].sort());
  assert.equal(typeof inv.epoch, 'number');
  assert.ok(inv.epoch >= 1);
  assert.deepEqual(b.invitations(), [inv]);
  const joined = await nextMatching(eventsA, (e) => e.kind === 'member-joined');
  assert.deepEqual(joined, { kind: 'member-joined', group: ga.id, agent: b.agentId, epoch: inv.epoch });

  // Accept.
  const gb = await b.acceptInvitation(ga.id);
  assert.equal(gb.id, ga.id);
  assert.deepEqual(b.invitations(), []);
  assert.deepEqual(b.groups(), [gb]);
  assert.deepEqual(gb.info().members, [a.agentId, b.agentId].sort());
  await assert.rejects(b.acceptInvitation(ga.id), { name: 'X0xError', code: 'X0X_ERR_NOT_FOUND' });
  await assert.rejects(ga.invite(b.agentId, { timeoutMs: 10000 }),
    (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_ALREADY_MEMBER');

  // Messages both ways (the group's topic tree forms asynchronously).
  const ma = ga.messages();
  const mb = gb.messages({ capacity: 64 });
  assert.equal(mb.group, ga.id);
  const fromA = await publishUntilHeard(ga, mb, 'hello from a');
  assert.equal(fromA.group, ga.id);
  assert.ok(Buffer.isBuffer(fromA.data));
  assert.equal(fromA.epoch, ga.info().epoch);
  const fromB = await publishUntilHeard(gb, ma, 'hello from b');
  assert.equal(fromB.from, b.agentId);
  await gb.publish(Buffer.alloc(0)); // empty messages are messages too
  const empty = await nextMatching(ma, (m) => m.data.length === 0);
  assert.equal(empty.from, b.agentId);
  await assert.rejects(ga.publish(Buffer.alloc(961 * 1024)), { code: 'X0X_ERR_TOO_LARGE' });

  // A group task list: both members add, claim and complete; no writer grants needed.
  const la = await ga.createTaskList('secret plans');
  assert.ok(la instanceof x0x.TaskList);
  const lb = await gb.joinTaskList(la.id);
  assert.equal(lb.id, la.id);
  const t1 = await la.addTask('for b');
  await until('b sees the first task', async () => (await lb.listTasks()).tasks.some((x) => x.id === t1));
  const t2 = await lb.addTask('for a');
  await until('a sees the second task', async () => (await la.listTasks()).tasks.some((x) => x.id === t2));
  await lb.claimTask(t1);
  await lb.completeTask(t1);
  await la.claimTask(t2);
  await la.completeTask(t2);
  const done = (s) => s.tasks.length === 2 && s.tasks.every((x) => x.state === 'done');
  for (const l of [la, lb]) {
    const snap = await until('both tasks done on every replica', async () => { const s = await l.listTasks(); return done(s) ? s : null; });
    assert.equal(snap.name, 'secret plans');
    assert.equal(snap.tasks.find((x) => x.id === t1).claimant, b.agentId);
    assert.equal(snap.tasks.find((x) => x.id === t2).claimant, a.agentId);
  }

  // Update: a new epoch, seen by the other member.
  const eventsB = gb.events();
  const before = ga.info().epoch;
  await ga.update();
  assert.equal(ga.info().epoch, before + 1);
  const epochEv = await nextMatching(eventsB, (e) => e.kind === 'epoch-changed' && e.epoch === before + 1);
  assert.equal(epochEv.agent, null);

  // c joins, then a removes it: c's side hears 'removed', its streams end.
  const gc = await inviteAndAccept(ga, c);
  await until('b sees c join', () => gb.info().members.includes(c.agentId));
  const eventsC = gc.events();
  const messagesC = gc.messages();
  await ga.remove(c.agentId);
  const removed = await nextMatching(eventsC, (e) => e.kind === 'removed');
  assert.equal(removed.group, ga.id);
  assert.equal(removed.agent, null);
  assert.equal(await eventsC.next(), null, 'the events stream ends after removed');
  assert.equal(await messagesC.next(), null, 'so does the messages stream');
  assert.equal(gc.removed, true);
  assert.equal(gc.closed, false);
  assert.equal(gc.info().closed, true, 'info still works after a removal');
  await assert.rejects(gc.publish('still here?'), { name: 'X0xError', code: 'X0X_ERR_CLOSED' });
  assert.throws(() => gc.messages(), { code: 'X0X_ERR_CLOSED' });
  assert.throws(() => gc.events(), { code: 'X0X_ERR_CLOSED' });
  await gc.close();
  assert.deepEqual(c.groups(), []);
  assert.ok(!ga.info().members.includes(c.agentId));
  const left = await nextMatching(eventsB, (e) => e.kind === 'member-left' && e.agent === c.agentId);
  assert.ok(left.epoch > before);
  await assert.rejects(ga.remove(c.agentId), (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_NOT_MEMBER');
  await assert.rejects(ga.remove(a.agentId), (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_NOT_MEMBER');

  // Decline: the invitation is gone and the inviter takes c out again.
  const g2 = await a.createGroup();
  const inv2 = nextEvent(c, 'groupInvitation', (i) => i.group === g2.id, 20000);
  await g2.invite(c.agentId, { timeoutMs: 20000 });
  await inv2;
  assert.ok(g2.info().members.includes(c.agentId), 'the Welcome commit added c');
  await c.declineInvitation(g2.id);
  assert.deepEqual(c.invitations(), []);
  await assert.rejects(c.declineInvitation(g2.id), { code: 'X0X_ERR_NOT_FOUND' });
  await assert.rejects(c.acceptInvitation(g2.id), { code: 'X0X_ERR_NOT_FOUND' });
  await until('the inviter removed the declining agent', () => !g2.info().members.includes(c.agentId));

  // The only member cannot leave; close instead.
  await assert.rejects(g2.leave(), (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_NOT_MEMBER');
  await g2.close();

  // Leave: b asks to be removed; a's members follow.
  const bRemoved = nextMatching(eventsB, (e) => e.kind === 'removed', 30000);
  await gb.leave();
  await bRemoved;
  assert.equal(gb.removed, true);
  await until('a removed b', () => !ga.info().members.includes(b.agentId));
  await gb.close();

  // Close: streams end, the handle and the group's lists are unusable.
  const p1 = ga.close();
  assert.equal(ga.close(), p1, 'the same Promise');
  await p1;
  assert.equal(ga.closed, true);
  for (const s of [ma, eventsA]) {
    assert.equal(s.closed, true);
    while (s.size > 0) await s.next().catch(() => {}); // queued items stay readable
    assert.equal(await s.next().catch(() => s.next()), null);
  }
  assert.deepEqual(a.groups(), []);
  const gone = { name: 'X0xError', code: 'X0X_ERR_CLOSED' };
  assert.throws(() => ga.info(), gone);
  await assert.rejects(ga.publish('x'), gone);
  await assert.rejects(ga.invite(c.agentId), gone);
  await assert.rejects(la.listTasks(), gone);
  await la.leave(); // a no-op: closing the group left it
  assert.match(ga.id, HEX64, 'the ID stays readable');
});

test('groups: inviteKeyPackage, lag markers of a slow group reader, closing the agent', { skip, timeout: 120000 }, async (t) => {
  const [a, b] = await trio(t);
  const kp = await b.publishKeyPackage();
  const ga = await a.createGroup();
  const invited = nextEvent(b, 'groupInvitation', (i) => i.group === ga.id, 20000);
  await ga.inviteKeyPackage(kp, { timeoutMs: 20000 });
  assert.equal((await invited).from, a.agentId);
  // Something that is not a key package.
  const g2 = await a.createGroup();
  await assert.rejects(g2.inviteKeyPackage(Buffer.from('not a key package')), { name: 'X0xError', code: 'X0X_ERR_CORRUPT' });
  await g2.close();

  const gb = await b.acceptInvitation(ga.id);
  const probe = gb.messages();
  await publishUntilHeard(ga, probe, 'probe');
  probe.close();
  assert.equal(await probe.next(), null);

  // A stream of capacity 4 that nobody reads while 30 messages arrive.
  const slow = gb.messages({ capacity: 4 });
  const all = gb.messages();
  for (let i = 0; i < 30; i++) await ga.publish(`m${i}`);
  await until('every message arrived', () => all.size >= 30);
  assert.equal(slow.size, 4);
  assert.equal(slow.dropped, 26);
  const texts = [];
  for (let i = 0; i < 4; i++) texts.push((await slow.next()).data.toString());
  assert.deepEqual(texts, ['m0', 'm1', 'm2', 'm3']);
  await assert.rejects(slow.next(), (e) => e instanceof x0x.LaggedError && e.missed === 26);

  // Closing the agent ends its groups' streams; calls fail with X0X_ERR_CLOSED.
  const waiting = slow.next();
  await b.close();
  assert.equal(await waiting, null);
  assert.equal(gb.closed, true);
  const closed = { name: 'X0xError', code: 'X0X_ERR_CLOSED' };
  assert.throws(() => gb.info(), closed);
  await assert.rejects(gb.publish('x'), closed);
  await assert.rejects(b.createGroup(), closed);
  await assert.rejects(b.publishKeyPackage(), closed);
  await assert.rejects(b.acceptInvitation(ga.id), closed);
  assert.throws(() => b.invitations(), closed);
  await gb.close(); // a no-op once the agent is closed
});

test('groups: an agent started again from its dataDir has its groups open, and messages flow', { skip, timeout: 120000 }, async (t) => {
  const [a] = await makeAgents(t, 1);
  const { dir, cleanup } = tempDir();
  const started = [];
  t.after(async () => {
    await Promise.allSettled(started.map((x) => x.close()));
    cleanup();
  });
  // b, from the same data directory each time, bootstrapped from a and joined.
  const startB = async () => {
    const b = await x0x.Agent.create({ dataDir: path.join(dir, 'b'), bindAddr: '127.0.0.1:0', bootstrap: [a.connectAddr] });
    started.push(b);
    await b.joinNetwork({ timeoutMs: 10000 });
    await a.waitForAgent(b.agentId, { timeoutMs: 10000 });
    return b;
  };
  const notFound = { name: 'X0xError', code: 'X0X_ERR_NOT_FOUND' };

  let b = await startB();
  await b.publishKeyPackage();
  const ga = await a.createGroup();
  await inviteAndAccept(ga, b);
  await until('a sees b join', () => ga.info().members.includes(b.agentId));
  const bId = b.agentId;
  await b.close();

  // Started again: the group is open, with a Group made once.
  b = await startB();
  assert.equal(b.agentId, bId);
  const restored = b.groups();
  assert.equal(restored.length, 1);
  const gb = restored[0];
  assert.ok(gb instanceof x0x.Group);
  assert.equal(gb.id, ga.id);
  assert.equal(gb.agent, b);
  assert.deepEqual(b.groups(), [gb], 'the same Group again');
  assert.equal(b.group(ga.id), gb);
  assert.equal(b.group(ga.id.toUpperCase()), gb);
  assert.throws(() => b.group('0'.repeat(64)), notFound);
  assert.deepEqual(gb.info().members, [a.agentId, b.agentId].sort());

  // Messages both ways.
  const fromA = await publishUntilHeard(ga, gb.messages(), 'after the restart');
  assert.equal(fromA.group, ga.id);
  const fromB = await publishUntilHeard(gb, ga.messages(), 'back again');
  assert.equal(fromB.from, b.agentId);

  // Closed, the group is not open (not even while its close runs) until b
  // starts again. The close waits for a pool thread (all kept busy), so the
  // library still lists the group while groups() and group() run.
  const busy = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE) || 4 },
    () => a.waitForAgent('f'.repeat(64), { timeoutMs: 300 }).catch(() => {}));
  const closing = gb.close();
  assert.deepEqual(b.groups(), []);
  assert.throws(() => b.group(ga.id), notFound);
  await closing;
  await Promise.all(busy);
  assert.deepEqual(b.groups(), []);
  assert.throws(() => b.group(ga.id), notFound);
  await b.close();
  b = await startB();
  assert.deepEqual(b.groups().map((g) => g.id), [ga.id]);
  await b.close();
  assert.deepEqual(b.groups(), []);
  assert.throws(() => b.group(ga.id), { name: 'X0xError', code: 'X0X_ERR_CLOSED' });
});
