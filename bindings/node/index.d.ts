// Type declarations of the x0x Node binding (lib/index.js).
/// <reference types="node" />
import { EventEmitter } from 'node:events';

/**
 * Bytes accepted as a payload or passphrase; strings are encoded as UTF-8
 * (as the Python binding does with str). Received payloads are always Buffers.
 */
export type Bytes = Buffer | Uint8Array | ArrayBufferView | ArrayBuffer | string;

/** Status names of include/x0x.h, plus X0X_ERR_UNSUPPORTED (function missing from the linked library). */
export type StatusCode =
  | 'X0X_OK'
  | 'X0X_ERR_INVALID_ARG'
  | 'X0X_ERR_INVALID_HANDLE'
  | 'X0X_ERR_CLOSED'
  | 'X0X_ERR_IO'
  | 'X0X_ERR_CRYPTO'
  | 'X0X_ERR_WRONG_PASSPHRASE'
  | 'X0X_ERR_NOT_FOUND'
  | 'X0X_ERR_TIMEOUT'
  | 'X0X_ERR_TOO_LARGE'
  | 'X0X_ERR_PANIC'
  | 'X0X_ERR_NO_ROUTE'
  | 'X0X_ERR_CORRUPT'
  | 'X0X_ERR_AUTH'
  | 'X0X_ERR_NO_PEERS'
  | 'X0X_ERR_TASK_DONE'
  | 'X0X_ERR_TASK_NOT_CLAIMED'
  | 'X0X_ERR_TASK_CLAIMED_BY_OTHER'
  | 'X0X_ERR_NOT_WRITER'
  | 'X0X_ERR_REJECTED'
  | 'X0X_ERR_NOT_MEMBER'
  | 'X0X_ERR_ALREADY_MEMBER'
  | 'X0X_ERR_REFUSED'
  | 'X0X_ERR_OTHER'
  | 'X0X_ERR_UNSUPPORTED'
  | 'X0X_ERR_UNKNOWN';

/** Status numbers by name. */
export declare const Status: Readonly<Record<Exclude<StatusCode, 'X0X_ERR_UNKNOWN'>, number>>;

/** Event kinds of include/x0x.h. */
export declare const EventKind: Readonly<{
  PEER_CONNECTED: 1;
  PEER_DISCONNECTED: 2;
  CONNECTION_FAILED: 3;
  EXTERNAL_ADDRESS_DISCOVERED: 4;
  AGENTS_CHANGED: 5;
  DIRECT_MESSAGE: 6;
  TOPIC_MESSAGE: 7;
  TASK_CHANGED: 8;
  NAT_TYPE_DETECTED: 9;
  TOPIC_NEIGHBOUR_UP: 10;
  TOPIC_NEIGHBOUR_DOWN: 11;
  LAGGED: 12;
  VALIDATE: 13;
  GROUP_INVITATION: 14;
  GROUP_MESSAGE: 15;
  GROUP_CHANGED: 16;
}>;

/**
 * This node's NAT mapping behaviour, learnt from the addresses peers at
 * different IPs see it at: 'none' (a public address), 'endpoint-independent'
 * (a cone NAT: hole punching works), 'endpoint-dependent' (a symmetric NAT:
 * most peers are reached through a relay).
 */
export type NatType = 'unknown' | 'none' | 'endpoint-independent' | 'endpoint-dependent';

/** An error reported by the x0x library (`code` is the status name). */
export declare class X0xError extends Error {
  constructor(code: StatusCode, status: number, message?: string);
  readonly code: StatusCode;
  readonly status: number;
  /** Set on 'error' events for failed dials. */
  addr?: string | null;
  peer?: string | null;
}

/** A task operation refused because of the task's state (TASK_DONE, TASK_NOT_CLAIMED, TASK_CLAIMED_BY_OTHER). */
export declare class X0xTaskError extends X0xError {}

/**
 * A group operation refused because of membership: X0X_ERR_NOT_MEMBER (not a
 * member; or leave() by the only member), X0X_ERR_ALREADY_MEMBER (invite() of
 * a member) or X0X_ERR_REFUSED (the invited agent did not publish a key
 * package, or is over its rate of invitations).
 */
export declare class X0xGroupError extends X0xError {
  readonly code: 'X0X_ERR_NOT_MEMBER' | 'X0X_ERR_ALREADY_MEMBER' | 'X0X_ERR_REFUSED';
}

/**
 * The lag marker of a stream: `missed` items were lost because the reader
 * fell behind. Stream#next() rejects with it once, where the gap is (a
 * `for await` loop ends with it: start another to read on); the stream
 * goes on.
 */
export declare class LaggedError extends Error {
  constructor(missed: number);
  readonly code: 'ERR_X0X_LAGGED';
  readonly missed: number;
}

/** Options of blocking calls. timeoutMs 0 or absent: the library default (30 s). */
export interface CallOptions {
  timeoutMs?: number;
}

export interface AgentOptions {
  /**
   * Directory of keys, the peer cache, task lists and groups; one running
   * agent per directory (a second one rejects with X0xError 'X0X_ERR_IO',
   * "data directory in use"). Omitted (or null): $X0X_HOME if set and
   * non-empty, else ~/.x0x. '' is refused (RangeError), so an unset
   * variable never silently selects that shared directory.
   */
  dataDir?: string | null;
  /** UDP address to listen on (default '127.0.0.1:0'). */
  bindAddr?: string;
  /** Bootstrap peers: 'host:port' or '<peer id hex>@host:port'. */
  bootstrap?: string[];
  /** 'local' (default: no built-in peers) or 'testnet' (the public test network). */
  network?: 'local' | 'testnet';
  /** Seals the key files (Argon2id, about 0.25 s per key file). */
  passphrase?: Bytes;
  /** Capacity of the agent's event queue, 1..65536 (default 1024). */
  eventQueueCapacity?: number;
  /** Machine key file (default <dataDir>/machine.key). */
  machineKeyPath?: string;
  /** Use this agent key instead of the data directory's agent.key. */
  identity?: Identity;
  /** Timeout of the creation itself. */
  timeoutMs?: number;
}

/** A message on a topic (from a Subscription, or given to a validator). */
export interface TopicMessage {
  topic: string;
  /** Publishing agent (hex); its signature was verified. */
  from: string;
  payload: Buffer;
  /**
   * Always null: the library does not say which neighbour delivered a topic
   * message (the C record's peer is all zero for topic messages); `from` is
   * the verified publisher. Kept so that code reading it keeps working.
   * @deprecated always null
   */
  peer: null;
  /** The publisher's sequence number. */
  seq: number;
  /** The publisher's timestamp, Unix milliseconds. */
  timestamp: number;
  /** Overlay hops from the publisher: 0 for this agent's own messages;
   * above the topic tree's depth when repaired (announcement pulls,
   * anti-entropy). */
  hops: number;
}

/**
 * A direct message ('direct' event). Field names follow include/x0x.h:
 * from (sending agent), to (receiving local agent), peer (the node that
 * delivered it), payload; Python spells from/to from_agent/to_agent.
 */
export interface DirectMessage {
  from: string;
  to: string;
  peer: string | null;
  payload: Buffer;
}

export interface ConnectedEvent {
  peer: string;
  addr: string | null;
  agents: string[];
}

export interface DisconnectedEvent {
  peer: string;
  /** 'X0X_OK' when closed locally. */
  code: StatusCode;
  error: string | null;
}

export interface ConnectionFailedEvent {
  peer: string | null;
  addr: string | null;
  code: StatusCode;
  error: string | null;
}

export type TaskOp = 'added' | 'updated' | 'claimed' | 'completed' | 'reopened' | 'moved' | 'removed' | 'access' | 'unknown';

export interface TaskUpdatedEvent {
  listId: string;
  taskId: string;
  /** Agent that made the change. */
  from: string | null;
  op: TaskOp;
  /** True if this agent made the change. */
  local: boolean;
}

/**
 * Deprecated (returned by the deprecated Agent#subscribe; named
 * `Subscription` before topic handles): unsubscribes when called; also has
 * .unsubscribe() and .topic. Returns false if already unsubscribed.
 */
export interface Unsubscribe {
  (): boolean;
  unsubscribe(): boolean;
  readonly topic: string;
}

/** A change of this node's neighbours on a topic (Topic#events()). */
export interface TopicEvent {
  kind: 'neighbour-up' | 'neighbour-down';
  topic: string;
  /** The neighbour's peer (machine) ID, hex. */
  peer: string;
}

/**
 * Decides whether a topic message is accepted: true (or a Promise of true)
 * accepts; anything else, a throw or a rejection refuses it (it is then
 * neither delivered nor forwarded by this node, and a local publish of it
 * rejects with X0X_ERR_REJECTED).
 */
export type Validator = (msg: TopicMessage) => boolean | Promise<boolean>;

export interface JoinOptions {
  /** Publish without joining: this node carries no traffic for the topic. */
  publishOnly?: boolean;
  /** Checks every message new to this node, and each local publish. */
  validator?: Validator;
  /** How long the library waits for a verdict before refusing, 1..10000 ms (default 1000). */
  validationTimeoutMs?: number;
}

export interface StreamOptions {
  /** Unread items kept before new ones are lost (default 8192). */
  capacity?: number;
}

/**
 * A bounded stream: `await stream.next()` (null once closed and drained) or
 * `for await (const x of stream)`. Lost items are reported once, where they
 * were lost, as a LaggedError. Leaving a `for await` loop does not close it.
 */
export declare class Stream<T> implements AsyncIterable<T> {
  protected constructor(token: never);
  readonly closed: boolean;
  readonly capacity: number;
  /** Items queued and not yet read. */
  readonly size: number;
  /** Items this stream's own queue lost because it was full. */
  readonly dropped: number;
  /** The next item; null once the stream is closed and drained. Rejects with LaggedError after a gap. */
  next(): Promise<T | null>;
  /** Stops delivery; queued items stay readable. Idempotent. */
  close(): void;
  [Symbol.asyncIterator](): AsyncIterableIterator<T>;
}

/** The messages of a topic handle (Topic#subscribe()). */
export declare class Subscription extends Stream<TopicMessage> {
  /** The topic's name. */
  readonly topic: string;
}

/** Neighbour changes of a topic handle (Topic#events()). */
export declare class TopicEvents extends Stream<TopicEvent> {
  /** The topic's name. */
  readonly topic: string;
}

/** A topic joined with Agent#join(). */
export declare class Topic {
  private constructor(token: never);
  readonly name: string;
  readonly agent: Agent;
  readonly publishOnly: boolean;
  readonly left: boolean;
  /** Resolves to the message ID (hex). Rejects with X0X_ERR_REJECTED if a validator refused it. */
  publish(data: Bytes): Promise<string>;
  subscribe(options?: StreamOptions): Subscription;
  events(options?: StreamOptions): TopicEvents;
  /** This node's neighbours on the topic (peer IDs, hex), sorted. */
  neighbours(): string[];
  leave(): Promise<void>;
}

/** An invitation into a private group, waiting for acceptInvitation() or declineInvitation(). */
export interface GroupInvitation {
  /** The group's ID (hex). */
  group: string;
  /** The member that invited this agent (agent ID, hex). */
  from: string;
  /** The group's members at the invitation (agent IDs, hex). */
  members: string[];
  /** The epoch the invitation starts. */
  epoch: number;
}

/** A message of another member of a group (Group#messages()). */
export interface GroupMessage {
  /** The group's ID (hex). */
  group: string;
  /** The sending member (agent ID, hex; authenticated by MLS). */
  from: string;
  data: Buffer;
  /** The group epoch it was sent in. */
  epoch: number;
}

export type GroupEventKind = 'member-joined' | 'member-left' | 'epoch-changed' | 'removed' | 'member-online' | 'unknown';

/** A change of a group (Group#events()). */
export interface GroupEvent {
  kind: GroupEventKind;
  /** The group's ID (hex). */
  group: string;
  /** The member concerned (agent ID, hex); null for 'epoch-changed' and 'removed'. */
  agent: string | null;
  /** The epoch after the change. */
  epoch: number;
}

/** A group's state (Group#info()). */
export interface GroupInfo {
  id: string;
  epoch: number;
  /** Agent IDs (hex), sorted. */
  members: string[];
  /** Members that announced their presence in the last 15 minutes, and this agent. */
  online: string[];
  /** True once this agent left or was removed. */
  closed: boolean;
}

/** The other members' messages of a group (Group#messages()). */
export declare class GroupMessages extends Stream<GroupMessage> {
  /** The group's ID (hex). */
  readonly group: string;
}

/** The changes of a group (Group#events()); it ends after a 'removed' event. */
export declare class GroupEvents extends Stream<GroupEvent> {
  /** The group's ID (hex). */
  readonly group: string;
}

/**
 * A private group (MLS) this agent is a member of. Once close() was called,
 * this agent left or was removed, or the agent closed, its methods throw
 * (or reject with) X0xError 'X0X_ERR_CLOSED'.
 */
export declare class Group {
  private constructor(token: never);
  /** The group's ID (hex). */
  readonly id: string;
  readonly agent: Agent;
  /** True once close() was called (or the agent closed). */
  readonly closed: boolean;
  /** True once this agent left or was removed. */
  readonly removed: boolean;
  info(): GroupInfo;
  /** Encrypts data for the members (at most 960 KiB) and publishes it. */
  publish(data: Bytes): Promise<void>;
  messages(options?: StreamOptions): GroupMessages;
  events(options?: StreamOptions): GroupEvents;
  /** Invites an agent that published a key package and is carried by a connected peer. */
  invite(agentId: string, options?: CallOptions): Promise<void>;
  /** Invites the agent whose key package (from its publishKeyPackage()) this is. */
  inviteKeyPackage(keyPackage: Buffer | Uint8Array | ArrayBufferView | ArrayBuffer, options?: CallOptions): Promise<void>;
  remove(agentId: string): Promise<void>;
  /** Replaces this agent's keys in the group (a commit). */
  update(): Promise<void>;
  /** Asks the other members to remove this agent; a 'removed' event follows. */
  leave(): Promise<void>;
  /** A task list only the group's members read and write. */
  createTaskList(name: string): Promise<TaskList>;
  joinTaskList(listId: string): Promise<TaskList>;
  /** Stops this agent's replica for now (its streams end, its task lists are left); its next start restores it. */
  close(): Promise<void>;
}

export interface AgentEvents {
  connected: [ConnectedEvent];
  disconnected: [DisconnectedEvent];
  connectionFailed: [ConnectionFailedEvent];
  /** addr is this node's external address: peers at two or more IPs see it there (emitted after the natType event of the same classification; never behind a symmetric NAT). */
  externalAddress: [{ addr: string }];
  /** The NAT type was detected or changed; addr is the external address peers agree on (null if none). */
  natType: [{ type: NatType; addr: string | null }];
  agentsChanged: [{ peer: string; agents: string[] }];
  /** Deprecated: messages of topics subscribed with the deprecated Agent#subscribe. */
  message: [TopicMessage];
  direct: [DirectMessage];
  taskUpdated: [TaskUpdatedEvent];
  /** An invitation into a private group (also listed by Agent#invitations()). */
  groupInvitation: [GroupInvitation];
  error: [Error];
  close: [];
}

export declare class Agent extends EventEmitter {
  private constructor(token: never);
  static create(options?: AgentOptions): Promise<Agent>;
  readonly agentId: string;
  readonly machineId: string;
  readonly addr: string;
  /** '<machineId>@<addr>', for connect() and bootstrap lists. */
  readonly connectAddr: string;
  readonly closed: boolean;
  joinNetwork(options?: CallOptions): Promise<void>;
  /** Resolves to the peer ID (hex) that proved itself at addr. */
  connect(addr: string, options?: CallOptions): Promise<string>;
  /** Joins a topic: resolves to its handle. */
  join(name: string, options?: JoinOptions): Promise<Topic>;
  /** @deprecated Use `(await agent.join(topic)).subscribe()`. */
  subscribe(topic: string, cb: (msg: TopicMessage) => void): Unsubscribe;
  /** @deprecated Topics with a subscribe() callback. */
  subscriptions(): string[];
  /** @deprecated Use `(await agent.join(topic, { publishOnly: true })).publish(data)`. Resolves to the message ID (hex). */
  publish(topic: string, data: Bytes, options?: CallOptions): Promise<string>;
  sendDirect(agentId: string, data: Bytes, options?: CallOptions): Promise<void>;
  waitForAgent(agentId: string, options?: CallOptions): Promise<void>;
  connectedPeers(): string[];
  peerAgents(peerId: string): string[];
  eventsDropped(): number;
  exportIdentity(passphrase: Bytes): Promise<Buffer>;
  /** Makes this agent invitable into groups; resolves to one key package. */
  publishKeyPackage(): Promise<Buffer>;
  createGroup(): Promise<Group>;
  /** The invitations waiting for an answer. */
  invitations(): GroupInvitation[];
  acceptInvitation(groupId: string): Promise<Group>;
  declineInvitation(groupId: string): Promise<void>;
  /** The groups this agent has open, those restored from dataDir at creation included. */
  groups(): Group[];
  /** The open group groupId; throws X0xError 'X0X_ERR_NOT_FOUND' if there is none. */
  group(groupId: string): Group;
  debugInjectEvents(n: number, payloadLen: number): Promise<void>;
  close(): Promise<void>;

  on<K extends keyof AgentEvents>(event: K, listener: (...args: AgentEvents[K]) => void): this;
  once<K extends keyof AgentEvents>(event: K, listener: (...args: AgentEvents[K]) => void): this;
  off<K extends keyof AgentEvents>(event: K, listener: (...args: AgentEvents[K]) => void): this;
  addListener<K extends keyof AgentEvents>(event: K, listener: (...args: AgentEvents[K]) => void): this;
  removeListener<K extends keyof AgentEvents>(event: K, listener: (...args: AgentEvents[K]) => void): this;
  emit<K extends keyof AgentEvents>(event: K, ...args: AgentEvents[K]): boolean;
}

export declare class Identity {
  private constructor(token: never);
  static import(bundle: Bytes, passphrase: Bytes): Promise<Identity>;
  readonly agentId: string;
  save(dir: string, passphrase?: Bytes): Promise<void>;
  destroy(): void;
}

export type TaskState = 'empty' | 'claimed' | 'done';

export interface Task {
  id: string;
  title: string;
  description: string;
  state: TaskState;
  /** Winning claimer (claimed) or completer (done). */
  claimant: string | null;
  /** Every concurrent claimer. */
  claims: string[];
  assignee: string | null;
  priority: number;
  createdBy: string;
  createdAtMs: number;
}

export interface TaskListSnapshot {
  id: string;
  name: string;
  /** The list's creator (agent ID hex), null until its creation arrived. */
  creator: string | null;
  /** Agents the creator granted write access. */
  writers: string[];
  /** Every agent may write. */
  open: boolean;
  tasks: Task[];
}

export interface TaskFields {
  title?: string;
  description?: string;
  /** Agent ID hex, or null to unassign. */
  assignee?: string | null;
  /** 0..255 */
  priority?: number;
}

/**
 * A replicated task list. Strings are bounded (name and title 1,024 UTF-8
 * bytes, description 16 KiB): a longer one rejects with X0xError
 * 'X0X_ERR_TOO_LARGE'. Once left (leave() on any TaskList of the same list,
 * or its group closed) or its agent closed, every method rejects with
 * X0xError 'X0X_ERR_CLOSED'.
 */
export declare class TaskList extends EventEmitter {
  private constructor(token: never);
  static create(agent: Agent, name: string): Promise<TaskList>;
  static join(agent: Agent, listId: string): Promise<TaskList>;
  readonly id: string;
  readonly agent: Agent;
  addTask(title: string, description?: string): Promise<string>;
  claimTask(taskId: string): Promise<void>;
  completeTask(taskId: string): Promise<void>;
  reopenTask(taskId: string): Promise<void>;
  updateTask(taskId: string, fields: TaskFields): Promise<void>;
  moveTask(taskId: string, afterId: string | null): Promise<void>;
  removeTask(taskId: string): Promise<void>;
  addWriter(agentId: string): Promise<void>;
  removeWriter(agentId: string): Promise<void>;
  setOpen(open: boolean): Promise<void>;
  listTasks(): Promise<TaskListSnapshot>;
  leave(): Promise<void>;
  on(event: 'taskUpdated', listener: (ev: TaskUpdatedEvent) => void): this;
  once(event: 'taskUpdated', listener: (ev: TaskUpdatedEvent) => void): this;
  off(event: 'taskUpdated', listener: (ev: TaskUpdatedEvent) => void): this;
}

/** ABI version of the linked library: (major << 16) | minor. */
export declare function abiVersion(): number;

/** Which optional library functions the linked libx0x provides. */
export declare const capabilities: Readonly<{ pubsub: boolean; injectEvents: boolean; tasklist: boolean; topics: boolean; groups: boolean }>;
