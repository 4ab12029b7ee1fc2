'use strict';
// Task lists between two agents: create/join, add, claim, complete,
// reopen, update, move, remove, snapshots, taskUpdated events, task-state
// errors, leave. Skipped while the linked libx0x lacks x0x_tasklist_*.
const test = require('node:test');
const assert = require('node:assert/strict');
const { x0x, makeAgents, joinedPair, nextEvent, sleep } = require('./helpers');

const skip = x0x.capabilities.tasklist ? false : 'needs x0x_tasklist_* in libx0x';
const HEX64 = /^[0-9a-f]{64}$/;

/** Polls list.listTasks() until pred(snapshot) holds (replication is asynchronous). */
async function until(list, pred, ms = 15000) {
  const deadline = Date.now() + ms;
  let snap;
  while (Date.now() < deadline) {
    snap = await list.listTasks();
    if (pred(snap)) return snap;
    await sleep(100);
  }
  throw new Error(`condition not reached within ${ms} ms; last snapshot ${JSON.stringify(snap)}`);
}

test('one agent: every operation, snapshots and local events', { skip }, async (t) => {
  const [a] = await makeAgents(t, 1);
  const list = await x0x.TaskList.create(a, 'groceries');
  assert.match(list.id, HEX64);
  assert.equal(list.agent, a);
  const added = nextEvent(list, 'taskUpdated', (e) => e.op === 'added');
  const agentSaw = nextEvent(a, 'taskUpdated', (e) => e.op === 'added');
  const milk = await list.addTask('milk', 'two litres');
  const bread = await list.addTask('bread');
  const eggs = await list.addTask('eggs', null);
  assert.match(milk, HEX64);
  const ev = await added;
  assert.equal(ev.listId, list.id);
  assert.equal(ev.taskId, milk);
  assert.equal(ev.from, a.agentId);
  assert.equal(ev.local, true);
  assert.equal((await agentSaw).taskId, milk);

  let snap = await list.listTasks();
  assert.equal(snap.id, list.id);
  assert.equal(snap.name, 'groceries');
  assert.deepEqual(snap.tasks.map((x) => x.id), [milk, bread, eggs]);
  const m = snap.tasks[0];
  assert.equal(m.title, 'milk');
  assert.equal(m.description, 'two litres');
  assert.equal(m.state, 'empty');
  assert.equal(m.claimant, null);
  assert.deepEqual(m.claims, []);
  assert.equal(m.assignee, null);
  assert.equal(m.createdBy, a.agentId);
  assert.ok(Math.abs(m.createdAtMs - Date.now()) < 60000);
  assert.equal(snap.tasks[1].description, '');

  // Completing an unclaimed task is refused with a task error.
  await assert.rejects(list.completeTask(milk), (e) => e instanceof x0x.X0xTaskError && e.code === 'X0X_ERR_TASK_NOT_CLAIMED');
  await list.claimTask(milk);
  await list.claimTask(milk); // idempotent for the claimer
  snap = await list.listTasks();
  assert.equal(snap.tasks[0].state, 'claimed');
  assert.equal(snap.tasks[0].claimant, a.agentId);
  await list.completeTask(milk);
  snap = await list.listTasks();
  assert.equal(snap.tasks[0].state, 'done');
  await assert.rejects(list.claimTask(milk), (e) => e instanceof x0x.X0xTaskError && e.code === 'X0X_ERR_TASK_DONE');
  await list.reopenTask(milk);
  assert.equal((await list.listTasks()).tasks[0].state, 'empty');

  await list.updateTask(bread, { title: 'rye bread', description: 'sliced', priority: 7, assignee: a.agentId });
  snap = await list.listTasks();
  const b = snap.tasks.find((x) => x.id === bread);
  assert.deepEqual([b.title, b.description, b.priority, b.assignee], ['rye bread', 'sliced', 7, a.agentId]);
  await list.updateTask(bread, { assignee: null });
  assert.equal((await list.listTasks()).tasks.find((x) => x.id === bread).assignee, null);

  await list.moveTask(eggs, null);
  assert.deepEqual((await list.listTasks()).tasks.map((x) => x.id), [eggs, milk, bread]);
  await list.moveTask(eggs, bread);
  assert.deepEqual((await list.listTasks()).tasks.map((x) => x.id), [milk, bread, eggs]);
  await list.removeTask(milk);
  assert.deepEqual((await list.listTasks()).tasks.map((x) => x.id), [bread, eggs]);

  // Library refusals and JS-side checks.
  await assert.rejects(list.claimTask('00'.repeat(32)), { code: 'X0X_ERR_NOT_FOUND' });
  await assert.rejects(list.moveTask(eggs, '00'.repeat(32)), { code: 'X0X_ERR_NOT_FOUND' });
  await assert.rejects(list.claimTask('nope'), RangeError);
  await assert.rejects(list.addTask(5), TypeError);
  await assert.rejects(list.addTask('x'.repeat(4097)), { code: 'X0X_ERR_TOO_LARGE' });
  await assert.rejects(list.addTask('x'.repeat(1025)), { code: 'X0X_ERR_TOO_LARGE' });
  await assert.rejects(list.updateTask(eggs, {}), TypeError);
  await assert.rejects(list.updateTask(eggs, { colour: 'red' }), /unknown option "colour"/);
  await assert.rejects(list.updateTask(eggs, { priority: 256 }), RangeError);
  await assert.rejects(list.updateTask(eggs, { priority: '1' }), TypeError);
  await assert.rejects(list.updateTask(eggs, { assignee: 'me' }), RangeError);
  await assert.rejects(x0x.TaskList.create({}, 'x'), TypeError);
  await assert.rejects(x0x.TaskList.join(a, 'zz'), RangeError);

  // Leave: idempotent; the handle is unusable afterwards; the state stays
  // on disk and joining again resumes it.
  const p1 = list.leave();
  assert.equal(list.leave(), p1);
  await p1;
  await assert.rejects(list.listTasks(), { code: 'X0X_ERR_CLOSED' });
  const again = await x0x.TaskList.join(a, list.id);
  assert.deepEqual((await again.listTasks()).tasks.map((x) => x.id), [bread, eggs]);
});

test('two agents: replication, claims by others, concurrent claims', { skip }, async (t) => {
  const [a, b] = await joinedPair(t);
  const la = await x0x.TaskList.create(a, 'shared');
  const lb = await x0x.TaskList.join(b, la.id);
  assert.equal(lb.id, la.id);
  const remote = nextEvent(lb, 'taskUpdated', (e) => e.op === 'added' && !e.local, 20000);
  const t1 = await la.addTask('write report', 'by friday');
  const ev = await remote;
  assert.equal(ev.taskId, t1);
  assert.equal(ev.from, a.agentId);
  let snap = await until(lb, (s) => s.tasks.some((x) => x.id === t1));
  assert.equal(snap.tasks[0].title, 'write report');

  // Only the creator writes until it grants B.
  assert.equal(snap.creator, a.agentId);
  assert.deepEqual(snap.writers, []);
  assert.equal(snap.open, false);
  const notWriter = (e) => e instanceof x0x.X0xTaskError && e.code === 'X0X_ERR_NOT_WRITER';
  await assert.rejects(lb.claimTask(t1), notWriter);
  await assert.rejects(lb.addWriter(b.agentId), notWriter);
  await assert.rejects(lb.setOpen(true), notWriter);
  await assert.rejects(la.setOpen('yes'), TypeError);
  const granted = nextEvent(lb, 'taskUpdated', (e) => e.op === 'access' && !e.local, 20000);
  await la.addWriter(b.agentId);
  await granted;
  snap = await until(lb, (s) => s.writers.includes(b.agentId));

  // B claims; A sees the claim and cannot complete B's task.
  await lb.claimTask(t1);
  await until(la, (s) => s.tasks[0].state === 'claimed' && s.tasks[0].claimant === b.agentId);
  await assert.rejects(la.completeTask(t1), (e) => e instanceof x0x.X0xTaskError && e.code === 'X0X_ERR_TASK_CLAIMED_BY_OTHER');
  await lb.completeTask(t1);
  snap = await until(la, (s) => s.tasks[0].state === 'done');
  assert.equal(snap.tasks[0].claimant, b.agentId);

  // Concurrent claims: both kept, both replicas agree on the winner.
  const t2 = await lb.addTask('review');
  await until(la, (s) => s.tasks.some((x) => x.id === t2));
  await Promise.all([la.claimTask(t2), lb.claimTask(t2)]);
  const both = (s) => {
    const x = s.tasks.find((y) => y.id === t2);
    return x.claims.length === 2;
  };
  const [sa, sb] = [await until(la, both), await until(lb, both)];
  const xa = sa.tasks.find((y) => y.id === t2);
  const xb = sb.tasks.find((y) => y.id === t2);
  assert.deepEqual([...xa.claims].sort(), [a.agentId, b.agentId].sort());
  assert.equal(xa.claimant, xb.claimant, 'every replica picks the same winner');
  assert.ok([a.agentId, b.agentId].includes(xa.claimant));

  // Closing the agent makes its lists unusable.
  await a.close();
  await assert.rejects(la.listTasks(), { code: 'X0X_ERR_CLOSED' });
  await la.leave(); // already closed with the agent: no-op
});

test('a private group\'s task list: invitation, accept, both members write, group messages', { skip: x0x.capabilities.groups ? false : 'needs x0x_group_* in libx0x' }, async (t) => {
  const [a, b] = await joinedPair(t);
  await b.publishKeyPackage();
  const ga = await a.createGroup();
  const changes = ga.events();
  const invited = nextEvent(b, 'groupInvitation', (i) => i.group === ga.id, 20000);
  await ga.invite(b.agentId, { timeoutMs: 20000 });
  const inv = await invited;
  assert.equal(inv.from, a.agentId);
  const joined = await changes.next();
  assert.equal(joined.kind, 'member-joined');
  assert.equal(joined.agent, b.agentId);
  const gb = await b.acceptInvitation(inv.group);

  // Every member writes, without grants; the list is the group's.
  const la = await ga.createTaskList('private');
  const lb = await gb.joinTaskList(la.id);
  const t1 = await la.addTask('one');
  await until(lb, (s) => s.tasks.some((x) => x.id === t1));
  await lb.claimTask(t1);
  await lb.completeTask(t1);
  const snap = await until(la, (s) => s.tasks[0].state === 'done');
  assert.equal(snap.tasks[0].claimant, b.agentId);

  // Group messages reach the other member.
  const mb = gb.messages();
  let got = null;
  mb.next().then((m) => { got = m; });
  for (let i = 0; i < 100 && got === null; i++) {
    await ga.publish('psst');
    await sleep(100);
  }
  assert.equal(got.from, a.agentId);
  assert.equal(got.data.toString(), 'psst');

  // Closing the group leaves its lists.
  await gb.close();
  await assert.rejects(lb.listTasks(), { code: 'X0X_ERR_CLOSED' });
  await ga.close();
});
