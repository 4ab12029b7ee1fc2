'use strict';
// Benchmarks of the Node binding. Prints one JSON object per line:
//   {"name":"node_events_per_s_16B","value":N,"unit":"events/s"}    (and 1024B)
//   {"name":"node_publish_call_us","value":N,"unit":"us"}
// Events: x0x_debug_inject_events pushes synthetic direct-message events
// through the real event path (library queue -> events fd -> native event
// thread -> JS thread batch drain -> 'direct' listeners) while this thread
// consumes them; the figure is events received / wall time.
// Publish: mean time of one awaited agent.publish() (64-byte payload, one
// agent with no peers), over >= 2,000 sequential calls after a warm-up.
// Environment: X0X_BENCH_EVENTS (default 200000 per size),
// X0X_BENCH_PUBLISH (default 5000). Only 127.0.0.1 is used.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Agent } = require(process.env.X0X_NODE_PACKAGE || path.join(__dirname, '..', 'lib', 'index.js'));

const N = Number(process.env.X0X_BENCH_EVENTS || 200000);
const P = Math.max(2000, Number(process.env.X0X_BENCH_PUBLISH || 5000));

function line(name, value, unit) {
  process.stdout.write(JSON.stringify({ name, value: Math.round(value * 100) / 100, unit }) + '\n');
}

async function eventsPerSecond(agent, n, size) {
  let got = 0;
  let bytes = 0;
  let done;
  const finished = new Promise((r) => { done = r; });
  const onDirect = (ev) => {
    got++;
    bytes += ev.payload.length;
    if (got === n) done();
  };
  agent.on('direct', onDirect);
  const t0 = process.hrtime.bigint();
  await Promise.all([agent.debugInjectEvents(n, size), finished]);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  agent.off('direct', onDirect);
  if (bytes !== n * size) throw new Error(`payload bytes ${bytes}, want ${n * size}`);
  return n / s;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x0x-node-bench-'));
  const agent = await Agent.create({ dataDir: dir, bindAddr: '127.0.0.1:0', eventQueueCapacity: 65536 });
  try {
    await eventsPerSecond(agent, 20000, 16); // warm-up
    for (const size of [16, 1024]) {
      line(`node_events_per_s_${size}B`, await eventsPerSecond(agent, N, size), 'events/s');
    }
    const payload = Buffer.alloc(64, 0x5a);
    for (let i = 0; i < 200; i++) await agent.publish('bench/publish', payload);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < P; i++) await agent.publish('bench/publish', payload);
    line('node_publish_call_us', Number(process.hrtime.bigint() - t0) / 1e3 / P, 'us');
    if (agent.eventsDropped() !== 0) throw new Error(`${agent.eventsDropped()} events dropped`);
  } finally {
    await agent.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
