'use strict';
// Smoke test of a built Node addon package (scripts/build-matrix.sh): two
// agents on 127.0.0.1 exchange one direct message each way through the
// binding in bindings/node, with the addon named by $X0X_NODE_ADDON.
// Usage: X0X_NODE_ADDON=.../x0x.node node smoke.js <bindings/node> <empty dir>
// Prints "node smoke: ok ..." and exits 0, or throws (exit 1).
const path = require('node:path');

async function main() {
  const [binding, dir] = process.argv.slice(2);
  if (!binding || !dir || !process.env.X0X_NODE_ADDON) {
    throw new Error('usage: X0X_NODE_ADDON=<x0x.node> node smoke.js <bindings/node> <empty dir>');
  }
  const { Agent } = require(path.resolve(binding));
  const t0 = Date.now();
  const a = await Agent.create({ dataDir: path.join(dir, 'a'), bindAddr: '127.0.0.1:0' });
  const b = await Agent.create({ dataDir: path.join(dir, 'b'), bindAddr: '127.0.0.1:0' });
  try {
    await b.connect(a.connectAddr, { timeoutMs: 30000 });
    await b.waitForAgent(a.agentId, { timeoutMs: 30000 });
    await a.waitForAgent(b.agentId, { timeoutMs: 30000 });
    for (const [from, to, text] of [[b, a, 'node smoke: hello a'], [a, b, 'node smoke: hello b']]) {
      const got = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no direct message "${text}" within 30 s`)), 30000);
        const on = (m) => {
          if (Buffer.from(m.payload).toString() === text) {
            clearTimeout(timer);
            to.off('direct', on);
            resolve();
          }
        };
        to.on('direct', on);
      });
      await from.sendDirect(to.agentId, Buffer.from(text), { timeoutMs: 30000 });
      await got;
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  console.log(`node smoke: ok (direct messages both ways, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

main().catch((err) => {
  console.error('node smoke: FAIL', err);
  process.exit(1);
});
