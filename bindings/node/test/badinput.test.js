'use strict';
// Bad input from JS: wrong types and sizes are TypeError/RangeError before
// any native call; library refusals are X0xError with the status name;
// closed agents, double close, concurrent calls and raw misuse of the
// addon never crash the process.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { spawnSync } = require('node:child_process');
const { x0x, makeAgents, tempDir } = require('./helpers');
const { loadAddon } = require('../lib/loader');

const native = loadAddon();
const ID = 'ab'.repeat(32);

test('Agent.create rejects bad options with TypeError/RangeError', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const bad = [
    [5, TypeError, /options must be an object/],
    [{ dataDir: 5 }, TypeError, /dataDir must be a string/],
    [{ dataDir: '' }, RangeError, /dataDir must not be empty/],
    [{ dataDir: 'a\0b' }, TypeError, /NUL/],
    [{ dataDir: 'x'.repeat(5000) }, RangeError, /limit is 4096/],
    [{ datadir: dir }, TypeError, /unknown option "datadir"/],
    [{ bootstrap: 'host:1' }, TypeError, /bootstrap must be an array/],
    [{ bootstrap: [1] }, TypeError, /bootstrap\[0\] must be a string/],
    [{ network: 'mainnet' }, RangeError, /network must be 'local' or 'testnet'/],
    [{ eventQueueCapacity: 0 }, RangeError, /eventQueueCapacity/],
    [{ eventQueueCapacity: 65537 }, RangeError, /eventQueueCapacity/],
    [{ eventQueueCapacity: 1.5 }, RangeError, /eventQueueCapacity/],
    [{ eventQueueCapacity: '10' }, TypeError, /eventQueueCapacity must be a number/],
    [{ passphrase: 42 }, TypeError, /passphrase must be/],
    [{ passphrase: Buffer.alloc(1025) }, RangeError, /limit is 1024/],
    [{ identity: 'me' }, TypeError, /identity must be an Identity/],
    [{ timeoutMs: -1 }, RangeError, /timeoutMs/],
    [{ timeoutMs: 2 ** 32 }, RangeError, /timeoutMs/],
  ];
  for (const [opts, type, re] of bad) {
    await assert.rejects(x0x.Agent.create(opts), (e) => e instanceof type && re.test(e.message), JSON.stringify(opts));
  }
  // Values the binding cannot check are refused by the library.
  await assert.rejects(x0x.Agent.create({ dataDir: dir, bootstrap: ['no-port'] }),
    (e) => e instanceof x0x.X0xError && e.code === 'X0X_ERR_INVALID_ARG' && /no-port/.test(e.message));
  await assert.rejects(x0x.Agent.create({ dataDir: dir, bindAddr: 'nonsense' }), (e) => e instanceof x0x.X0xError);
  assert.throws(() => new x0x.Agent(), TypeError);
});

test('calls reject bad arguments before reaching the library', async (t) => {
  const [a] = await makeAgents(t, 1);
  const cases = [
    [() => a.publish('', 'x'), RangeError, /topic must not be empty/],
    [() => a.publish('t'.repeat(257), 'x'), RangeError, /limit is 256/],
    [() => a.publish('é'.repeat(129), 'x'), RangeError, /258 bytes/],
    [() => a.publish(7, 'x'), TypeError, /topic must be a string, got number/],
    [() => a.publish('t', { x: 1 }), TypeError, /data must be a Buffer/],
    [() => a.publish('t', 12), TypeError, /data must be a Buffer/],
    [() => a.publish('t', null), TypeError, /got null/],
    [() => a.publish('t', Buffer.alloc(16 * 1024 * 1024 + 1)), RangeError, /limit is 16777216/],
    [() => a.publish('t', 'x', { timeoutMs: '5' }), TypeError, /timeoutMs must be a number/],
    [() => a.publish('t', 'x', { timeoutMs: 1.5 }), RangeError, /timeoutMs/],
    [() => a.publish('t', 'x', { timeout: 5 }), TypeError, /unknown option "timeout"/],
    [() => a.sendDirect('xyz', 'x'), RangeError, /agentId must be 64 hex digits/],
    [() => a.sendDirect(ID.slice(1) + 'g', 'x'), RangeError, /64 hex digits/],
    [() => a.sendDirect(Buffer.alloc(32), 'x'), TypeError, /agentId must be a 64-digit hex string/],
    [() => a.waitForAgent(undefined), TypeError, /got undefined/],
    [() => a.connect(42), TypeError, /addr must be a string/],
    [() => a.joinNetwork('fast'), TypeError, /options must be an object/],
    [() => a.exportIdentity(''), RangeError, /must not be empty/],
    [() => a.debugInjectEvents(-1, 1), RangeError, /n must be/],
  ];
  for (const [fn, type, re] of cases) {
    await assert.rejects(fn(), (e) => e instanceof type && re.test(e.message), fn.toString());
  }
  assert.throws(() => a.subscribe('t', 'not a function'), { name: 'TypeError', message: /callback must be a function/ });
  assert.throws(() => a.subscribe('a\0b', () => {}), { name: 'TypeError', message: /NUL/ });
  assert.throws(() => a.subscribe('', () => {}), RangeError);
  assert.throws(() => a.peerAgents('00'), RangeError);
  assert.deepEqual(a.subscriptions(), [], 'failed subscribes leave nothing behind');
  // Library-level refusals.
  await assert.rejects(a.connect('not an address'), { name: 'X0xError', code: 'X0X_ERR_INVALID_ARG' });
  await assert.rejects(a.publish('t', Buffer.alloc(1024 * 1024 + 1)), { code: 'X0X_ERR_TOO_LARGE' });
  await assert.rejects(a.joinNetwork({ timeoutMs: 1000 }), { code: 'X0X_ERR_NO_PEERS' });
  await assert.rejects(a.debugInjectEvents(1, 65537), { code: 'X0X_ERR_INVALID_ARG' });
  // Typed arrays of wider elements are sent as their bytes.
  await a.publish('t', new Uint32Array([1, 2]));
  await a.publish('t', new ArrayBuffer(3));
  await a.publish('t', new DataView(new ArrayBuffer(2)));
});

test('a closed agent: double close is a no-op, every call fails with X0X_ERR_CLOSED', async (t) => {
  const [a] = await makeAgents(t, 1);
  let closeEvents = 0;
  a.on('close', () => closeEvents++);
  const p1 = a.close();
  const p2 = a.close();
  assert.equal(p1, p2, 'the same Promise');
  await p1;
  await a.close();
  assert.equal(closeEvents, 1);
  assert.equal(a.closed, true);
  const closed = { name: 'X0xError', code: 'X0X_ERR_CLOSED' };
  await assert.rejects(a.publish('t', 'x'), closed);
  await assert.rejects(a.sendDirect(ID, 'x'), closed);
  await assert.rejects(a.joinNetwork(), closed);
  await assert.rejects(a.connect('127.0.0.1:9'), closed);
  await assert.rejects(a.waitForAgent(ID), closed);
  await assert.rejects(a.exportIdentity('p'), closed);
  await assert.rejects(a.debugInjectEvents(1, 1), closed);
  await assert.rejects(x0x.TaskList.create(a, 'x'), closed);
  assert.throws(() => a.subscribe('t', () => {}), closed);
  assert.throws(() => a.connectedPeers(), closed);
  assert.throws(() => a.eventsDropped(), closed);
  assert.match(a.agentId, /^[0-9a-f]{64}$/, 'IDs stay readable');
});

test('closing the agent from inside its own listener stops delivery at once', async (t) => {
  const [a] = await makeAgents(t, 1, () => ({ eventQueueCapacity: 4096 }));
  let seen = 0;
  let closing;
  const closedEvent = new Promise((resolve) => a.once('close', resolve));
  a.on('direct', () => {
    seen++;
    if (seen === 10) closing = a.close();
  });
  await a.debugInjectEvents(2000, 8).catch((e) => assert.ok(['X0X_ERR_CLOSED', 'X0X_ERR_INVALID_HANDLE'].includes(e.code), e.code));
  await closedEvent;
  await closing;
  assert.equal(seen, 10, 'no event after close() returned');
});

test('unsubscribe after close does not throw', async (t) => {
  const [a] = await makeAgents(t, 1);
  const s = a.subscribe('t', () => {});
  await a.close();
  assert.equal(s(), false, 'close dropped the subscription');
});

test('many concurrent calls, then close while they are in flight', async (t) => {
  const [a, b] = await makeAgents(t, 2);
  await a.connect(b.connectAddr, { timeoutMs: 10000 });
  await a.waitForAgent(b.agentId, { timeoutMs: 10000 });
  let received = 0;
  b.on('direct', () => received++);
  // 400 concurrent calls on one agent all succeed.
  const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => a.publish('load', `m${i}`)));
  assert.equal(new Set(ids).size, 200, 'distinct message IDs');
  await Promise.all(Array.from({ length: 200 }, (_, i) => a.sendDirect(b.agentId, `d${i}`)));
  for (let i = 0; i < 100 && received < 200; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(received, 200);

  // Close while hundreds of calls are queued or running: each settles,
  // successes or X0X_ERR_CLOSED / X0X_ERR_INVALID_HANDLE, nothing else.
  const inflight = [];
  for (let i = 0; i < 150; i++) {
    inflight.push(a.publish('load', 'x'));
    inflight.push(a.sendDirect(b.agentId, 'y'));
  }
  inflight.push(a.waitForAgent(ID, { timeoutMs: 3000 }));
  inflight.push(a.debugInjectEvents(50000, 16));
  const closing = a.close();
  const results = await Promise.allSettled(inflight);
  await closing;
  for (const r of results) {
    if (r.status === 'rejected') {
      assert.ok(r.reason instanceof x0x.X0xError, String(r.reason));
      assert.ok(['X0X_ERR_CLOSED', 'X0X_ERR_INVALID_HANDLE', 'X0X_ERR_TIMEOUT'].includes(r.reason.code), r.reason.code + ': ' + r.reason.message);
    }
  }
  // b is unaffected.
  assert.deepEqual(b.connectedPeers().length >= 0, true);
  await b.publish('still', 'alive');
});

test('the raw addon refuses wrong handles and types without crashing', async () => {
  assert.throws(() => native.publish({}, 't', Buffer.alloc(1)), TypeError);
  assert.throws(() => native.connectedPeers(123), TypeError);
  assert.throws(() => native.agentClose('agent'), TypeError);
  assert.throws(() => native.agentCreate('x', () => {}), TypeError);
  assert.throws(() => native.agentCreate({}, 5), TypeError);
  assert.throws(() => native.agentCreate({ bootstrap: 'x' }, () => {}), TypeError);
  assert.throws(() => native.agentCreate({ get dataDir() { throw new Error('getter'); } }, () => {}), /getter/);
  assert.throws(() => native.agentCreate({ dataDir: 'x', bootstrap: [1] }, () => {}), TypeError);
  assert.throws(() => native.agentCreate({ passphrase: 'not bytes' }, () => {}), TypeError);
  assert.throws(() => native.statusName('a'), TypeError);
  assert.equal(native.statusName(8), 'X0X_ERR_TIMEOUT');
  assert.equal(native.statusName(12345), 'X0X_ERR_UNKNOWN');
  assert.throws(() => native.publish(), TypeError);
  assert.throws(() => native.identityDestroy(999999n), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.identityDestroy(-1n), RangeError);
  assert.throws(() => native.identityDestroy(2n ** 64n), RangeError);
  assert.throws(() => native.identityAgentId(1), TypeError);
  assert.throws(() => native.tasklist('bogus', 1n), RangeError);
  assert.throws(() => native.tasklist(7, 1n), TypeError);
  if (x0x.capabilities.tasklist) {
    await assert.rejects(native.tasklist('claim', 424242n, ID), { code: 'X0X_ERR_INVALID_HANDLE' });
    await assert.rejects(native.tasklist('snapshot', 0n), { code: 'X0X_ERR_INVALID_HANDLE' });
    assert.throws(() => native.tasklist('update', 1n, ID, ['title']), TypeError);
    assert.throws(() => native.tasklist('claim', 1n), TypeError);
  }
  await assert.rejects(native.identityImport(Buffer.alloc(10), Buffer.from('p')), { code: 'X0X_ERR_CORRUPT' });
  assert.throws(() => native.identityImport(Buffer.alloc(64 * 1024 + 1), Buffer.from('p')), RangeError);
});

test('topic handles: bad arguments, left topics and closed agents fail cleanly', async (t) => {
  const [a] = await makeAgents(t, 1);
  const bad = [
    [() => a.join(''), RangeError, /topic must not be empty/],
    [() => a.join(5), TypeError, /topic must be a string/],
    [() => a.join('t'.repeat(257)), RangeError, /limit is 256/],
    [() => a.join('t', 5), TypeError, /join options must be an object/],
    [() => a.join('t', { validater: () => true }), TypeError, /unknown option "validater"/],
    [() => a.join('t', { validator: 5 }), TypeError, /validator must be a function/],
    [() => a.join('t', { publishOnly: 'yes' }), TypeError, /publishOnly must be a boolean/],
    [() => a.join('t', { validationTimeoutMs: 0 }), RangeError, /validationTimeoutMs/],
    [() => a.join('t', { validationTimeoutMs: 10001 }), RangeError, /validationTimeoutMs/],
    [() => a.join('t', { validationTimeoutMs: '5' }), TypeError, /validationTimeoutMs must be a number/],
  ];
  for (const [f, type, re] of bad) await assert.rejects(f(), (e) => e instanceof type && re.test(e.message), re.source);
  const topic = await a.join('t');
  assert.throws(() => topic.subscribe({ capacity: 0 }), RangeError);
  assert.throws(() => topic.subscribe({ capacity: '1' }), TypeError);
  assert.throws(() => topic.subscribe({ size: 1 }), TypeError);
  assert.throws(() => topic.events({ capacity: 2 ** 21 }), RangeError);
  await assert.rejects(topic.publish(42), TypeError);
  await assert.rejects(topic.publish(Buffer.alloc(16 * 1024 * 1024 + 1)), RangeError);
  await assert.rejects(topic.publish(Buffer.alloc(1024 * 1024 + 1)), { code: 'X0X_ERR_TOO_LARGE' });
  assert.throws(() => new x0x.Topic(), TypeError);
  assert.throws(() => new x0x.Subscription(), TypeError);

  const sub = topic.subscribe();
  const events = topic.events();
  await topic.leave();
  assert.equal(topic.left, true);
  assert.equal(await sub.next(), null, 'leave ended the subscription');
  assert.equal(await events.next(), null);
  sub.close(); // no-op after leave
  const left = { name: 'X0xError', code: 'X0X_ERR_INVALID_HANDLE' };
  await assert.rejects(topic.publish('x'), left);
  assert.throws(() => topic.subscribe(), left);
  assert.throws(() => topic.events(), left);
  assert.throws(() => topic.neighbours(), left);

  const other = await a.join('u');
  const osub = other.subscribe();
  const waiting = osub.next();
  await a.close();
  assert.equal(await waiting, null, 'close ended a waiting next()');
  const closed = { name: 'X0xError', code: 'X0X_ERR_CLOSED' };
  await assert.rejects(a.join('t'), closed);
  await assert.rejects(other.publish('x'), closed);
  assert.throws(() => other.subscribe(), closed);
  assert.throws(() => other.neighbours(), closed);
  await other.leave(); // a no-op once the agent is closed
});

test('the raw addon refuses wrong topic and subscription handles without crashing', async () => {
  assert.throws(() => native.topicJoin({}, 't', 0, false, 0), TypeError);
  assert.throws(() => native.topicJoin(), TypeError);
  assert.throws(() => native.topicSubscribe(12345n), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.topicEvents(0n), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.topicSubscribe(2n ** 64n), RangeError);
  assert.throws(() => native.subscriptionClose(1n), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.subscriptionClose(0x06ffffffffffffffn), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.topicLeave(-1n), RangeError);
  assert.throws(() => native.topicLeave(0x05ffffffffffffffn), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.topicNeighbours('x'), TypeError);
  assert.throws(() => native.topicNeighbours(7n), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.topicValidationResult(1n, 0, true), RangeError);
  assert.throws(() => native.topicValidationResult(1n, 1.5, true), RangeError);
  assert.throws(() => native.topicValidationResult(1n, 1, 'yes'), TypeError);
  assert.throws(() => native.topicValidationResult(424242n, 1, true), { code: 'X0X_ERR_INVALID_HANDLE' });
  await assert.rejects(native.topicPublish(5n, Buffer.from('x')), { code: 'X0X_ERR_INVALID_HANDLE' });
  assert.throws(() => native.topicPublish(5n, 7), TypeError);
  assert.throws(() => native.topicPublish(5, Buffer.alloc(1)), TypeError);
});

test('an agent left open in a terminated worker thread is cleaned up', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const { Agent } = require(workerData.lib);
    Agent.create({ dataDir: workerData.dir }).then((a) => {
      a.on('direct', () => {});
      return a.sendDirect(a.agentId, 'x').then(() => parentPort.postMessage(a.agentId));
    }, (e) => parentPort.postMessage('error: ' + e.message));
  `, { eval: true, workerData: { dir, lib: path.join(__dirname, '..', 'lib', 'index.js') } });
  const id = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  assert.match(id, /^[0-9a-f]{64}$/);
  await w.terminate();
  // The data directory is free again: a new agent in the main thread can use it.
  const again = await x0x.Agent.create({ dataDir: dir });
  assert.equal(again.agentId, id);
  await again.close();
});

test('a process exits on its own once its agents are closed, and process.exit with open agents is clean', () => {
  const { dir, cleanup } = tempDir();
  try {
    const lib = JSON.stringify(path.join(__dirname, '..', 'lib', 'index.js'));
    const run = (body) => spawnSync(process.execPath, ['-e', `const { Agent } = require(${lib}); (async () => { ${body} })().catch((e) => { console.error(e); process.exit(3); });`],
      { timeout: 20000, encoding: 'utf8' });
    const closed = run(`const a = await Agent.create({ dataDir: ${JSON.stringify(dir + '/a')} }); a.subscribe('t', () => {}); await a.publish('t', 'x'); await a.close(); console.log('closed');`);
    assert.equal(closed.error, undefined, 'did not time out');
    assert.equal(closed.status, 0, closed.stderr);
    assert.match(closed.stdout, /closed/);
    const exited = run(`const a = await Agent.create({ dataDir: ${JSON.stringify(dir + '/b')} }); setTimeout(() => process.exit(7), 50);`);
    assert.equal(exited.error, undefined, 'did not time out');
    assert.equal(exited.status, 7, exited.stderr);
    assert.equal(exited.signal, null);
  } finally {
    cleanup();
  }
});

test('many agents created, used and closed at the same time', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const agents = await Promise.all(Array.from({ length: 8 }, (_, i) => x0x.Agent.create({ dataDir: path.join(dir, `a${i}`) })));
  assert.equal(new Set(agents.map((a) => a.agentId)).size, 8);
  const counts = agents.map(() => 0);
  agents.forEach((a, i) => a.on('direct', () => counts[i]++));
  await Promise.all(agents.map((a) => a.debugInjectEvents(500, 32)));
  for (let i = 0; i < 100 && counts.some((c) => c < 500); i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(counts, agents.map(() => 500), 'each agent gets exactly its own events');
  await Promise.all(agents.flatMap((a) => [a.close(), a.close(), a.publish('t', 'x').catch((e) => e.code)]));
  assert.ok(agents.every((a) => a.closed));
});

test('groups: bad arguments, closed groups and closed agents fail cleanly', { skip: x0x.capabilities.groups ? false : 'needs x0x_group_* in libx0x' }, async (t) => {
  const [a] = await makeAgents(t, 1);
  const g = await a.createGroup();
  const bad = [
    [() => a.acceptInvitation(5), TypeError, /groupId must be a 64-digit hex string, got number/],
    [() => a.acceptInvitation('zz'), RangeError, /groupId must be 64 hex digits/],
    [() => a.acceptInvitation(Buffer.alloc(32)), TypeError, /groupId/],
    [() => a.declineInvitation(undefined), TypeError, /got undefined/],
    [() => a.declineInvitation(ID + '0'), RangeError, /64 hex digits/],
    [async () => a.group(5), TypeError, /groupId must be a 64-digit hex string, got number/],
    [async () => a.group('zz'), RangeError, /groupId must be 64 hex digits/],
    [() => g.invite('nope'), RangeError, /agentId must be 64 hex digits/],
    [() => g.invite(null), TypeError, /agentId/],
    [() => g.invite(ID, { timeout: 5 }), TypeError, /unknown option "timeout"/],
    [() => g.invite(ID, { timeoutMs: -1 }), RangeError, /timeoutMs/],
    [() => g.invite(ID, 'soon'), TypeError, /options must be an object/],
    [() => g.inviteKeyPackage('kp'), TypeError, /keyPackage must be a Buffer/],
    [() => g.inviteKeyPackage(7), TypeError, /keyPackage must be a Buffer/],
    [() => g.inviteKeyPackage(Buffer.alloc(0)), RangeError, /keyPackage must not be empty/],
    [() => g.inviteKeyPackage(Buffer.alloc(1), { timeoutMs: 1.5 }), RangeError, /timeoutMs/],
    [() => g.remove(5), TypeError, /agentId must be a 64-digit hex string/],
    [() => g.remove('ab'), RangeError, /64 hex digits/],
    [() => g.publish(42), TypeError, /data must be a Buffer/],
    [() => g.publish(undefined), TypeError, /got undefined/],
    [() => g.publish(Buffer.alloc(16 * 1024 * 1024 + 1)), RangeError, /limit is 16777216/],
    [() => g.createTaskList(5), TypeError, /name must be a string/],
    [() => g.createTaskList('a\0b'), TypeError, /NUL/],
    [() => g.joinTaskList('x'), RangeError, /listId must be 64 hex digits/],
  ];
  for (const [f, type, re] of bad) await assert.rejects(f(), (e) => e instanceof type && re.test(e.message), f.toString());
  assert.throws(() => g.messages({ capacity: 0 }), RangeError);
  assert.throws(() => g.messages({ capacity: '1' }), TypeError);
  assert.throws(() => g.events(5), TypeError);
  assert.throws(() => g.events({ size: 1 }), /unknown option "size"/);
  assert.throws(() => new x0x.Group(), TypeError);
  assert.throws(() => new x0x.GroupMessages(), TypeError);

  // Library refusals.
  const notFound = { name: 'X0xError', code: 'X0X_ERR_NOT_FOUND' };
  await assert.rejects(a.acceptInvitation(ID), notFound);
  await assert.rejects(a.declineInvitation(ID.toUpperCase()), notFound);
  assert.throws(() => a.group(ID), notFound);
  assert.equal(a.group(g.id), g);
  assert.deepEqual(a.groups(), [g]);
  await assert.rejects(g.invite(ID, { timeoutMs: 2000 }), (e) => e instanceof x0x.X0xError && ['X0X_ERR_NO_ROUTE', 'X0X_ERR_TIMEOUT'].includes(e.code), 'nobody carries the agent');
  await assert.rejects(g.invite(a.agentId), (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_ALREADY_MEMBER');
  await assert.rejects(g.inviteKeyPackage(Buffer.from('not a key package')), { code: 'X0X_ERR_CORRUPT' });
  await assert.rejects(g.inviteKeyPackage(Buffer.alloc(1024 * 1024)), { code: 'X0X_ERR_TOO_LARGE' });
  await assert.rejects(g.remove(ID), (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_NOT_MEMBER' && e.status === 20);
  await assert.rejects(g.leave(), (e) => e instanceof x0x.X0xGroupError && e.code === 'X0X_ERR_NOT_MEMBER');
  await assert.rejects(g.publish(Buffer.alloc(1024 * 1024)), { code: 'X0X_ERR_TOO_LARGE' });
  const outside = await x0x.TaskList.create(a, 'not the group\'s');
  await assert.rejects(g.joinTaskList(outside.id), { code: 'X0X_ERR_INVALID_ARG' }, 'a list open outside the group');
  await outside.leave();
  assert.deepEqual(a.invitations(), []);
  await g.update();
  await g.publish('');

  // A closed group: every call fails with X0X_ERR_CLOSED (x0x.Closed in Python); close is idempotent.
  const msgs = g.messages();
  const list = await g.createTaskList('mine');
  await g.close();
  await g.close();
  assert.equal(await msgs.next(), null);
  const gone = { name: 'X0xError', code: 'X0X_ERR_CLOSED' };
  assert.throws(() => g.info(), gone);
  assert.throws(() => g.messages(), gone);
  assert.throws(() => g.events(), gone);
  await assert.rejects(g.publish('x'), gone);
  await assert.rejects(g.invite(ID), gone);
  await assert.rejects(g.inviteKeyPackage(Buffer.alloc(1)), gone);
  await assert.rejects(g.remove(ID), gone);
  await assert.rejects(g.update(), gone);
  await assert.rejects(g.leave(), gone);
  await assert.rejects(g.createTaskList('x'), gone);
  await assert.rejects(g.joinTaskList(ID), gone);
  await assert.rejects(list.addTask('x'), gone);
  // Bad arguments still win over the closed handle.
  await assert.rejects(g.publish(42), TypeError);

  // A closed agent: X0X_ERR_CLOSED everywhere, its groups end.
  const g2 = await a.createGroup();
  const events = g2.events();
  const waiting = events.next();
  await a.close();
  assert.equal(await waiting, null);
  const closed = { name: 'X0xError', code: 'X0X_ERR_CLOSED' };
  await assert.rejects(a.createGroup(), closed);
  await assert.rejects(a.publishKeyPackage(), closed);
  await assert.rejects(a.acceptInvitation(ID), closed);
  await assert.rejects(a.declineInvitation(ID), closed);
  assert.throws(() => a.invitations(), closed);
  assert.deepEqual(a.groups(), []);
  assert.throws(() => a.group(g2.id), closed);
  assert.throws(() => g2.info(), closed);
  await assert.rejects(g2.publish('x'), closed);
  await assert.rejects(g2.invite(ID), closed);
  await g2.close(); // a no-op
  assert.equal(g2.closed, true);
});

test('the raw addon refuses wrong group handles and arguments without crashing', { skip: x0x.capabilities.groups ? false : 'needs x0x_group_* in libx0x' }, async (t) => {
  const [a] = await makeAgents(t, 1);
  assert.throws(() => native.group('bogus', 1n), RangeError);
  assert.throws(() => native.group(7, 1n), TypeError);
  assert.throws(() => native.group('update'), TypeError);
  assert.throws(() => native.group('update', 1), TypeError);
  assert.throws(() => native.group('update', -1n), RangeError);
  assert.throws(() => native.group('update', 2n ** 64n), RangeError);
  assert.throws(() => native.group('create', {}), TypeError);
  assert.throws(() => native.group('create', 5n), TypeError);
  assert.throws(() => native.group('accept', 1n, ID), TypeError, 'accept takes the agent');
  assert.throws(() => native.group('invite', 1n), TypeError);
  assert.throws(() => native.group('invite', 1n, 'xyz'), RangeError);
  assert.throws(() => native.group('invite', 1n, ID, 'soon'), TypeError);
  assert.throws(() => native.group('inviteKeyPackage', 1n, 'str'), TypeError);
  assert.throws(() => native.group('publish', 1n, 7), TypeError);
  assert.throws(() => native.group('createTaskList', 1n, 'a\0b'), TypeError);
  assert.throws(() => native.group('joinTaskList', 1n, 5), TypeError);
  assert.throws(() => native.group('accept', native.group), TypeError);
  const invalid = { code: 'X0X_ERR_INVALID_HANDLE' };
  for (const [op, arg] of [['invite', ID], ['inviteKeyPackage', Buffer.alloc(3)], ['remove', ID], ['update'], ['leave'],
    ['publish', Buffer.alloc(3)], ['createTaskList', 'x'], ['joinTaskList', ID], ['close']]) {
    await assert.rejects(native.group(op, 424242n, arg), invalid, op);
    await assert.rejects(native.group(op, 0n, arg), invalid, op);
  }
  assert.throws(() => native.groupInfo(424242n), invalid);
  assert.throws(() => native.groupInfo('x'), TypeError);
  assert.throws(() => native.groupInfo(), TypeError);
  assert.throws(() => native.invitations({}), TypeError);
  assert.throws(() => native.invitations(), TypeError);
  assert.throws(() => native.groups({}), TypeError);
  assert.throws(() => native.groups(), TypeError);
  assert.throws(() => native.groupOpen({}, ID), TypeError);
  // A task-list handle is not a group handle, and a group handle is not a list handle.
  const list = await x0x.TaskList.create(a, 'x');
  const g = await a.createGroup();
  const raw = g[Object.getOwnPropertySymbols(Object.getPrototypeOf(g)).find((s) => s.description === 'x0x.native')]();
  assert.equal(typeof raw, 'bigint');
  assert.throws(() => native.groupInfo(raw + 1n), invalid);
  await assert.rejects(native.tasklist('snapshot', raw), invalid);
  assert.match(JSON.parse(native.groupInfo(raw)).id, /^[0-9a-f]{64}$/);
  const ext = a[Object.getOwnPropertySymbols(Object.getPrototypeOf(a)).find((s) => s.description === 'x0x.native')]();
  assert.ok(Array.isArray(JSON.parse(native.invitations(ext))));
  assert.deepEqual(JSON.parse(native.groups(ext)), [g.id]);
  assert.equal(native.groupOpen(ext, g.id), raw, 'the handle the agent has');
  assert.throws(() => native.groupOpen(ext, 'xyz'), RangeError);
  assert.throws(() => native.groupOpen(ext), TypeError);
  assert.throws(() => native.groupOpen(ext, ID), { code: 'X0X_ERR_NOT_FOUND' });
  await list.leave();
  await g.close();
  await assert.rejects(native.group('close', raw), invalid, 'a second close');
});
