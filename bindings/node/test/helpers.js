'use strict';
// Shared helpers of the x0x Node tests. Every agent binds 127.0.0.1:0 and
// lives in its own temporary data directory.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// No test may fall back on the user's ~/.x0x: an agent created without
// dataDir uses $X0X_HOME, which the library reads when the addon loads, so
// it is set (to a directory removed at exit) before the addon is required.
if (!process.env.X0X_HOME) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'x0x-node-test-home-'));
  process.env.X0X_HOME = home;
  process.on('exit', () => fs.rmSync(home, { recursive: true, force: true }));
}
const x0x = require('../lib/index.js');

/** Makes a temporary directory removed by the returned cleanup function. */
function tempDir(prefix = 'x0x-node-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Creates agents on loopback for one test; t.after closes them and removes
 * their directories. opts(i) may add options (e.g. bootstrap).
 */
async function makeAgents(t, n, opts = () => ({})) {
  const { dir, cleanup } = tempDir();
  const agents = [];
  t.after(async () => {
    await Promise.allSettled(agents.map((a) => a.close()));
    cleanup();
  });
  for (let i = 0; i < n; i++) {
    agents.push(await x0x.Agent.create({ dataDir: path.join(dir, `agent${i}`), bindAddr: '127.0.0.1:0', ...opts(i, agents) }));
  }
  return agents;
}

/** Two agents where B bootstrapped from A and joined (the overlay is up both ways). */
async function joinedPair(t) {
  const [a] = await makeAgents(t, 1);
  const [b] = await makeAgents(t, 1, () => ({ bootstrap: [a.connectAddr] }));
  await b.joinNetwork({ timeoutMs: 10000 });
  await a.waitForAgent(b.agentId, { timeoutMs: 10000 });
  await b.waitForAgent(a.agentId, { timeoutMs: 10000 });
  return [a, b];
}

/** Resolves with the first event `name` on emitter matching pred, or rejects after ms. */
function nextEvent(emitter, name, pred = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, on);
      reject(new Error(`no '${name}' event within ${ms} ms`));
    }, ms);
    function on(ev) {
      if (!pred(ev)) return;
      clearTimeout(timer);
      emitter.off(name, on);
      resolve(ev);
    }
    emitter.on(name, on);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes from `from` every 200 ms until check() is true (topic trees form
 * asynchronously after subscribing), at most ms.
 */
async function publishUntil(from, topic, data, check, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    await from.publish(topic, data);
    await sleep(200);
    if (check()) return;
  }
  throw new Error(`message on ${topic} not delivered within ${ms} ms`);
}

module.exports = { x0x, tempDir, makeAgents, joinedPair, nextEvent, sleep, publishUntil };
