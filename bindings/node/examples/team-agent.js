'use strict';
// The Node agent of the cross-language team demo (`make demo`; the protocol
// is described in cmd/x0x-demo/team.go). Phase 1: a topic and a shared task
// list. Phase 2: a private (MLS) group that the Go agent creates and
// invites Node and Python into, with a task list only its members read.
// Usage:
//   node team-agent.js <shared dir> <bootstrap peerid@host:port>
const fs = require('node:fs');
const path = require('node:path');
const { Agent, TaskList, LaggedError } = require(process.env.X0X_NODE_PACKAGE || path.join(__dirname, '..', 'lib', 'index.js'));

const LANG = 'node';
const RIVAL = 'python';
const TOPIC = 'x0x-demo/chat';
const TASKS = ['draft the launch note', 'review the API (node)', 'write the tutorial (python)', 'tag the release (go)'];
const CONTESTED = TASKS[0];
const MINE = TASKS[1];
const LANGS = ['go', 'node', 'python'];
const PRIVATE_TASKS = 3;
const MY_SECRET = `secret task (${LANG})`;
const GROUP_HELLO = 'hello group from ';
// Phase 1 must end within PHASE1_MS of the start, phase 2 within TOTAL_MS.
const PHASE1_MS = 90_000;
const TOTAL_MS = 150_000;

const say = (msg) => console.log(`[${LANG}]  ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const short = (hex) => (hex || '').slice(0, 8);

async function until(what, deadline, f) {
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const readFile = (p) => { try { return fs.readFileSync(p, 'utf8'); } catch { return null; } };

function writeAtomic(p, data) {
  fs.writeFileSync(p + '.tmp', data);
  fs.renameSync(p + '.tmp', p);
}

const allExist = (dir, prefix) => LANGS.every((l) => readFile(path.join(dir, `${prefix}${l}`)) !== null);

const MARKS = { empty: ' ', claimed: '~', done: 'x' };
const describe = (t) => `[${MARKS[t.state] || '?'}] ${t.title.padEnd(30)}${t.state !== 'empty' ? ` by ${short(t.claimant)}` : ''}`;

/**
 * Phase 2, the private group: become invitable, accept the Go agent's
 * invitation, work the group's task list and say hello in the group until
 * every agent is done.
 */
async function privateGroup(agent, dir, deadline) {
  await agent.publishKeyPackage();
  writeAtomic(path.join(dir, `member-${LANG}`), `${agent.agentId} ${agent.connectAddr}`);
  say('phase 2: published a key package (invitable into private groups)');
  const goAgent = (await until('member-go', deadline, () => readFile(path.join(dir, 'member-go')))).trim().split(/\s+/)[0];
  const inv = await until('the invitation from the Go agent', deadline, () => agent.invitations().find((i) => i.from === goAgent));
  const group = await agent.acceptInvitation(inv.group);
  say(`accepted the invitation to group ${short(group.id)} from ${short(goAgent)}: ${group.info().members.length} members`);

  const heard = new Set();
  const msgs = group.messages();
  const reading = (async () => {
    for (;;) {
      try {
        for await (const m of msgs) {
          const text = m.data.toString('utf8');
          const lang = text.startsWith(GROUP_HELLO) ? text.slice(GROUP_HELLO.length) : null;
          if (lang && lang !== LANG && !heard.has(lang)) {
            heard.add(lang);
            say(`heard "${text}" in the group from agent ${short(m.from)} (epoch ${m.epoch})`);
          }
        }
        return; // the group was closed
      } catch (e) {
        if (!(e instanceof LaggedError)) throw e; // a slow reader: read on
      }
    }
  })();
  const hello = setInterval(() => {
    group.publish(`${GROUP_HELLO}${LANG}`).catch((e) => say(`group publish failed: ${e.message}`));
  }, 500);
  try {
    const listId = (await until('group-list-id', deadline, () => readFile(path.join(dir, 'group-list-id')))).trim();
    const list = await group.joinTaskList(listId);
    let snap = await until('the private tasks', deadline, async () => {
      const s = await list.listTasks();
      return s.tasks.length >= PRIVATE_TASKS ? s : null;
    });
    say(`joined the group's task list "${snap.name}" (${listId.slice(0, 16)}): ${snap.tasks.length} tasks`);
    const mine = snap.tasks.find((x) => x.title === MY_SECRET);
    if (!mine) throw new Error(`the private list has no task "${MY_SECRET}"`);
    await list.claimTask(mine.id);
    await list.completeTask(mine.id);
    say(`claimed and completed "${MY_SECRET}"`);
    snap = await until('every private task done and hellos from go and python', deadline, async () => {
      const s = await list.listTasks();
      return s.tasks.length === PRIVATE_TASKS && s.tasks.every((x) => x.state === 'done') && heard.size === 2 ? s : null;
    });
    writeAtomic(path.join(dir, `group-done-${LANG}`), 'done');
    const info = group.info();
    say(`the private list is done (group epoch ${info.epoch}, members ${info.members.length}); final list:`);
    for (const t of snap.tasks) console.log(`          ${describe(t)}`);
    // Keep saying hello until every agent has finished phase 2.
    await until('the others to finish phase 2', deadline, () => allExist(dir, 'group-done-'));
    await list.leave();
  } finally {
    clearInterval(hello);
    await group.close(); // ends msgs
    await reading;
  }
}

async function main() {
  const [dir, bootstrap] = process.argv.slice(2);
  if (!dir || !bootstrap) throw new Error('usage: team-agent.js <dir> <bootstrap>');
  const start = Date.now();
  const deadline = start + PHASE1_MS;
  // A last resort should some call hang: fail rather than wait forever.
  setTimeout(() => {
    console.error(`[${LANG}]  FAILED: not done within ${(TOTAL_MS + 10_000) / 1000} s`);
    process.exit(1);
  }, TOTAL_MS + 10_000).unref();
  const agent = await Agent.create({ dataDir: path.join(dir, `${LANG}-agent`), bootstrap: [bootstrap] });
  try {
    await agent.joinNetwork();
    say(`agent ${short(agent.agentId)} joined through the bootstrap node`);
    const heard = new Set();
    const chat = await agent.join(TOPIC);
    const sub = chat.subscribe();
    const listening = (async () => {
      for (;;) {
        try {
          for await (const m of sub) {
            const text = m.payload.toString('utf8');
            const lang = text.startsWith('hello from ') ? text.slice(11) : null;
            if (lang && lang !== LANG && !heard.has(lang)) {
              heard.add(lang);
              say(`heard "${text}" on ${TOPIC} from agent ${short(m.from)}`);
            }
          }
          return; // the subscription ended
        } catch (e) {
          if (!(e instanceof LaggedError)) throw e; // a slow reader: read on
        }
      }
    })();
    const hello = setInterval(() => {
      chat.publish(`hello from ${LANG}`).catch((e) => say(`publish failed: ${e.message}`));
    }, 500);
    try {
      const listId = (await until('the list ID', deadline, () => readFile(path.join(dir, 'list-id')))).trim();
      const list = await TaskList.join(agent, listId);
      let snap = await until('every task', deadline, async () => {
        const s = await list.listTasks();
        return TASKS.every((t) => s.tasks.some((x) => x.title === t)) ? s : null;
      });
      say(`joined task list "${snap.name}" (${listId.slice(0, 16)}): ${snap.tasks.length} tasks`);
      const idOf = (title) => snap.tasks.find((x) => x.title === title).id;

      writeAtomic(path.join(dir, `ready-${LANG}`), 'ready');
      const at = Number((await until('claim-at', deadline, () => readFile(path.join(dir, 'claim-at')))).trim());
      await sleep(Math.max(0, at - Date.now()));
      try {
        await list.claimTask(idOf(CONTESTED));
        say(`claimed "${CONTESTED}" (${RIVAL} is claiming it at the same moment)`);
      } catch (e) {
        if (e.code !== 'X0X_ERR_TASK_CLAIMED_BY_OTHER') throw e;
        say(`claim of "${CONTESTED}" refused: ${RIVAL}'s claim arrived first (${e.code})`);
      }
      await list.claimTask(idOf(MINE));
      await list.completeTask(idOf(MINE));
      say(`claimed and completed "${MINE}"`);

      // Claims made at `at` have reached every replica well within 1.5 s;
      // after that the claim set is settled and its winner completes.
      const settled = at + 1500;
      let reported = false;
      snap = await until('every task done', deadline, async () => {
        const s = await list.listTasks();
        const c = s.tasks.find((x) => x.title === CONTESTED);
        if (!reported && Date.now() > settled && c.claimant) {
          reported = true;
          const who = c.claimant === agent.agentId ? 'me' : `agent ${short(c.claimant)}`;
          say(c.claims.length > 1
            ? `both claims on "${CONTESTED}" are kept; every replica picks the same winner: ${who}`
            : `"${CONTESTED}" is held by ${who}`);
          if (c.state === 'claimed' && c.claimant === agent.agentId) {
            await list.completeTask(c.id);
            say(`completed "${CONTESTED}"`);
          }
        }
        return s.tasks.every((x) => x.state === 'done') && heard.size === 2 ? s : null;
      });
      writeAtomic(path.join(dir, `done-${LANG}`), 'done');
      say(`every task is done (${snap.tasks.length}/${snap.tasks.length}) and both other agents were heard`);
      // Keep saying hello until every agent has finished, so that nobody
      // waits for a hello that is no longer sent.
      await until('the others to finish', deadline, () => allExist(dir, 'done-'));
      await list.leave();
    } finally {
      clearInterval(hello);
      await chat.leave();
      await listening;
    }
    await privateGroup(agent, dir, start + TOTAL_MS);
  } finally {
    await agent.close();
  }
}

main().catch((e) => {
  console.error(`[${LANG}]  FAILED: ${e.stack || e}`);
  process.exit(1);
});
