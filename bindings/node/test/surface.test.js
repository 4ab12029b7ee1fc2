'use strict';
// Defects a new user found at the surface of the binding (issue 14): the
// task-list string limits and their status, one agent per data directory,
// waitForAgent of the agent itself, the default data directory, what a
// left task list or closed group reports, and TopicMessage.peer.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { x0x, makeAgents, joinedPair, tempDir, sleep } = require('./helpers');

const tooLarge = (e) => e instanceof x0x.X0xError && e.code === 'X0X_ERR_TOO_LARGE' && e.status === x0x.Status.X0X_ERR_TOO_LARGE;
const closed = (e) => e instanceof x0x.X0xError && e.code === 'X0X_ERR_CLOSED';

test('task-list strings: 1 KiB names and titles, 16 KiB descriptions, X0X_ERR_TOO_LARGE beyond', async (t) => {
  const [a] = await makeAgents(t, 1);
  await assert.rejects(x0x.TaskList.create(a, 'n'.repeat(1025)), tooLarge);
  await assert.rejects(x0x.TaskList.create(a, 'é'.repeat(513)), tooLarge, 'bytes of UTF-8, not characters');
  const list = await x0x.TaskList.create(a, 'n'.repeat(1024));
  assert.equal((await list.listTasks()).name, 'n'.repeat(1024));

  await assert.rejects(list.addTask('t'.repeat(1025)), tooLarge);
  await assert.rejects(list.addTask('t'.repeat(5000)), tooLarge, 'also over X0X_MAX_STRING');
  await assert.rejects(list.addTask('t', 'd'.repeat(16 * 1024 + 1)), tooLarge);
  const id = await list.addTask('t'.repeat(1024), 'd'.repeat(16 * 1024)); // longer than X0X_MAX_STRING
  await assert.rejects(list.updateTask(id, { title: 'T'.repeat(1025) }), tooLarge);
  await assert.rejects(list.updateTask(id, { description: 'D'.repeat(16 * 1024 + 1) }), tooLarge);
  await list.updateTask(id, { title: 'T'.repeat(1024), description: 'D'.repeat(16 * 1024) });
  const [task] = (await list.listTasks()).tasks;
  assert.equal(task.title, 'T'.repeat(1024));
  assert.equal(task.description, 'D'.repeat(16 * 1024));
  await assert.rejects(list.addTask(5), TypeError);
  await assert.rejects(list.addTask('a\0b'), TypeError);

  if (x0x.capabilities.groups) {
    const g = await a.createGroup();
    await assert.rejects(g.createTaskList('n'.repeat(1025)), tooLarge);
    await (await g.createTaskList('n'.repeat(1024))).leave();
    await g.close();
  }
});

test('a second agent on a data directory in use is refused at once with X0X_ERR_IO', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const a = await x0x.Agent.create({ dataDir: dir });
  t.after(() => a.close());
  const start = Date.now();
  await assert.rejects(x0x.Agent.create({ dataDir: dir }),
    (e) => e instanceof x0x.X0xError && e.code === 'X0X_ERR_IO' && /data directory in use/.test(e.message) && e.message.includes(dir));
  assert.ok(Date.now() - start < 5000, `refused after ${Date.now() - start} ms`);
  await a.close();
  const again = await x0x.Agent.create({ dataDir: dir }); // free once the first is closed
  assert.equal(again.agentId, a.agentId);
  await again.close();
});

test('waitForAgent of the agent itself resolves at once', async (t) => {
  const [a] = await makeAgents(t, 1);
  const start = Date.now();
  await a.waitForAgent(a.agentId, { timeoutMs: 30000 });
  assert.ok(Date.now() - start < 1000, `took ${Date.now() - start} ms`);
});

test('no dataDir means $X0X_HOME (else ~/.x0x); an empty dataDir is refused', async () => {
  await assert.rejects(x0x.Agent.create({ dataDir: '' }), (e) => e instanceof RangeError && /dataDir must not be empty/.test(e.message));
  // In a child process: the library reads X0X_HOME when it is loaded. HOME
  // is a temporary directory too, so ~/.x0x is never the user's.
  const { dir, cleanup } = tempDir();
  try {
    const home = path.join(dir, 'home');
    const x0xHome = path.join(dir, 'x0x-home');
    fs.mkdirSync(home);
    const lib = JSON.stringify(path.join(__dirname, '..', 'lib', 'index.js'));
    const r = spawnSync(process.execPath, ['-e', `const { Agent } = require(${lib});
      (async () => { const a = await Agent.create(); console.log(a.agentId); await a.close(); })()
        .catch((e) => { console.error(e); process.exit(3); });`],
    { timeout: 30000, encoding: 'utf8', env: { ...process.env, HOME: home, X0X_HOME: x0xHome } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(x0xHome, 'agent.lock')), 'the agent used $X0X_HOME');
    assert.deepEqual(fs.readdirSync(home), [], 'nothing in HOME (no ~/.x0x)');
  } finally {
    cleanup();
  }
});

test('a left task list rejects with X0X_ERR_CLOSED, as do the other TaskLists of that list', async (t) => {
  const [a] = await makeAgents(t, 1);
  const list = await x0x.TaskList.create(a, 'left');
  const twin = await x0x.TaskList.join(a, list.id);
  await list.leave();
  await assert.rejects(list.addTask('x'), closed);
  await assert.rejects(list.listTasks(), closed);
  await assert.rejects(twin.listTasks(), closed, 'the library invalidated every handle of the list');
  await twin.leave(); // a no-op
  await list.leave();
});

test('a closed group rejects with X0X_ERR_CLOSED, and so do its task lists', { skip: x0x.capabilities.groups ? false : 'needs groups' }, async (t) => {
  const [a] = await makeAgents(t, 1);
  const g = await a.createGroup();
  const list = await g.createTaskList('group list');
  await g.close();
  assert.throws(() => g.info(), closed);
  await assert.rejects(g.publish('x'), closed);
  await assert.rejects(list.addTask('x'), closed);
});

test('TopicMessage.peer is null, for remote messages too; string payloads are UTF-8', async (t) => {
  const [a, b] = await joinedPair(t);
  const ta = await a.join('peer-null');
  const sub = (await b.join('peer-null')).subscribe();
  let m = null;
  const reading = sub.next().then((x) => { m = x; });
  for (let i = 0; i < 100 && m === null; i++) {
    await ta.publish('héllo ✓');
    await Promise.race([reading, sleep(200)]);
  }
  assert.ok(m, 'no message arrived');
  assert.equal(m.from, a.agentId);
  assert.equal(m.peer, null);
  assert.ok(m.hops >= 1, 'a remote message');
  assert.equal(m.payload.toString('utf8'), 'héllo ✓');
  assert.ok(Buffer.isBuffer(m.payload));
});
