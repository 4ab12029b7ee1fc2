'use strict';
// Two agents over loopback: connection events, pub/sub both ways with
// multiplexed callbacks, direct messages both ways, identities, the event
// path under load.
const test = require('node:test');
const assert = require('node:assert/strict');
const { x0x, makeAgents, joinedPair, nextEvent, sleep, publishUntil, tempDir } = require('./helpers');

const HEX64 = /^[0-9a-f]{64}$/;

test('library ABI and capabilities', () => {
  assert.equal(x0x.abiVersion() >>> 16, 0, 'ABI major 0');
  assert.ok((x0x.abiVersion() & 0xffff) >= 2, 'ABI minor >= 2');
  assert.equal(x0x.capabilities.pubsub, true);
  assert.equal(x0x.capabilities.injectEvents, true);
  assert.equal(x0x.capabilities.topics, true);
  assert.ok((x0x.abiVersion() & 0xffff) >= 6, 'ABI minor >= 6 (topic handles)');
  assert.equal(x0x.Status.X0X_ERR_REJECTED, 19);
  assert.equal(x0x.EventKind.LAGGED, 12);
});

test('agent identity and address', async (t) => {
  const [a, b] = await makeAgents(t, 2);
  assert.match(a.agentId, HEX64);
  assert.match(a.machineId, HEX64);
  assert.notEqual(a.agentId, b.agentId);
  assert.notEqual(a.machineId, b.machineId);
  assert.match(a.addr, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(a.addr, b.addr);
  assert.equal(a.connectAddr, `${a.machineId}@${a.addr}`);
  assert.deepEqual(a.connectedPeers(), []);
  assert.equal(a.eventsDropped(), 0);
});

test('the same data directory keeps the same agent ID', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const a = await x0x.Agent.create({ dataDir: dir });
  const id = a.agentId;
  await a.close();
  const b = await x0x.Agent.create({ dataDir: dir });
  assert.equal(b.agentId, id);
  await b.close();
});

test('connect: both sides see the connection, with the right peer and agents', async (t) => {
  const [a, b] = await makeAgents(t, 2);
  const aSees = nextEvent(a, 'connected', (e) => e.peer === b.machineId);
  const bSees = nextEvent(b, 'connected', (e) => e.peer === a.machineId);
  const peer = await a.connect(b.connectAddr, { timeoutMs: 10000 });
  assert.equal(peer, b.machineId, 'connect resolves to the peer ID that proved itself');
  const [ea, eb] = await Promise.all([aSees, bSees]);
  assert.equal(ea.addr, b.addr);
  await a.waitForAgent(b.agentId, { timeoutMs: 10000 });
  assert.ok(a.connectedPeers().includes(b.machineId));
  assert.ok(a.peerAgents(b.machineId).includes(b.agentId));
  assert.ok(Array.isArray(eb.agents));
});

test('natType and externalAddress: two peers at different IPs see the agent at its own address', async (t) => {
  const [n, o1] = await makeAgents(t, 2);
  const [o2] = await makeAgents(t, 1, () => ({ bindAddr: '127.0.0.2:0' }));
  const order = [];
  n.on('natType', () => order.push('natType'));
  n.on('externalAddress', () => order.push('externalAddress'));
  const detected = nextEvent(n, 'natType');
  const external = nextEvent(n, 'externalAddress');
  await n.connect(o1.connectAddr, { timeoutMs: 10000 });
  assert.deepEqual(order, [], 'one observer is not enough');
  await n.connect(o2.connectAddr, { timeoutMs: 10000 });
  assert.deepEqual(await detected, { type: 'none', addr: n.addr });
  assert.deepEqual(await external, { addr: n.addr });
  assert.deepEqual(order, ['natType', 'externalAddress']);
  assert.equal(x0x.EventKind.NAT_TYPE_DETECTED, 9);
  assert.equal(x0x.EventKind.EXTERNAL_ADDRESS_DISCOVERED, 4);
});

test('connect to a pinned but wrong peer ID fails with X0X_ERR_AUTH', async (t) => {
  const [a, b, c] = await makeAgents(t, 3);
  const wrong = `${c.machineId}@${b.addr}`; // b's address, c's identity
  await assert.rejects(a.connect(wrong, { timeoutMs: 10000 }), (err) => {
    assert.ok(err instanceof x0x.X0xError);
    assert.equal(err.code, 'X0X_ERR_AUTH');
    assert.equal(err.status, x0x.Status.X0X_ERR_AUTH);
    assert.match(err.message, /x0x_connect/);
    return true;
  });
});

test('direct messages both ways, binary and string payloads', async (t) => {
  const [a, b] = await makeAgents(t, 2);
  await a.connect(b.connectAddr, { timeoutMs: 10000 });
  await a.waitForAgent(b.agentId, { timeoutMs: 10000 });
  await b.waitForAgent(a.agentId, { timeoutMs: 10000 });

  const bin = Buffer.from([0, 1, 2, 255, 0, 128]);
  const atB = nextEvent(b, 'direct', (m) => m.from === a.agentId);
  await a.sendDirect(b.agentId, bin);
  const m1 = await atB;
  assert.deepEqual(m1.payload, bin);
  assert.equal(m1.to, b.agentId);
  assert.equal(m1.peer, a.machineId);

  const atA = nextEvent(a, 'direct', (m) => m.from === b.agentId);
  await b.sendDirect(a.agentId, 'héllo ✓', { timeoutMs: 5000 });
  const m2 = await atA;
  assert.equal(m2.payload.toString('utf8'), 'héllo ✓');
  assert.ok(Buffer.isBuffer(m2.payload));

  // Uint8Array views: only the viewed bytes are sent.
  const big = new Uint8Array(16);
  big.set([9, 8, 7], 4);
  const atB2 = nextEvent(b, 'direct', (m) => m.payload.length === 3);
  await a.sendDirect(b.agentId, big.subarray(4, 7));
  assert.deepEqual([...(await atB2).payload], [9, 8, 7]);

  // An empty payload arrives as an empty Buffer.
  const atB3 = nextEvent(b, 'direct', (m) => m.payload.length === 0);
  await a.sendDirect(b.agentId, Buffer.alloc(0));
  assert.equal((await atB3).payload.length, 0);

  // Many messages arrive in order and complete.
  const got = [];
  b.on('direct', (m) => { if (m.payload.length === 4) got.push(m.payload.readUInt32BE(0)); });
  for (let i = 0; i < 300; i++) {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(i);
    await a.sendDirect(b.agentId, p);
  }
  for (let i = 0; i < 100 && got.length < 300; i++) await sleep(50);
  assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
});

test('sending to an agent nobody carries is X0X_ERR_NO_ROUTE', async (t) => {
  const [a] = await makeAgents(t, 1);
  await assert.rejects(a.sendDirect('ab'.repeat(32), 'x', { timeoutMs: 2000 }), { code: 'X0X_ERR_NO_ROUTE' });
});

test('pub/sub both ways with multiplexed callbacks and unsubscribe', async (t) => {
  const [a, b] = await joinedPair(t);
  const atA = [];
  const atB1 = [];
  const atB2 = [];
  a.subscribe('room', (m) => atA.push(m));
  const s1 = b.subscribe('room', (m) => atB1.push(m));
  const s2 = b.subscribe('room', (m) => atB2.push(m));
  assert.deepEqual(b.subscriptions(), ['room']);
  assert.equal(s1.topic, 'room');

  const fromA = (list, text) => list.some((m) => m.from === a.agentId && m.payload.toString() === text);
  await publishUntil(a, 'room', 'a->b', () => fromA(atB1, 'a->b'));
  assert.ok(fromA(atB2, 'a->b'), 'both callbacks of the topic get the message');
  const m = atB1.find((x) => x.payload.toString() === 'a->b');
  assert.equal(m.topic, 'room');
  // The library does not say which neighbour delivered a topic message
  // (the record's peer is all zero): always null.
  assert.equal(m.peer, null);
  assert.ok(m.seq > 0, 'sequence number');
  assert.ok(m.hops >= 1, `a remote message crossed at least one link (hops ${m.hops})`);
  assert.ok(Math.abs(m.timestamp - Date.now()) < 60000, 'timestamp is Unix ms');

  const fromB = (list, text) => list.some((x) => x.from === b.agentId && x.payload.toString() === text);
  const id = await b.publish('room', Buffer.from('b->a'));
  assert.match(id, HEX64);
  await publishUntil(b, 'room', 'b->a', () => fromB(atA, 'b->a'));

  // The agent-wide 'message' event sees topic messages too.
  const any = nextEvent(b, 'message', (x) => x.payload.toString() === 'again');
  // Unsubscribing one callback keeps the other.
  assert.equal(s1(), true);
  assert.equal(s1.unsubscribe(), false, 'second unsubscribe is a no-op');
  const before1 = atB1.length;
  await publishUntil(a, 'room', 'again', () => fromA(atB2, 'again'));
  await any;
  assert.equal(atB1.length, before1, 'an unsubscribed callback gets nothing');

  // Unsubscribing the last callback ends the library subscription.
  s2.unsubscribe();
  assert.deepEqual(b.subscriptions(), []);
  const before2 = atB2.length;
  for (let i = 0; i < 5; i++) {
    await a.publish('room', 'after');
    await sleep(100);
  }
  assert.equal(atB2.length, before2);
});

test('a throwing subscriber is reported as an error event and delivery goes on', async (t) => {
  const [a] = await makeAgents(t, 1);
  const boom = new Error('subscriber failed');
  const seen = [];
  a.subscribe('local', () => { throw boom; });
  a.subscribe('local', (m) => seen.push(m.payload.toString()));
  const err = nextEvent(a, 'error');
  await a.publish('local', 'one');
  assert.equal(await err, boom);
  for (let i = 0; i < 50 && seen.length < 1; i++) await sleep(20);
  assert.deepEqual(seen, ['one']);
});

test('identity export and import keep the agent ID', async (t) => {
  const [a] = await makeAgents(t, 1);
  const bundle = await a.exportIdentity('correct horse');
  assert.ok(Buffer.isBuffer(bundle) && bundle.length > 0);
  await assert.rejects(x0x.Identity.import(bundle, 'wrong'), { code: 'X0X_ERR_WRONG_PASSPHRASE' });
  const damaged = Buffer.from(bundle);
  damaged[damaged.length >> 1] ^= 0xff;
  await assert.rejects(x0x.Identity.import(damaged, 'correct horse'), (e) => ['X0X_ERR_CORRUPT', 'X0X_ERR_WRONG_PASSPHRASE'].includes(e.code));
  const id = await x0x.Identity.import(bundle, 'correct horse');
  t.after(() => id.destroy());
  assert.equal(id.agentId, a.agentId);
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const moved = await x0x.Agent.create({ dataDir: dir, identity: id });
  assert.equal(moved.agentId, a.agentId);
  assert.notEqual(moved.machineId, a.machineId, 'a new machine key');
  await moved.close();
  await id.save(dir);
  const again = await x0x.Agent.create({ dataDir: dir });
  assert.equal(again.agentId, a.agentId, 'saved key is the data directory agent key');
  await again.close();
  id.destroy();
  id.destroy(); // idempotent
  await assert.rejects(x0x.Agent.create({ dataDir: dir, identity: id }), { code: 'X0X_ERR_INVALID_HANDLE' });
});

test('injected events arrive complete, in order of the batch, with payload bytes', async (t) => {
  const [a] = await makeAgents(t, 1, () => ({ eventQueueCapacity: 4096 }));
  let n = 0;
  let ok = true;
  a.on('direct', (m) => {
    n++;
    if (m.from !== a.agentId || m.to !== a.agentId || m.payload.length !== 100 || m.payload[0] !== 0xab || m.payload[99] !== 0xab) ok = false;
  });
  await a.debugInjectEvents(20000, 100);
  for (let i = 0; i < 200 && n < 20000; i++) await sleep(20);
  assert.equal(n, 20000);
  assert.ok(ok, 'every event has the right sender, receiver and payload');
  assert.equal(a.eventsDropped(), 0, 'injected events are never dropped');
});

test('a full event queue drops and counts events instead of blocking', async (t) => {
  const [a] = await makeAgents(t, 1, () => ({ eventQueueCapacity: 4 }));
  // Block the JS thread so that nothing drains while messages arrive.
  const sends = [];
  for (let i = 0; i < 50; i++) sends.push(a.sendDirect(a.agentId, 'x'));
  await Promise.all(sends);
  const end = Date.now() + 300;
  while (Date.now() < end) { /* busy: no draining */ }
  await sleep(200);
  assert.ok(a.eventsDropped() > 0, `dropped ${a.eventsDropped()}`);
});

// ---- Topic handles ------------------------------------------------------

/** Publishes data on topic (a Topic) every 200 ms until check() is true. */
async function topicPublishUntil(topic, data, check, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    await topic.publish(data);
    await sleep(200);
    if (check()) return;
  }
  throw new Error(`message on ${topic.name} not delivered within ${ms} ms`);
}

/** Reads sub into list in the background until it ends (LaggedErrors are counted in list.lagged). */
function collect(sub) {
  const list = [];
  list.lagged = [];
  list.done = (async () => {
    for (;;) {
      try {
        const m = await sub.next();
        if (m === null) return;
        list.push(m);
      } catch (e) {
        if (!(e instanceof x0x.LaggedError)) throw e;
        list.lagged.push(e.missed);
      }
    }
  })();
  return list;
}

test('topic handles: join, publish and subscribe both ways, several handles and subscriptions', async (t) => {
  const [a, b] = await joinedPair(t);
  const ta = await a.join('handles');
  const ta2 = await a.join('handles'); // an independent second handle
  const tb = await b.join('handles');
  assert.ok(ta instanceof x0x.Topic);
  assert.equal(ta.name, 'handles');
  assert.equal(ta.agent, a);
  assert.equal(ta.publishOnly, false);
  const sa = ta.subscribe();
  const sa2 = ta2.subscribe({ capacity: 100 });
  const sb = tb.subscribe();
  assert.ok(sa instanceof x0x.Subscription && sa.topic === 'handles' && sa2.capacity === 100);
  const atA = collect(sa);
  const atA2 = collect(sa2);
  const atB = collect(sb);
  const has = (list, from, text) => list.some((m) => m.from === from && m.payload.toString() === text);
  await topicPublishUntil(tb, 'b->a', () => has(atA, b.agentId, 'b->a') && has(atA2, b.agentId, 'b->a'));
  const m = atA.find((x) => x.payload.toString() === 'b->a');
  assert.equal(m.topic, 'handles');
  assert.ok(Buffer.isBuffer(m.payload));
  assert.ok(m.seq > 0 && m.hops >= 1 && Math.abs(m.timestamp - Date.now()) < 60000);
  const id = await ta.publish(Buffer.from('a->b'));
  assert.match(id, HEX64);
  await topicPublishUntil(ta, 'a->b', () => has(atB, a.agentId, 'a->b'));
  assert.ok(has(atA, a.agentId, 'a->b'), "a's own subscription gets its message");

  // A publish-only handle reaches the subscribers.
  const po = await b.join('handles', { publishOnly: true });
  assert.equal(po.publishOnly, true);
  assert.throws(() => po.subscribe(), { code: 'X0X_ERR_INVALID_ARG' });
  await topicPublishUntil(po, 'publish-only', () => has(atA, b.agentId, 'publish-only'));

  // for await reads a subscription; leaving the loop does not close it.
  await tb.publish('loop');
  const s3 = ta.subscribe();
  await topicPublishUntil(tb, 'loop-2', () => s3.size > 0);
  for await (const msg of s3) {
    assert.equal(msg.topic, 'handles');
    break;
  }
  assert.equal(s3.closed, false);
  s3.close();
  s3.close(); // idempotent

  // Leave ends the handle's subscriptions; the other handle goes on.
  await ta.leave();
  await ta.leave(); // idempotent
  await atA.done;
  assert.equal(sa.closed, true);
  assert.equal(await sa.next(), null);
  await topicPublishUntil(tb, 'after leave', () => has(atA2, b.agentId, 'after leave'));
  assert.ok(!has(atA, b.agentId, 'after leave'));
  sa2.close();
  sb.close();
  await Promise.all([atA2.done, atB.done]);
});

test('topic lag marker: a slow reader is told once, where the gap is, how many it lost', async (t) => {
  const [a] = await makeAgents(t, 1);
  const topic = await a.join('lag');
  // The subscription's own queue of 5 overflows.
  const sub = topic.subscribe({ capacity: 5 });
  for (let i = 0; i < 30; i++) await topic.publish(`m${i}`);
  for (let i = 0; i < 100 && sub.size + sub.dropped < 30; i++) await sleep(20);
  await topic.publish('m30');
  for (let i = 0; i < 100 && sub.dropped < 26; i++) await sleep(20);
  const got = [];
  for (let i = 0; i < 5; i++) got.push((await sub.next()).payload.toString());
  assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);
  await assert.rejects(sub.next(), (e) => e instanceof x0x.LaggedError && e.missed === 26 && e.code === 'ERR_X0X_LAGGED');
  await topic.publish('m31');
  assert.equal((await sub.next()).payload.toString(), 'm31', 'the subscription goes on after the marker');
  sub.close();

  // The library's event queue of 4 overflows while the JS thread is busy:
  // the library's own lag marker reaches the reader, and the counts add up.
  const [c] = await makeAgents(t, 1, () => ({ eventQueueCapacity: 4 }));
  const ct = await c.join('lag');
  const cs = ct.subscribe();
  const pubs = [];
  for (let i = 0; i < 40; i++) pubs.push(ct.publish(`n${i}`)); // run on the thread pool
  const end = Date.now() + 1500;
  while (Date.now() < end) { /* busy: nothing drains the library's queue */ }
  await Promise.all(pubs);
  const list = collect(cs);
  // Publish 'last' only once the reader has drained the library's queue (its
  // lag marker arrived): published into a still-full queue it would be lost
  // too, counted as missed, and never read.
  for (let i = 0; i < 200 && list.lagged.length === 0; i++) await sleep(20);
  await ct.publish('last');
  for (let i = 0; i < 200 && !list.some((m) => m.payload.toString() === 'last'); i++) await sleep(20);
  const received = list.filter((m) => m.payload.toString() !== 'last').length;
  const missed = list.lagged.reduce((x, y) => x + y, 0);
  assert.ok(list.lagged.length >= 1, 'a lag marker');
  assert.equal(received + missed, 40, `received ${received} + missed ${missed}`);
  assert.ok(c.eventsDropped() >= missed - 0, 'library drops are counted');
  cs.close();
  await list.done;
});

test('topic events: neighbour up and down, and the neighbour list', async (t) => {
  const [a, b] = await joinedPair(t);
  const ta = await a.join('nb');
  const events = ta.events();
  assert.ok(events instanceof x0x.TopicEvents);
  const tb = await b.join('nb');
  const up = await events.next();
  assert.deepEqual(up, { kind: 'neighbour-up', topic: 'nb', peer: b.machineId });
  assert.deepEqual(ta.neighbours(), [b.machineId]);
  await tb.leave();
  const down = await events.next();
  assert.deepEqual(down, { kind: 'neighbour-down', topic: 'nb', peer: b.machineId });
  events.close();
  assert.equal(await events.next(), null);
});

test('topic validators: refused messages are neither delivered nor published; async verdicts; time limit', async (t) => {
  const [a, b] = await joinedPair(t);
  const seen = [];
  const ta = await a.join('valid', {
    validator: (m) => {
      seen.push(m);
      return !m.payload.toString().startsWith('bad');
    },
  });
  const got = collect(ta.subscribe());
  const tb = await b.join('valid');
  await topicPublishUntil(tb, 'good', () => {
    void tb.publish('bad one');
    return got.some((m) => m.payload.toString() === 'good');
  });
  await sleep(300);
  assert.ok(!got.some((m) => m.payload.toString().startsWith('bad')), 'a refused message was delivered');
  assert.ok(seen.some((m) => m.payload.toString() === 'bad one' && m.from === b.agentId && m.topic === 'valid'));
  await assert.rejects(ta.publish('bad local'), (e) => e instanceof x0x.X0xError && e.code === 'X0X_ERR_REJECTED');
  await ta.publish('good local');

  // Asynchronous verdicts (a Promise), a throwing validator, no verdict.
  const [c] = await makeAgents(t, 1);
  const asyncTopic = await c.join('async', { validator: async (m) => { await sleep(10); return m.payload.toString() === 'yes'; } });
  await asyncTopic.publish('yes');
  await assert.rejects(asyncTopic.publish('no'), { code: 'X0X_ERR_REJECTED' });
  const throwing = await c.join('throws', { validator: () => { throw new Error('validator bug'); } });
  await assert.rejects(throwing.publish('x'), { code: 'X0X_ERR_REJECTED' });
  const silent = await c.join('silent', { validator: () => new Promise(() => {}), validationTimeoutMs: 100 });
  const t0 = Date.now();
  await assert.rejects(silent.publish('x'), { code: 'X0X_ERR_REJECTED' });
  assert.ok(Date.now() - t0 >= 90, 'refused after the time limit');
  // Once left, the validator no longer applies.
  await asyncTopic.leave();
  const plain = await c.join('async');
  await plain.publish('no');
});
