'use strict';
// Two x0x agents on this machine (127.0.0.1 only): B bootstraps from A,
// they join a topic and exchange messages on it both ways (through topic
// handles and subscriptions), send a direct message, work one task list
// together, and exit. Run: node examples/loopback.js (from a project where
// `x0x` is installed).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Agent, TaskList, LaggedError, capabilities } = require('x0x');

const short = (id) => id.slice(0, 8);

// Publishes on a topic handle until delivered() (topic trees form
// asynchronously: the first messages may reach no subscriber yet).
async function publishUntil(topic, text, delivered) {
  for (let i = 0; i < 75 && !delivered(); i++) {
    await topic.publish(text);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!delivered()) throw new Error(`"${text}" was not delivered`);
}

// Reads a subscription until it ends, keeping what others said; a reader
// that fell behind is told how many messages it missed and reads on.
async function listen(sub, self, heard) {
  for (;;) {
    try {
      for await (const m of sub) if (m.from !== self) heard.push(m.payload.toString());
      return;
    } catch (e) {
      if (!(e instanceof LaggedError)) throw e;
      console.log(`missed ${e.missed} messages`);
    }
  }
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
    const aliceChat = await alice.join('example/chat');
    const bobChat = await bob.join('example/chat', { validator: (m) => m.payload.length <= 1024 });
    const readers = [
      listen(aliceChat.subscribe(), alice.agentId, heard.alice),
      listen(bobChat.subscribe(), bob.agentId, heard.bob),
    ];
    await publishUntil(aliceChat, 'hello bob', () => heard.bob.includes('hello bob'));
    console.log(`bob heard on example/chat: "${heard.bob[0]}"`);
    await publishUntil(bobChat, 'hello alice', () => heard.alice.includes('hello alice'));
    console.log(`alice heard on example/chat: "${heard.alice[0]}" (topic neighbours: ${aliceChat.neighbours().map(short).join(', ')})`);
    await Promise.all([aliceChat.leave(), bobChat.leave()]);
    await Promise.all(readers); // leaving ended the subscriptions

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
