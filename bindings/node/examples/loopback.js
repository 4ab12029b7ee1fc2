'use strict';
// Two x0x agents on this machine (127.0.0.1 only): B bootstraps from A,
// they exchange messages on a topic both ways and a direct message, work
// one task list together, and exit. Run: node examples/loopback.js
// (from a project where `x0x` is installed).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Agent, TaskList, capabilities } = require('x0x');

const short = (id) => id.slice(0, 8);

async function publishUntil(from, topic, text, delivered) {
  for (let i = 0; i < 75 && !delivered(); i++) {
    await from.publish(topic, text);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!delivered()) throw new Error(`"${text}" was not delivered`);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x0x-example-'));
  const alice = await Agent.create({ dataDir: path.join(dir, 'alice'), bindAddr: '127.0.0.1:0' });
  const bob = await Agent.create({ dataDir: path.join(dir, 'bob'), bindAddr: '127.0.0.1:0', bootstrap: [alice.connectAddr] });
  try {
    console.log(`alice ${short(alice.agentId)} listens on ${alice.addr}`);
    console.log(`bob   ${short(bob.agentId)} listens on ${bob.addr}`);
    await bob.joinNetwork({ timeoutMs: 10000 });
    await alice.waitForAgent(bob.agentId, { timeoutMs: 10000 });
    console.log('bob joined the network through alice');

    const heard = { alice: [], bob: [] };
    alice.subscribe('example/chat', (m) => { if (m.from !== alice.agentId) heard.alice.push(m.payload.toString()); });
    bob.subscribe('example/chat', (m) => { if (m.from !== bob.agentId) heard.bob.push(m.payload.toString()); });
    await publishUntil(alice, 'example/chat', 'hello bob', () => heard.bob.includes('hello bob'));
    console.log(`bob heard on example/chat: "${heard.bob[0]}"`);
    await publishUntil(bob, 'example/chat', 'hello alice', () => heard.alice.includes('hello alice'));
    console.log(`alice heard on example/chat: "${heard.alice[0]}"`);

    const direct = new Promise((resolve) => bob.once('direct', resolve));
    await alice.sendDirect(bob.agentId, 'a direct hello');
    console.log(`bob got a direct message: "${(await direct).payload}"`);

    if (capabilities.tasklist) {
      const list = await TaskList.create(alice, 'example');
      const task = await list.addTask('write the report');
      await list.addWriter(bob.agentId); // only the creator writes until it grants others
      const bobs = await TaskList.join(bob, list.id);
      for (let i = 0; i < 100 && !(await bobs.listTasks()).writers.includes(bob.agentId); i++) await new Promise((r) => setTimeout(r, 100));
      await bobs.claimTask(task);
      await bobs.completeTask(task);
      for (let i = 0; i < 100 && (await list.listTasks()).tasks[0].state !== 'done'; i++) await new Promise((r) => setTimeout(r, 100));
      const t = (await list.listTasks()).tasks[0];
      console.log(`task "${t.title}" is ${t.state} by ${t.claimant === bob.agentId ? 'bob' : t.claimant}`);
    }
    console.log('example finished');
  } finally {
    await Promise.allSettled([alice.close(), bob.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
