// Compiled with `tsc --noEmit` by test/types.test.js: uses the declarations
// the way an application would, including lines that must NOT compile
// (marked @ts-expect-error: tsc fails if they do compile).
import { Agent, TaskList, Identity, X0xError, X0xTaskError, X0xGroupError, LaggedError, Topic, Subscription, Status, EventKind, abiVersion, capabilities, Group, GroupMessages } from 'x0x';
import type { TopicMessage, TopicEvent, Task, TaskListSnapshot, Unsubscribe, StatusCode, GroupInvitation, GroupMessage, GroupEvent, GroupInfo } from 'x0x';

async function main(): Promise<void> {
  const agent: Agent = await Agent.create({ dataDir: '/tmp/x', bindAddr: '127.0.0.1:0', bootstrap: ['a@127.0.0.1:1'], eventQueueCapacity: 100 });
  const id: string = agent.agentId;
  const peer: string = await agent.connect(`${id}@127.0.0.1:1`, { timeoutMs: 1000 });
  await agent.joinNetwork();
  const sub: Unsubscribe = agent.subscribe('topic', (m: TopicMessage) => {
    const p: Buffer = m.payload;
    const n: number = m.seq + m.timestamp;
    const from: string = m.from;
    const none: null = m.peer; // the library never says which neighbour delivered it
    void p; void n; void from; void none;
  });
  sub();
  sub.unsubscribe();
  const topic: Topic = await agent.join('news', { validator: (m) => m.payload.length < 100, validationTimeoutMs: 500 });
  const po: Topic = await agent.join('news', { publishOnly: true, validator: async (m) => m.from !== id });
  const tsub: Subscription = topic.subscribe({ capacity: 100 });
  const id2: string = await topic.publish('hello');
  await po.publish(new Uint8Array(2));
  try {
    for await (const m of tsub) {
      const body: Buffer = m.payload;
      void body;
    }
  } catch (e) {
    if (e instanceof LaggedError) { const missed: number = e.missed; void missed; }
  }
  const next: TopicMessage | null = await tsub.next();
  const evs = topic.events();
  const ev: TopicEvent | null = await evs.next();
  if (ev && ev.kind === 'neighbour-up') { const p: string = ev.peer; void p; }
  const nb: string[] = topic.neighbours();
  tsub.close();
  evs.close();
  await topic.leave();
  void next; void nb; void id2; void capabilities.topics;
  const msgId: string = await agent.publish('topic', Buffer.from('x'));
  await agent.publish('topic', 'text');
  await agent.publish('topic', new Uint8Array(3));
  await agent.sendDirect(peer, 'hello');
  agent.on('direct', (m) => { const from: string = m.from; void from; });
  agent.on('connected', (e) => { const agents: string[] = e.agents; void agents; });
  agent.on('taskUpdated', (e) => { if (e.op === 'claimed' && e.local) void e.taskId; });
  agent.on('error', (e: Error) => { if (e instanceof X0xError) { const c: StatusCode = e.code; void c; } });
  const list = await TaskList.create(agent, 'list');
  const other = await TaskList.join(agent, list.id);
  const t: string = await list.addTask('title', 'desc');
  await list.claimTask(t);
  await list.completeTask(t);
  await list.reopenTask(t);
  await list.updateTask(t, { title: 'x', priority: 3, assignee: null });
  await list.moveTask(t, null);
  await list.removeTask(t);
  const snap: TaskListSnapshot = await list.listTasks();
  const first: Task | undefined = snap.tasks[0];
  if (first) { const s: 'empty' | 'claimed' | 'done' = first.state; void s; }
  await other.leave();
  try {
    await list.claimTask(t);
  } catch (e) {
    if (e instanceof X0xTaskError && e.code === 'X0X_ERR_TASK_DONE') void e.status;
  }
  const bundle: Buffer = await agent.exportIdentity('pw');
  const ident = await Identity.import(bundle, 'pw');
  await Agent.create({ identity: ident });
  ident.destroy();
  // Private groups.
  const kp: Buffer = await agent.publishKeyPackage();
  const group: Group = await agent.createGroup();
  const gid: string = group.id;
  const info: GroupInfo = group.info();
  const epoch: number = info.epoch + info.members.length;
  await group.invite(id, { timeoutMs: 5000 });
  await group.inviteKeyPackage(kp);
  await group.publish('hello group');
  const gm: GroupMessages = group.messages({ capacity: 10 });
  const m1: GroupMessage | null = await gm.next();
  if (m1) { const d: Buffer = m1.data; const from: string = m1.from; void d; void from; }
  for await (const e of group.events()) {
    const ge: GroupEvent = e;
    if (ge.kind === 'removed' || ge.kind === 'member-joined') { const who: string | null = ge.agent; void who; }
  }
  const invs: GroupInvitation[] = agent.invitations();
  agent.on('groupInvitation', (inv) => { const members: string[] = inv.members; void members; });
  if (invs[0]) {
    const joined: Group = await agent.acceptInvitation(invs[0].group);
    await agent.declineInvitation(invs[0].group);
    void joined;
  }
  const glist: TaskList = await group.createTaskList('secret');
  const glist2: TaskList = await group.joinTaskList(glist.id);
  await group.remove(id);
  await group.update();
  await group.leave();
  await group.close();
  const open: Group[] = agent.groups();
  try {
    await group.invite(id);
  } catch (e) {
    if (e instanceof X0xGroupError && e.code === 'X0X_ERR_REFUSED') void e.status;
  }
  void gid; void epoch; void glist2; void open; void capabilities.groups; void EventKind.GROUP_MESSAGE;
  const n: number = Status.X0X_ERR_TIMEOUT + EventKind.TOPIC_MESSAGE + abiVersion() + Status.X0X_ERR_NOT_MEMBER;
  const ok: boolean = capabilities.tasklist;
  void n; void ok; void msgId;
  await agent.close();

  // @ts-expect-error network is 'local' | 'testnet'
  await Agent.create({ network: 'mainnet' });
  // @ts-expect-error unknown option
  await Agent.create({ datadir: '/tmp' });
  // @ts-expect-error payload must be bytes or a string
  await agent.publish('t', 42);
  // @ts-expect-error the constructor is private
  new Agent();
  // @ts-expect-error unknown event
  agent.on('mesage', () => {});
  // @ts-expect-error a validator returns a boolean
  await agent.join('t', { validator: () => 'yes' });
  // @ts-expect-error unknown join option
  await agent.join('t', { publishonly: true });
  // @ts-expect-error streams are opened by a Topic
  new Subscription();
  // @ts-expect-error a key package is bytes, not a string
  await group.inviteKeyPackage('kp');
  // @ts-expect-error the constructor is private
  new Group();
  // @ts-expect-error invite takes known options only
  await group.invite(id, { timeout: 5 });
  // @ts-expect-error updateTask takes known fields only
  await list.updateTask(t, { colour: 'red' });
  // @ts-expect-error a topic message's peer is always null
  agent.subscribe('t', (m: TopicMessage) => { const p: string = m.peer; void p; });
  // @ts-expect-error Python's name; Node's is `from`
  agent.on('direct', (m) => { const s: string = m.from_agent; void s; });
}
void main;
