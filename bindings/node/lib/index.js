'use strict';
// x0x for Node.js: agents, topics (publish/subscribe), direct messages,
// task lists and private groups over the x0x C ABI (include/x0x.h), through
// the native addon in ../src.
//
// Threading: blocking library calls run on libuv's thread pool and return
// Promises; each open agent has one native thread that waits for events
// and wakes the JS thread, which drains them in batches and emits them
// here. An open agent keeps the process alive (like a listening server)
// until close().

const { EventEmitter } = require('node:events');
const { loadAddon } = require('./loader');
const { X0xError, X0xTaskError, X0xGroupError, LaggedError, Status, makeError, statusName } = require('./errors');

const native = loadAddon();
native.init(makeError);
const STRIDE = native.eventStride;

const MAX_TOPIC = 256;
const MAX_STRING = 4096;
// Task-list strings (X0X_MAX_TASKLIST_NAME, X0X_MAX_TASK_TITLE,
// X0X_MAX_TASK_DESCRIPTION): a longer one is X0xError 'X0X_ERR_TOO_LARGE',
// as the library reports it.
const MAX_TASKLIST_NAME = 1024;
const MAX_TASK_TITLE = 1024;
const MAX_TASK_DESCRIPTION = 16 * 1024;
const MAX_PASSPHRASE = 1024;
const MAX_BUNDLE = 64 * 1024;
const MAX_PAYLOAD = 16 * 1024 * 1024;
const MAX_EVENT_QUEUE = 65536;
const MAX_VALIDATION_MS = 10000;
const MAX_STREAM_CAPACITY = 1 << 20;
const DEFAULT_STREAM_CAPACITY = 8192;
const TOPIC_PUBLISH_ONLY = 1;

/** Event kinds of include/x0x.h. */
const EventKind = Object.freeze({
  PEER_CONNECTED: 1,
  PEER_DISCONNECTED: 2,
  CONNECTION_FAILED: 3,
  EXTERNAL_ADDRESS_DISCOVERED: 4,
  AGENTS_CHANGED: 5,
  DIRECT_MESSAGE: 6,
  TOPIC_MESSAGE: 7,
  TASK_CHANGED: 8,
  NAT_TYPE_DETECTED: 9,
  TOPIC_NEIGHBOUR_UP: 10,
  TOPIC_NEIGHBOUR_DOWN: 11,
  LAGGED: 12,
  VALIDATE: 13,
  GROUP_INVITATION: 14,
  GROUP_MESSAGE: 15,
  GROUP_CHANGED: 16,
});

/** NAT types reported by 'natType', indexed by x0x_nat_type. */
const NAT_TYPES = ['unknown', 'none', 'endpoint-independent', 'endpoint-dependent'];

/** Task operations reported by 'taskUpdated', indexed by x0x_task_op. */
const TASK_OPS = [undefined, 'added', 'updated', 'claimed', 'completed', 'reopened', 'moved', 'removed', 'access'];

/** Group changes reported by Group#events(), indexed by x0x_group_change. */
const GROUP_CHANGES = [undefined, 'member-joined', 'member-left', 'epoch-changed', 'removed', 'member-online'];
const GROUP_REMOVED = 4;

const kToken = Symbol('x0x.constructor');
const kNative = Symbol('x0x.native');
const kListOpened = Symbol('x0x.listOpened');
const kListClosed = Symbol('x0x.listClosed');
const kListsOf = Symbol('x0x.listsOf');
const kPush = Symbol('x0x.push');
const kLag = Symbol('x0x.lag');
const kEnd = Symbol('x0x.end');
const kRoute = Symbol('x0x.route');
const kUnroute = Symbol('x0x.unroute');
const kTopicGone = Symbol('x0x.topicGone');
const kValidate = Symbol('x0x.validate');
const kAgentClosed = Symbol('x0x.agentClosed');
const kGroupOpened = Symbol('x0x.groupOpened');
const kGroupGone = Symbol('x0x.groupGone');
const kGroupMessage = Symbol('x0x.groupMessage');
const kGroupChange = Symbol('x0x.groupChange');
const HEX_ID = /^[0-9a-fA-F]{64}$/;

// ---- argument checks (TypeError / RangeError before any native call) ----

function typeName(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

function checkString(v, what, { max = MAX_STRING, allowEmpty = false } = {}) {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string, got ${typeName(v)}`);
  if (!allowEmpty && v.length === 0) throw new RangeError(`${what} must not be empty`);
  if (v.includes('\0')) throw new TypeError(`${what} must not contain NUL characters`);
  const n = Buffer.byteLength(v, 'utf8');
  if (n > max) throw new RangeError(`${what} is ${n} bytes long (UTF-8); the limit is ${max}`);
  return v;
}

/**
 * Checks a task-list string (name, title, description): a string without
 * NUL characters (TypeError otherwise) of at most max UTF-8 bytes, else
 * X0xError 'X0X_ERR_TOO_LARGE', the status the library gives it.
 */
function checkField(v, what, max) {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string, got ${typeName(v)}`);
  if (v.includes('\0')) throw new TypeError(`${what} must not contain NUL characters`);
  const n = Buffer.byteLength(v, 'utf8');
  if (n > max) {
    throw makeError('X0X_ERR_TOO_LARGE', Status.X0X_ERR_TOO_LARGE, `${what} is ${n} bytes long (UTF-8); the limit is ${max}`);
  }
  return v;
}

function checkTopic(topic) {
  return checkString(topic, 'topic', { max: MAX_TOPIC });
}

function checkId(v, what) {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a 64-digit hex string, got ${typeName(v)}`);
  if (!HEX_ID.test(v)) throw new RangeError(`${what} must be 64 hex digits, got ${JSON.stringify(v.slice(0, 80))}`);
  return v.toLowerCase();
}

/** Converts a payload to bytes: Buffer, any TypedArray/DataView, ArrayBuffer or a string (UTF-8). */
function toBytes(data, what, max = MAX_PAYLOAD) {
  let out;
  if (typeof data === 'string') out = Buffer.from(data, 'utf8');
  else if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) out = data;
  else throw new TypeError(`${what} must be a Buffer, Uint8Array, ArrayBuffer or string, got ${typeName(data)}`);
  if (out.byteLength > max) throw new RangeError(`${what} is ${out.byteLength} bytes long; the limit is ${max}`);
  return out;
}

function checkOptions(opts, allowed, what) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError(`${what} must be an object, got ${typeName(opts)}`);
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) throw new TypeError(`${what}: unknown option ${JSON.stringify(k)} (known: ${allowed.join(', ')})`);
  }
  return opts;
}

function checkTimeout(opts, what = 'options') {
  const o = checkOptions(opts, ['timeoutMs'], what);
  const t = o.timeoutMs;
  if (t === undefined || t === null) return undefined;
  if (typeof t !== 'number') throw new TypeError(`timeoutMs must be a number, got ${typeName(t)}`);
  if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new RangeError(`timeoutMs must be an integer from 0 to 4294967295, got ${t}`);
  return t;
}

function closedError(message = 'the agent is closed') {
  return new X0xError('X0X_ERR_CLOSED', Status.X0X_ERR_CLOSED, message);
}

// ---- Agent --------------------------------------------------------------

/**
 * A local x0x agent. Create one with `await Agent.create(options)`; release
 * it with `await agent.close()`.
 */
class Agent extends EventEmitter {
  #native = null;
  #closed = false;
  #closing = null;
  #subs = new Map(); // deprecated subscribe(): topic -> {topic, sub, cbs: Set<{cb}>}
  #lists = new Map(); // list ID hex -> Set<TaskList>
  #topics = new Map(); // topic handle (BigInt) -> Topic
  #routes = new Map(); // subscription handle (BigInt) -> Stream or deprecated-subscribe entry
  #groups = new Map(); // group handle (BigInt) -> Group
  #closingGroups = new Set(); // IDs of groups whose Group#close() is under way (the library still lists them)
  #opening = 0; // createGroup/acceptInvitation calls in flight
  #earlyRemoved = new Set(); // group handles reported removed before their Group existed
  #agentId = '';
  #machineId = '';
  #addr = '';

  /** @private Use Agent.create(). */
  constructor(token) {
    super();
    if (token !== kToken) throw new TypeError('use Agent.create(options) to create an agent');
  }

  /**
   * Creates an agent: loads or creates its keys in dataDir and starts
   * listening on bindAddr (default 127.0.0.1:0). It contacts nobody until
   * joinNetwork() or connect(). Without dataDir (undefined or null) the
   * data directory is $X0X_HOME if set and non-empty, else ~/.x0x (the
   * environment as it was when the addon was loaded); an empty string is
   * refused (RangeError), so that an unset variable does not silently
   * select that shared directory. One running agent per data directory: a
   * second one on a directory another running agent holds (in this
   * process or another) rejects at once with X0xError 'X0X_ERR_IO' ("data
   * directory in use").
   */
  static async create(options) {
    const o = checkOptions(options, ['dataDir', 'bindAddr', 'bootstrap', 'network', 'passphrase', 'eventQueueCapacity',
      'machineKeyPath', 'identity', 'timeoutMs'], 'Agent.create options');
    const n = {};
    for (const k of ['dataDir', 'bindAddr', 'machineKeyPath']) {
      if (o[k] !== undefined && o[k] !== null) n[k] = checkString(o[k], k);
    }
    if (o.network !== undefined && o.network !== null) {
      if (o.network !== 'local' && o.network !== 'testnet') {
        throw new RangeError(`network must be 'local' or 'testnet', got ${JSON.stringify(o.network)}`);
      }
      n.network = o.network;
    }
    if (o.bootstrap !== undefined && o.bootstrap !== null) {
      if (!Array.isArray(o.bootstrap)) throw new TypeError(`bootstrap must be an array of strings, got ${typeName(o.bootstrap)}`);
      if (o.bootstrap.length > 56) throw new RangeError('bootstrap has more than 56 entries');
      n.bootstrap = o.bootstrap.map((b, i) => checkString(b, `bootstrap[${i}]`));
    }
    if (o.passphrase !== undefined && o.passphrase !== null) {
      n.passphrase = toBytes(o.passphrase, 'passphrase', MAX_PASSPHRASE);
    }
    if (o.eventQueueCapacity !== undefined && o.eventQueueCapacity !== null) {
      const c = o.eventQueueCapacity;
      if (typeof c !== 'number') throw new TypeError(`eventQueueCapacity must be a number, got ${typeName(c)}`);
      if (!Number.isInteger(c) || c < 1 || c > MAX_EVENT_QUEUE) {
        throw new RangeError(`eventQueueCapacity must be an integer from 1 to ${MAX_EVENT_QUEUE}, got ${c}`);
      }
      n.eventQueueCapacity = String(c);
    }
    if (o.identity !== undefined && o.identity !== null) {
      if (!(o.identity instanceof Identity)) throw new TypeError('identity must be an Identity (from Identity.import)');
      n.identity = o.identity[kNative]();
    }
    const t = checkTimeout({ timeoutMs: o.timeoutMs }, 'Agent.create options');
    if (t !== undefined) n.timeoutMs = t;

    const agent = new Agent(kToken);
    const r = await native.agentCreate(n, (arr, count) => agent.#dispatch(arr, count));
    agent.#native = r.agent;
    agent.#agentId = r.agentId;
    agent.#machineId = r.machineId;
    agent.#addr = r.addr;
    return agent;
  }

  /** This agent's ID (64 lowercase hex digits). */
  get agentId() { return this.#agentId; }
  /** The machine (peer) ID of this node (64 lowercase hex digits). */
  get machineId() { return this.#machineId; }
  /** The UDP address the agent listens on, e.g. '127.0.0.1:40123'. */
  get addr() { return this.#addr; }
  /** The address others pass to connect(): '<machineId>@<addr>'. */
  get connectAddr() { return `${this.#machineId}@${this.#addr}`; }
  /** True once close() was called. */
  get closed() { return this.#closed; }

  #handle() {
    if (this.#closed) throw closedError();
    return this.#native;
  }

  /** @internal for TaskList */
  [kNative]() { return this.#handle(); }

  /** Connects to the bootstrap peers (and cached peers). Resolves once one connection is up. */
  async joinNetwork(options) {
    const t = checkTimeout(options);
    return native.joinNetwork(this.#handle(), t);
  }

  /**
   * Dials addr ('host:port' or '<peer id hex>@host:port') and keeps the
   * connection up. Resolves to the peer ID (hex) that proved itself there.
   */
  async connect(addr, options) {
    checkString(addr, 'addr');
    const t = checkTimeout(options);
    return native.connect(this.#handle(), addr, t);
  }

  /**
   * Joins topic `name` and resolves to a Topic handle: publish, subscribe,
   * watch neighbours, leave. Handles are independent: a topic can be joined
   * several times, each handle with its own subscriptions and validator.
   * Options: `publishOnly` (publish without joining: this node carries no
   * traffic for the topic), `validator` (a function of a TopicMessage
   * returning true, or a Promise of true, to accept it; anything else,
   * a throw or a rejection refuses it: it is neither delivered nor
   * forwarded, and a local publish of it rejects with X0X_ERR_REJECTED),
   * `validationTimeoutMs` (how long the library waits for a verdict
   * before refusing, 1..10000, default 1000).
   */
  async join(name, options) {
    checkTopic(name);
    const o = checkOptions(options, ['validator', 'publishOnly', 'validationTimeoutMs'], 'join options');
    if (o.validator !== undefined && o.validator !== null && typeof o.validator !== 'function') {
      throw new TypeError(`validator must be a function, got ${typeName(o.validator)}`);
    }
    if (o.publishOnly !== undefined && o.publishOnly !== null && typeof o.publishOnly !== 'boolean') {
      throw new TypeError(`publishOnly must be a boolean, got ${typeName(o.publishOnly)}`);
    }
    let limit = 0;
    if (o.validationTimeoutMs !== undefined && o.validationTimeoutMs !== null) {
      limit = o.validationTimeoutMs;
      if (typeof limit !== 'number') throw new TypeError(`validationTimeoutMs must be a number, got ${typeName(limit)}`);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_VALIDATION_MS) {
        throw new RangeError(`validationTimeoutMs must be an integer from 1 to ${MAX_VALIDATION_MS}, got ${limit}`);
      }
    }
    const validator = typeof o.validator === 'function' ? o.validator : null;
    const publishOnly = o.publishOnly === true;
    const h = native.topicJoin(this.#handle(), name, publishOnly ? TOPIC_PUBLISH_ONLY : 0, validator !== null, limit);
    const topic = new Topic(kToken, this, h, name, publishOnly, validator);
    this.#topics.set(h, topic);
    return topic;
  }

  /**
   * Deprecated: use `(await agent.join(topic)).subscribe()`. Subscribes cb
   * to topic. Several callbacks per topic share one subscription (a topic
   * handle underneath). cb receives {topic, from, payload, peer, seq,
   * timestamp, hops}. Returns a function that unsubscribes (also available
   * as .unsubscribe()), with .topic. Throws X0xError('X0X_ERR_CLOSED') on a
   * closed agent. Messages lost because the reader fell behind are only
   * counted (eventsDropped()).
   */
  subscribe(topic, cb) {
    checkTopic(topic);
    if (typeof cb !== 'function') throw new TypeError(`callback must be a function, got ${typeName(cb)}`);
    const h = this.#handle();
    let entry = this.#subs.get(topic);
    if (!entry) {
      const th = native.topicJoin(h, topic, 0, false, 0);
      let sh;
      try {
        sh = native.topicSubscribe(th);
      } catch (err) {
        try { native.topicLeave(th); } catch { /* reported below */ }
        throw err;
      }
      entry = {
        topic: th,
        sub: sh,
        cbs: new Set(),
        [kPush]: (msg) => this.#legacyMessage(entry, msg),
        [kLag]: () => {}, // only counted, as before topic handles
      };
      this.#subs.set(topic, entry);
      this.#routes.set(sh, entry);
    }
    const set = entry.cbs;
    const item = { cb };
    set.add(item);
    const unsubscribe = () => {
      if (!set.delete(item)) return false;
      if (set.size === 0 && this.#subs.get(topic) === entry) {
        this.#subs.delete(topic);
        this.#routes.delete(entry.sub);
        if (!this.#closed) {
          try { native.topicLeave(entry.topic); } catch { /* the agent is closing */ }
        }
      }
      return true;
    };
    unsubscribe.unsubscribe = unsubscribe;
    unsubscribe.topic = topic;
    return unsubscribe;
  }

  /** Deprecated: topics with at least one subscribe() callback. */
  subscriptions() { return [...this.#subs.keys()]; }

  /**
   * Deprecated: use `(await agent.join(topic, { publishOnly: true })).publish(data)`.
   * Publishes data (Buffer, Uint8Array, ArrayBuffer or string as UTF-8) on
   * topic. Resolves to the message ID (hex) once handed to the overlay.
   */
  async publish(topic, data, options) {
    checkTopic(topic);
    const bytes = toBytes(data, 'data');
    const t = checkTimeout(options);
    return native.publish(this.#handle(), topic, bytes, t);
  }

  #legacyMessage(entry, msg) {
    for (const { cb } of entry.cbs) {
      try {
        cb(msg);
      } catch (err) {
        this.#report(err);
      }
    }
    this.#safeEmit('message', msg);
  }

  [kRoute](handle, stream) { this.#routes.set(handle, stream); }

  [kUnroute](handle) { this.#routes.delete(handle); }

  [kTopicGone](topic) { this.#topics.delete(topic[kNative]()); }

  // ---- private groups (ABI 0.7) ----

  /**
   * Makes this agent invitable into private groups: from now on members of
   * groups may fetch single-use key packages from it over a direct
   * connection (Group#invite), at most 4 per inviting agent per minute.
   * Resolves to one key package (a Buffer) that may also be handed to an
   * inviter by other means (Group#inviteKeyPackage).
   */
  async publishKeyPackage() {
    return native.group('publishKeyPackage', this.#handle());
  }

  /** Creates a private group with this agent as its only member. */
  async createGroup() {
    return this.#openGroup(native.group('create', this.#handle()));
  }

  /**
   * The invitations waiting for an answer: [{group, from, members, epoch}]
   * (group: the group ID, from: the inviting member, members: the group's
   * members at the invitation, epoch: the epoch it starts). Each also
   * arrived as a 'groupInvitation' event.
   */
  invitations() {
    return JSON.parse(native.invitations(this.#handle())).map(parseInvitation);
  }

  /**
   * Accepts the pending invitation to group groupId (hex) and resolves to
   * the Group. Rejects with X0xError 'X0X_ERR_NOT_FOUND' if no such
   * invitation is pending, 'X0X_ERR_CORRUPT' for a forged one.
   */
  async acceptInvitation(groupId) {
    checkId(groupId, 'groupId');
    return this.#openGroup(native.group('accept', this.#handle(), groupId));
  }

  /**
   * Declines the pending invitation to group groupId (hex): its key package
   * is wiped and the inviter is asked to remove this agent again. Rejects
   * with X0xError 'X0X_ERR_NOT_FOUND' if no such invitation is pending.
   */
  async declineInvitation(groupId) {
    checkId(groupId, 'groupId');
    await native.group('decline', this.#handle(), groupId);
  }

  /**
   * The groups this agent has open: the Groups it has (not closed), in the
   * order they were made, including a Group for each group restored from
   * dataDir when the agent was created (made now if need be, in the order of
   * their IDs). Empty once the agent is closed.
   */
  groups() {
    if (this.#closed) return [];
    const have = new Set([...this.#groups.values()].map((g) => g.id));
    for (const id of JSON.parse(native.groups(this.#native))) {
      if (have.has(id) || this.#closingGroups.has(id)) continue;
      try {
        this.#restoredGroup(id);
      } catch (err) {
        if (err.code !== 'X0X_ERR_NOT_FOUND') throw err; // closed (a removal) since it was listed
      }
    }
    return [...this.#groups.values()];
  }

  /**
   * The open group groupId (hex), as groups() lists it: the same Group each
   * time (made now for a group restored from dataDir). Throws X0xError
   * 'X0X_ERR_NOT_FOUND' if the agent has no such group open (not a member,
   * or the group was closed, left or removed).
   */
  group(groupId) {
    const id = checkId(groupId, 'groupId');
    this.#handle();
    for (const g of this.#groups.values()) if (g.id === id) return g;
    if (this.#closingGroups.has(id)) {
      throw new X0xError('X0X_ERR_NOT_FOUND', Status.X0X_ERR_NOT_FOUND, `group ${id.slice(0, 8)} is being closed`);
    }
    return this.#restoredGroup(id);
  }

  // The Group of open group id that has none yet (restored when the agent
  // was created): the library gives it a handle and its records flow.
  #restoredGroup(id) {
    const h = native.groupOpen(this.#native, id);
    return this.#groups.get(h) || this.#newGroup(h, id);
  }

  // A new Group for group handle h, registered unless the agent is closed.
  #newGroup(h, id) {
    const g = new Group(kToken, this, h, id);
    if (this.#closed) g[kAgentClosed]();
    else this.#groups.set(h, g);
    return g;
  }

  // Wraps the {handle, id} a create/accept call resolves to in a Group.
  // Records of the new handle may be dispatched before the call resolves;
  // only a removal matters then (no stream can be open yet), so removals
  // of unknown handles are kept while such calls are in flight.
  async #openGroup(promise) {
    this.#opening++;
    let r;
    try {
      r = await promise;
    } catch (err) {
      if (--this.#opening === 0) this.#earlyRemoved.clear();
      throw err;
    }
    this.#opening--;
    // Accepting a re-invitation into a group this agent has open keeps
    // the group (and its handle): keep its Group too.
    let g = this.#groups.get(r.handle);
    if (!g) {
      g = this.#newGroup(r.handle, r.id);
      if (!this.#closed && this.#earlyRemoved.has(r.handle)) {
        g[kGroupChange]({ kind: 'removed', group: r.id, agent: null, epoch: 0 }, GROUP_REMOVED);
      }
    }
    if (this.#opening === 0) this.#earlyRemoved.clear();
    return g;
  }

  // Group#close(): closing is its library close, until which the library
  // still lists the group (groups() and group() leave it out).
  [kGroupGone](group, closing) {
    this.#groups.delete(group[kNative]());
    const id = group.id;
    this.#closingGroups.add(id);
    const done = () => this.#closingGroups.delete(id);
    closing.then(done, done);
  }

  /** Sends data to agent agentId (hex) over a connected peer that carries it. */
  async sendDirect(agentId, data, options) {
    checkId(agentId, 'agentId');
    const bytes = toBytes(data, 'data');
    const t = checkTimeout(options);
    return native.sendDirect(this.#handle(), agentId, bytes, t);
  }

  /** Resolves once some connected peer carries agentId (so sendDirect can succeed). */
  async waitForAgent(agentId, options) {
    checkId(agentId, 'agentId');
    const t = checkTimeout(options);
    return native.waitForAgent(this.#handle(), agentId, t);
  }

  /** Peer IDs (hex) with an authenticated connection. */
  connectedPeers() { return native.connectedPeers(this.#handle()); }

  /** Agent IDs (hex) that connected peer peerId has announced. */
  peerAgents(peerId) {
    checkId(peerId, 'peerId');
    return native.peerAgents(this.#handle(), peerId);
  }

  /** Events this agent's queue dropped because it was full. */
  eventsDropped() { return native.eventsDropped(this.#handle()); }

  /** Seals the agent key into a passphrase-protected bundle (Buffer). */
  async exportIdentity(passphrase) {
    const p = toBytes(passphrase, 'passphrase', MAX_PASSPHRASE);
    if (p.byteLength === 0) throw new RangeError('passphrase must not be empty');
    return native.identityExport(this.#handle(), p);
  }

  /**
   * Benchmark aid: pushes n synthetic 'direct' events (payloadLen bytes of
   * 0xAB, from and to this agent) through the real event path. Resolves
   * once all are queued.
   */
  async debugInjectEvents(n, payloadLen) {
    for (const [v, what] of [[n, 'n'], [payloadLen, 'payloadLen']]) {
      if (typeof v !== 'number') throw new TypeError(`${what} must be a number, got ${typeName(v)}`);
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${what} must be an integer from 0 to 4294967295`);
    }
    return native.injectEvents(this.#handle(), n, payloadLen);
  }

  /**
   * Stops the agent: closes connections, saves the peer cache, stops event
   * delivery and releases the native thread. Calling it again returns the
   * same Promise. Open task lists of this agent become unusable.
   */
  close() {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    const ext = this.#native;
    const done = ext ? native.agentClose(ext) : Promise.resolve();
    this.#closing = done.finally(() => {
      for (const set of this.#lists.values()) for (const l of set) l[kListClosed]();
      this.#lists.clear();
      for (const entry of this.#subs.values()) entry.cbs.clear();
      this.#subs.clear();
      for (const t of this.#topics.values()) t[kAgentClosed]();
      this.#topics.clear();
      for (const r of this.#routes.values()) if (r instanceof Stream) r[kEnd]();
      this.#routes.clear();
      for (const g of this.#groups.values()) g[kAgentClosed]();
      this.#groups.clear();
      this.#closingGroups.clear();
      this.#earlyRemoved.clear();
      this.emit('close');
    });
    return this.#closing;
  }

  [kListOpened](list) {
    let set = this.#lists.get(list.id);
    if (!set) this.#lists.set(list.id, (set = new Set()));
    set.add(list);
  }

  [kListsOf](id) { return [...(this.#lists.get(id) || [])]; }

  [kListClosed](list) {
    const set = this.#lists.get(list.id);
    if (set) {
      set.delete(list);
      if (set.size === 0) this.#lists.delete(list.id);
    }
  }

  #report(err) {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
        return;
      } catch (e) {
        err = e;
      }
    }
    process.nextTick(() => { throw err; });
  }

  #safeEmit(name, ev) {
    try {
      this.emit(name, ev);
    } catch (err) {
      this.#report(err);
    }
  }

  // Called by the addon on the JS thread with a batch of events: a flat
  // array of STRIDE values per event (see src/x0x_node.h).
  #dispatch(arr, count) {
    for (let i = 0, b = 0; i < count; i++, b += STRIDE) {
      if (this.#closed) return; // closed by a listener: deliver nothing more
      switch (arr[b]) {
        case EventKind.TOPIC_MESSAGE: {
          const r = this.#routes.get(arr[b + 13]);
          if (r) {
            // peer: always null (the record's peer is all zero: the library
            // does not say which neighbour delivered a topic message).
            r[kPush]({
              topic: arr[b + 8], from: arr[b + 3], payload: arr[b + 7], peer: null,
              seq: arr[b + 10] || 0, timestamp: arr[b + 11] || 0, hops: arr[b + 12] || 0,
            });
          }
          break;
        }
        case EventKind.TOPIC_NEIGHBOUR_UP:
        case EventKind.TOPIC_NEIGHBOUR_DOWN: {
          const r = this.#routes.get(arr[b + 13]);
          if (r) {
            r[kPush]({ kind: arr[b] === EventKind.TOPIC_NEIGHBOUR_UP ? 'neighbour-up' : 'neighbour-down', topic: arr[b + 8], peer: arr[b + 2] });
          }
          break;
        }
        case EventKind.LAGGED: {
          const r = this.#routes.get(arr[b + 13]) || this.#groups.get(arr[b + 13]);
          if (r) r[kLag](arr[b + 10] || 0);
          break;
        }
        case EventKind.GROUP_MESSAGE: {
          const g = this.#groups.get(arr[b + 13]);
          if (g) g[kGroupMessage]({ group: arr[b + 8], from: arr[b + 3], data: arr[b + 7], epoch: arr[b + 10] || 0 });
          break;
        }
        case EventKind.GROUP_CHANGED: {
          const h = arr[b + 13];
          const change = arr[b + 10] || 0;
          const g = this.#groups.get(h);
          if (g) {
            g[kGroupChange]({ kind: GROUP_CHANGES[change] || 'unknown', group: arr[b + 8], agent: arr[b + 3] || null, epoch: arr[b + 11] || 0 }, change);
          } else if (change === GROUP_REMOVED && h !== undefined && this.#opening > 0) {
            this.#earlyRemoved.add(h); // its Group is being built (createGroup/acceptInvitation)
          }
          break;
        }
        case EventKind.GROUP_INVITATION:
          this.#safeEmit('groupInvitation', { group: arr[b + 8], from: arr[b + 3], members: arr[b + 9] || [], epoch: arr[b + 10] || 0 });
          break;
        case EventKind.VALIDATE: {
          const t = this.#topics.get(arr[b + 13]);
          if (t) {
            t[kValidate](arr[b + 12], {
              topic: arr[b + 8], from: arr[b + 3], payload: arr[b + 7], peer: null,
              seq: arr[b + 10] || 0, timestamp: arr[b + 11] || 0, hops: 0,
            });
          }
          break;
        }
        case EventKind.DIRECT_MESSAGE:
          this.#safeEmit('direct', { from: arr[b + 3], to: arr[b + 4], peer: arr[b + 2] || null, payload: arr[b + 7] });
          break;
        case EventKind.PEER_CONNECTED:
          this.#safeEmit('connected', { peer: arr[b + 2], addr: arr[b + 5] || null, agents: arr[b + 9] || [] });
          break;
        case EventKind.PEER_DISCONNECTED: {
          const st = arr[b + 1] || 0;
          this.#safeEmit('disconnected', { peer: arr[b + 2], code: statusName(st, native.statusName(st)), error: arr[b + 6] || null });
          break;
        }
        case EventKind.CONNECTION_FAILED: {
          const st = arr[b + 1] || 0;
          const ev = { peer: arr[b + 2] || null, addr: arr[b + 5] || null, code: statusName(st, native.statusName(st)), error: arr[b + 6] || null };
          this.#safeEmit('connectionFailed', ev);
          if (this.listenerCount('error') > 0) {
            const err = makeError(ev.code, st, `connection to ${ev.addr} failed: ${ev.error}`);
            err.addr = ev.addr;
            err.peer = ev.peer;
            this.#safeEmit('error', err);
          }
          break;
        }
        case EventKind.EXTERNAL_ADDRESS_DISCOVERED:
          this.#safeEmit('externalAddress', { addr: arr[b + 5] });
          break;
        case EventKind.NAT_TYPE_DETECTED:
          this.#safeEmit('natType', { type: NAT_TYPES[arr[b + 10]] || 'unknown', addr: arr[b + 5] || null });
          break;
        case EventKind.AGENTS_CHANGED:
          this.#safeEmit('agentsChanged', { peer: arr[b + 2], agents: arr[b + 9] || [] });
          break;
        case EventKind.TASK_CHANGED: {
          const payload = arr[b + 7];
          const ev = {
            listId: arr[b + 8], taskId: payload ? payload.toString('hex') : '', from: arr[b + 3] || null,
            op: TASK_OPS[arr[b + 10]] || 'unknown', local: arr[b + 11] === 1,
          };
          this.#safeEmit('taskUpdated', ev);
          const lists = this.#lists.get(ev.listId);
          if (lists) {
            for (const l of lists) {
              try {
                l.emit('taskUpdated', ev);
              } catch (err) {
                this.#report(err);
              }
            }
          }
          break;
        }
        default:
          break; // kinds from later ABI versions
      }
    }
  }
}

// ---- Topics ---------------------------------------------------------------

function checkCapacity(opts, what) {
  const o = checkOptions(opts, ['capacity'], what);
  if (o.capacity === undefined || o.capacity === null) return DEFAULT_STREAM_CAPACITY;
  const c = o.capacity;
  if (typeof c !== 'number') throw new TypeError(`capacity must be a number, got ${typeName(c)}`);
  if (!Number.isInteger(c) || c < 1 || c > MAX_STREAM_CAPACITY) {
    throw new RangeError(`capacity must be an integer from 1 to ${MAX_STREAM_CAPACITY}, got ${c}`);
  }
  return c;
}

/** A gap in a stream's queue: n items were lost there. */
class Gap {
  constructor(n) { this.n = n; }
}

/**
 * A bounded stream of items read with `await stream.next()` (null once the
 * stream is closed and drained) or `for await (const item of stream)`.
 * Items are queued on the JS thread as the agent drains the library's
 * events; at most `capacity` wait unread. When items are lost (the
 * library's event queue or this queue was full), the reader is told once,
 * where the gap is: next() rejects with a LaggedError (`missed`), and the
 * stream goes on. Leaving a `for await` loop (break, or a LaggedError) does
 * not close the stream: close it with close().
 */
class Stream {
  #items = [];
  #head = 0;
  #size = 0; // queued items (gaps excluded)
  #capacity;
  #pending = 0; // items lost after the last queued one
  #dropped = 0;
  #waiters = [];
  #ended = false;
  #onClose;

  /** @private Streams are opened by Topic#subscribe(), Topic#events(), Group#messages() and Group#events(). */
  constructor(token, capacity, onClose) {
    if (token !== kToken) throw new TypeError('use topic.subscribe(), topic.events(), group.messages() or group.events()');
    this.#capacity = capacity;
    this.#onClose = onClose;
  }

  /** True once the stream receives nothing more (closed, its topic left or its agent closed). */
  get closed() { return this.#ended; }
  /** Most items queued unread before new ones are lost. */
  get capacity() { return this.#capacity; }
  /** Items queued and not yet read. */
  get size() { return this.#size; }
  /** Items this stream's own queue lost because it was full (losses upstream are only in LaggedError.missed). */
  get dropped() { return this.#dropped; }

  /**
   * Resolves to the next item, waiting for one; to null once the stream is
   * closed and its queued items were read. Rejects once with a LaggedError
   * where items were lost.
   */
  next() {
    if (this.#head < this.#items.length) {
      const x = this.#items[this.#head];
      this.#items[this.#head++] = undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      if (x instanceof Gap) return Promise.reject(new LaggedError(x.n));
      this.#size--;
      return Promise.resolve(x);
    }
    if (this.#pending > 0) {
      const n = this.#pending;
      this.#pending = 0;
      return Promise.reject(new LaggedError(n));
    }
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Stops delivery to this stream; queued items stay readable. Idempotent. */
  close() {
    if (this.#ended) return;
    const f = this.#onClose;
    this.#onClose = null;
    if (f) f();
    this[kEnd]();
  }

  [Symbol.asyncIterator]() {
    const it = {
      next: () => this.next().then((v) => (v === null ? { value: undefined, done: true } : { value: v, done: false })),
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]() { return it; },
    };
    return it;
  }

  [kPush](item) {
    if (this.#ended) return;
    if (this.#waiters.length > 0) { // nothing queued, nothing pending
      this.#waiters.shift().resolve(item);
      return;
    }
    if (this.#size >= this.#capacity) {
      this.#pending++;
      this.#dropped++;
      return;
    }
    if (this.#pending > 0) {
      this.#items.push(new Gap(this.#pending));
      this.#pending = 0;
    }
    this.#items.push(item);
    this.#size++;
  }

  [kLag](n) {
    if (this.#ended || !(n > 0)) return;
    if (this.#waiters.length > 0) {
      this.#waiters.shift().reject(new LaggedError(n));
      return;
    }
    this.#pending += n;
  }

  [kEnd]() {
    if (this.#ended) return;
    this.#ended = true;
    this.#onClose = null;
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w.resolve(null);
  }
}

/**
 * The messages of a topic handle (Topic#subscribe()): TopicMessage items.
 * Several subscriptions of one handle each get every message.
 */
class Subscription extends Stream {
  #topic;

  /** @private */
  constructor(token, topic, capacity, onClose) {
    super(token, capacity, onClose);
    this.#topic = topic;
  }

  /** The topic's name. */
  get topic() { return this.#topic; }
}

/** Changes of this node's neighbours on a topic (Topic#events()): TopicEvent items. */
class TopicEvents extends Stream {
  #topic;

  /** @private */
  constructor(token, topic, capacity, onClose) {
    super(token, capacity, onClose);
    this.#topic = topic;
  }

  /** The topic's name. */
  get topic() { return this.#topic; }
}

/**
 * A topic this agent joined (Agent#join()). Its methods throw (or reject
 * with) X0xError 'X0X_ERR_CLOSED' once the agent is closed and
 * 'X0X_ERR_INVALID_HANDLE' once the topic was left.
 */
class Topic {
  #agent;
  #handle;
  #name;
  #publishOnly;
  #validator;
  #left = false;
  #streams = new Set();

  /** @private Use agent.join(). */
  constructor(token, agent, handle, name, publishOnly, validator) {
    if (token !== kToken) throw new TypeError('use agent.join(name, options)');
    this.#agent = agent;
    this.#handle = handle;
    this.#name = name;
    this.#publishOnly = publishOnly;
    this.#validator = validator;
  }

  /** The topic's name. */
  get name() { return this.#name; }
  /** The agent that joined it. */
  get agent() { return this.#agent; }
  /** True if joined with publishOnly. */
  get publishOnly() { return this.#publishOnly; }
  /** True once left (or its agent closed). */
  get left() { return this.#left; }

  #h() {
    if (this.#agent.closed) throw closedError();
    if (this.#left) throw new X0xError('X0X_ERR_INVALID_HANDLE', Status.X0X_ERR_INVALID_HANDLE, 'the topic was left');
    return this.#handle;
  }

  [kNative]() { return this.#handle; }

  /**
   * Signs data (Buffer, Uint8Array, ArrayBuffer or string as UTF-8, at most
   * 1 MiB) and publishes it on the topic; this agent's own subscriptions
   * get it too. Resolves to the message ID (hex) once handed to the
   * overlay. Rejects with X0xError 'X0X_ERR_REJECTED' if a validator of the
   * topic refused it, 'X0X_ERR_TOO_LARGE' over 1 MiB.
   */
  async publish(data) {
    const bytes = toBytes(data, 'data');
    return native.topicPublish(this.#h(), bytes);
  }

  /**
   * Opens a Subscription to the topic's messages from now on. Options:
   * `capacity` (unread messages kept, default 8192). Throws X0xError
   * 'X0X_ERR_INVALID_ARG' on a publish-only handle.
   */
  subscribe(options) {
    const cap = checkCapacity(options, 'subscribe options');
    const h = this.#h();
    if (this.#publishOnly) throw new X0xError('X0X_ERR_INVALID_ARG', Status.X0X_ERR_INVALID_ARG, `topic ${JSON.stringify(this.#name)} was joined publishOnly`);
    return this.#open(native.topicSubscribe(h), Subscription, cap);
  }

  /**
   * Opens a stream of changes of this node's neighbours on the topic
   * ({kind: 'neighbour-up' | 'neighbour-down', topic, peer}) from now on.
   */
  events(options) {
    const cap = checkCapacity(options, 'events options');
    return this.#open(native.topicEvents(this.#h()), TopicEvents, cap);
  }

  #open(sh, Cls, cap) {
    const agent = this.#agent;
    const stream = new Cls(kToken, this.#name, cap, () => {
      this.#streams.delete(stream);
      agent[kUnroute](sh);
      try { native.subscriptionClose(sh); } catch { /* the topic was left or the agent closed */ }
    });
    this.#streams.add(stream);
    agent[kRoute](sh, stream);
    return stream;
  }

  /** This node's neighbours on the topic (peer IDs, hex), sorted. */
  neighbours() { return native.topicNeighbours(this.#h()); }

  /**
   * Leaves the topic: its subscriptions and event streams end (queued
   * items stay readable), its validator stops applying, and the node stops
   * carrying the topic if no other handle joined it. Idempotent; a no-op
   * once the agent is closed.
   */
  async leave() {
    if (this.#left) return;
    this.#left = true;
    this.#endStreams();
    this.#agent[kTopicGone](this);
    if (this.#agent.closed) return;
    native.topicLeave(this.#handle);
  }

  #endStreams() {
    for (const s of this.#streams) s[kEnd]();
    this.#streams.clear();
  }

  [kAgentClosed]() {
    this.#left = true;
    this.#endStreams();
  }

  // A validation request of this handle (the agent's dispatcher).
  [kValidate](request, msg) {
    const h = this.#handle;
    const report = (verdict) => {
      if (this.#left || this.#agent.closed) return; // the validator no longer applies
      try {
        native.topicValidationResult(h, request, verdict === true);
      } catch { /* too late: the library refused the message already */ }
    };
    const v = this.#validator;
    if (!v) return report(false);
    let r;
    try {
      r = v(msg);
    } catch {
      return report(false);
    }
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
      Promise.resolve(r).then(report, () => report(false));
    } else {
      report(r);
    }
  }
}

// ---- Private groups -------------------------------------------------------

function parseInvitation(i) {
  return { group: i.group, from: i.from, members: i.members || [], epoch: i.epoch || 0 };
}

/** A stream of one group (GroupMessages, GroupEvents). */
class GroupStream extends Stream {
  #group;

  /** @private */
  constructor(token, group, capacity, onClose) {
    super(token, capacity, onClose);
    this.#group = group;
  }

  /** The group's ID (hex). */
  get group() { return this.#group; }
}

/** The other members' messages of a group (Group#messages()): GroupMessage items. */
class GroupMessages extends GroupStream {}

/** The changes of a group (Group#events()): GroupEvent items. */
class GroupEvents extends GroupStream {}

/**
 * A private group this agent is a member of (Agent#createGroup(),
 * Agent#acceptInvitation(); Agent#groups() and Agent#group() also give the
 * groups restored from dataDir when the agent was created): an MLS group
 * whose messages, task lists and presence only its members read. Its
 * methods throw (or reject with) X0xError 'X0X_ERR_CLOSED' once the agent
 * is closed, the group was closed with close(), or this agent is no longer
 * a member (it left or was removed: see `removed`), as the Python binding
 * raises x0x.Closed.
 */
class Group {
  #agent;
  #handle;
  #id;
  #closed = false; // close() called, or the agent closed
  #removed = false; // this agent left or was removed
  #closing = null;
  #messages = new Set();
  #events = new Set();
  #lists = new Set();

  /** @private Use agent.createGroup() or agent.acceptInvitation(). */
  constructor(token, agent, handle, id) {
    if (token !== kToken) throw new TypeError('use agent.createGroup() or agent.acceptInvitation(groupId)');
    this.#agent = agent;
    this.#handle = handle;
    this.#id = id;
  }

  /** The group's ID (64 hex digits). */
  get id() { return this.#id; }
  /** The agent this replica of the group belongs to. */
  get agent() { return this.#agent; }
  /** True once close() was called (or the agent closed). */
  get closed() { return this.#closed; }
  /** True once this agent is no longer a member (it left or was removed). */
  get removed() { return this.#removed; }

  #h() {
    if (this.#agent.closed) throw closedError();
    if (this.#closed) throw closedError(`group ${this.#id.slice(0, 8)} was closed`);
    return this.#handle;
  }

  #member() {
    const h = this.#h();
    if (this.#removed) throw new X0xError('X0X_ERR_CLOSED', Status.X0X_ERR_CLOSED, `this agent is no longer a member of group ${this.#id.slice(0, 8)}`);
    return h;
  }

  [kNative]() { return this.#handle; }

  /**
   * The group's state: {id, epoch, members, online, closed}: members and
   * online (the members that announced their presence in the last 15
   * minutes, and this agent) are agent IDs (hex), sorted; closed is true
   * once this agent left or was removed.
   */
  info() {
    const i = JSON.parse(native.groupInfo(this.#h()));
    return { id: i.id, epoch: i.epoch || 0, members: i.members || [], online: i.online || [], closed: !!i.closed };
  }

  /**
   * Encrypts data (Buffer, Uint8Array, ArrayBuffer or string as UTF-8, at
   * most 960 KiB) for the members and publishes it; the other members'
   * Group#messages() streams get it (this agent's own do not).
   */
  async publish(data) {
    const bytes = toBytes(data, 'data');
    await native.group('publish', this.#h(), bytes);
  }

  /**
   * Opens a stream of the other members' messages from now on:
   * {group, from, data, epoch}. Options: `capacity` (default 8192).
   */
  messages(options) {
    const cap = checkCapacity(options, 'messages options');
    this.#member();
    return this.#open(GroupMessages, this.#messages, cap);
  }

  /**
   * Opens a stream of the group's changes from now on: {kind, group, agent,
   * epoch}, kind one of 'member-joined', 'member-left', 'epoch-changed',
   * 'removed' (this agent left or was removed; the stream ends after it)
   * and 'member-online'; agent is the member concerned (null for
   * 'epoch-changed' and 'removed'); epoch the epoch after the change.
   */
  events(options) {
    const cap = checkCapacity(options, 'events options');
    this.#member();
    return this.#open(GroupEvents, this.#events, cap);
  }

  #open(Cls, set, cap) {
    const stream = new Cls(kToken, this.#id, cap, () => set.delete(stream));
    set.add(stream);
    return stream;
  }

  /**
   * Invites agentId (hex), which must have published a key package and be
   * carried by a connected peer: fetches a key package from it, commits its
   * addition and sends it the Welcome; it then accepts or declines.
   * Options: `timeoutMs`. Rejects with X0xGroupError 'X0X_ERR_ALREADY_MEMBER'
   * or 'X0X_ERR_REFUSED', X0xError 'X0X_ERR_NO_ROUTE', 'X0X_ERR_TIMEOUT', ...
   */
  async invite(agentId, options) {
    checkId(agentId, 'agentId');
    const t = checkTimeout(options);
    await native.group('invite', this.#h(), agentId, t);
  }

  /**
   * Invites the agent whose key package (from its publishKeyPackage(),
   * handed over by other means) is keyPackage, sending it the Welcome over
   * a direct connection. Options: `timeoutMs`. Errors as invite().
   */
  async inviteKeyPackage(keyPackage, options) {
    if (typeof keyPackage === 'string') throw new TypeError('keyPackage must be a Buffer, Uint8Array or ArrayBuffer, got string');
    const bytes = toBytes(keyPackage, 'keyPackage');
    if (bytes.byteLength === 0) throw new RangeError('keyPackage must not be empty');
    const t = checkTimeout(options);
    await native.group('inviteKeyPackage', this.#h(), bytes, t);
  }

  /**
   * Removes member agentId (hex). Rejects with X0xGroupError
   * 'X0X_ERR_NOT_MEMBER' if it is not a member (also for this agent: use
   * leave()).
   */
  async remove(agentId) {
    checkId(agentId, 'agentId');
    await native.group('remove', this.#h(), agentId);
  }

  /** Replaces this agent's keys in the group (a commit), healing it from a leak of earlier keys. */
  async update() {
    await native.group('update', this.#h());
  }

  /**
   * Asks the other members to remove this agent; a 'removed' event follows
   * when they have. Rejects with X0xGroupError 'X0X_ERR_NOT_MEMBER' if this
   * agent is the only member (close() the group instead).
   */
  async leave() {
    await native.group('leave', this.#h());
  }

  /**
   * Creates a task list that belongs to the group: its operations travel
   * encrypted under the group's keys and only the group's members (present
   * or past) may write to it. name: at most 1,024 UTF-8 bytes (else
   * X0xError 'X0X_ERR_TOO_LARGE'). Resolves to a TaskList.
   */
  async createTaskList(name) {
    checkField(name, 'name', MAX_TASKLIST_NAME);
    return this.#list(await native.group('createTaskList', this.#member(), name));
  }

  /** Joins the group's task list listId (hex). Resolves to a TaskList. */
  async joinTaskList(listId) {
    checkId(listId, 'listId');
    return this.#list(await native.group('joinTaskList', this.#member(), listId));
  }

  #list(r) {
    const l = new TaskList(kToken, this.#agent, r.handle, r.id);
    if (this.#closed || this.#agent.closed) {
      l[kListClosed]();
      return l;
    }
    this.#lists.add(l);
    this.#agent[kListOpened](l);
    return l;
  }

  /**
   * Stops this agent's replica of the group for now: its streams end (queued
   * items stay readable), its task lists are left, its secrets in memory
   * zeroed. This agent stays a member for the others (see leave()), and the
   * group's state stays in dataDir: an agent created again from it has the
   * group open (Agent#groups(), Agent#group()); a removal forgets it. Call
   * it also after a 'removed' event, to release the handle. Calling it again
   * returns the same Promise; a no-op once the agent is closed.
   */
  close() {
    if (this.#closing) return this.#closing;
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#endAll();
    for (const l of this.#lists) {
      l[kListClosed]();
      this.#agent[kListClosed](l);
    }
    this.#lists.clear();
    this.#closing = this.#agent.closed ? Promise.resolve() : native.group('close', this.#handle).then(() => {});
    this.#agent[kGroupGone](this, this.#closing);
    return this.#closing;
  }

  #endAll() {
    for (const s of this.#messages) s[kEnd]();
    for (const s of this.#events) s[kEnd]();
    this.#messages.clear();
    this.#events.clear();
  }

  [kAgentClosed]() {
    this.#closed = true;
    this.#endAll();
    for (const l of this.#lists) l[kListClosed]();
    this.#lists.clear();
  }

  [kGroupMessage](msg) {
    for (const s of this.#messages) s[kPush](msg);
  }

  [kGroupChange](ev, change) {
    for (const s of this.#events) s[kPush](ev);
    if (change === GROUP_REMOVED) {
      this.#removed = true;
      this.#endAll();
    }
  }

  [kLag](n) {
    for (const s of this.#messages) s[kLag](n);
    for (const s of this.#events) s[kLag](n);
  }
}

// ---- Identity -----------------------------------------------------------

/** An agent key opened from an exported bundle (see Agent#exportIdentity). */
class Identity {
  #handle;
  #agentId;
  #destroyed = false;

  /** @private Use Identity.import(). */
  constructor(token, handle, agentId) {
    if (token !== kToken) throw new TypeError('use Identity.import(bundle, passphrase)');
    this.#handle = handle;
    this.#agentId = agentId;
  }

  /** Opens a bundle made by exportIdentity (about 0.25 s: Argon2id). */
  static async import(bundle, passphrase) {
    const b = toBytes(bundle, 'bundle', MAX_BUNDLE);
    const p = toBytes(passphrase, 'passphrase', MAX_PASSPHRASE);
    if (p.byteLength === 0) throw new RangeError('passphrase must not be empty');
    const r = await native.identityImport(b, p);
    return new Identity(kToken, r.handle, r.id);
  }

  /** The agent ID (hex) of this key. */
  get agentId() { return this.#agentId; }

  [kNative]() {
    if (this.#destroyed) throw new X0xError('X0X_ERR_INVALID_HANDLE', Status.X0X_ERR_INVALID_HANDLE, 'the identity was destroyed');
    return this.#handle;
  }

  /** Stores this key as the agent key of data directory dir. */
  async save(dir, passphrase) {
    checkString(dir, 'dir');
    const p = passphrase === undefined || passphrase === null ? undefined : toBytes(passphrase, 'passphrase', MAX_PASSPHRASE);
    return native.identitySave(this[kNative](), dir, p);
  }

  /** Releases the native handle (agents created with it are unaffected). Idempotent. */
  destroy() {
    if (this.#destroyed) return;
    this.#destroyed = true;
    native.identityDestroy(this.#handle);
  }
}

// ---- TaskList -----------------------------------------------------------

function parseSnapshot(json) {
  const s = JSON.parse(json);
  return {
    id: s.id,
    name: s.name,
    creator: s.creator ?? null,
    writers: s.writers || [],
    open: !!s.open,
    tasks: (s.tasks || []).map((t) => ({
      id: t.id,
      title: t.title,
      description: t.description,
      state: t.state,
      claimant: t.claimant ?? null,
      claims: t.claims || [],
      assignee: t.assignee ?? null,
      priority: t.priority,
      createdBy: t.created_by,
      createdAtMs: t.created_at_ms,
    })),
  };
}

/**
 * A replicated task list (a CRDT) shared by the agents that joined it.
 * Emits 'taskUpdated' for changes to this list (also emitted on the agent).
 * Strings are bounded: a name or title at most 1,024 UTF-8 bytes, a
 * description at most 16 KiB; a longer one rejects with X0xError
 * 'X0X_ERR_TOO_LARGE'. Once the list was left (by leave() on this or
 * another TaskList of the same list, or by closing its group) or its agent
 * closed, its methods reject with X0xError 'X0X_ERR_CLOSED' (as the Python
 * binding raises x0x.Closed).
 */
class TaskList extends EventEmitter {
  #agent;
  #handle;
  #id;
  #left = false;
  #leaving = null;

  /** @private Use TaskList.create() or TaskList.join(). */
  constructor(token, agent, handle, id) {
    super();
    if (token !== kToken) throw new TypeError('use TaskList.create(agent, name) or TaskList.join(agent, listId)');
    this.#agent = agent;
    this.#handle = handle;
    this.#id = id;
  }

  static #checkAgent(agent) {
    if (!(agent instanceof Agent)) throw new TypeError(`agent must be an Agent, got ${typeName(agent)}`);
    return agent;
  }

  /** Creates a new list named name (at most 1,024 UTF-8 bytes; may be empty). */
  static async create(agent, name) {
    TaskList.#checkAgent(agent);
    checkField(name, 'name', MAX_TASKLIST_NAME);
    const r = await native.tasklist('create', agent[kNative](), name);
    const l = new TaskList(kToken, agent, r.handle, r.id);
    agent[kListOpened](l);
    return l;
  }

  /** Joins the list listId (hex, from list.id on a member). */
  static async join(agent, listId) {
    TaskList.#checkAgent(agent);
    checkId(listId, 'listId');
    const r = await native.tasklist('join', agent[kNative](), listId);
    const l = new TaskList(kToken, agent, r.handle, r.id);
    agent[kListOpened](l);
    return l;
  }

  /** The list ID (64 hex digits): give it to others so they can join. */
  get id() { return this.#id; }
  /** The agent this list belongs to. */
  get agent() { return this.#agent; }

  #h() {
    if (this.#agent.closed) throw closedError();
    if (this.#left) throw closedError('the task list was left');
    return this.#handle;
  }

  // Runs a library operation on the list. The library invalidates every
  // handle of a list when one of them is left (or its group closed): a
  // stale handle is reported as the list being left, X0X_ERR_CLOSED.
  async #op(op, ...args) {
    const h = this.#h();
    try {
      return await native.tasklist(op, h, ...args);
    } catch (err) {
      if (err instanceof X0xError && err.code === 'X0X_ERR_INVALID_HANDLE') {
        this.#left = true;
        throw closedError(this.#agent.closed ? 'the agent is closed' : 'the task list was left');
      }
      throw err;
    }
  }

  /**
   * Adds a task at the end; resolves to its ID (hex). title: at most 1,024
   * UTF-8 bytes; description: at most 16 KiB (X0xError 'X0X_ERR_TOO_LARGE'
   * beyond).
   */
  async addTask(title, description) {
    checkField(title, 'title', MAX_TASK_TITLE);
    if (description !== undefined && description !== null) checkField(description, 'description', MAX_TASK_DESCRIPTION);
    return this.#op('add', title, description ?? undefined);
  }

  /** Claims a task for this agent. Rejects with X0xTaskError X0X_ERR_TASK_DONE if it is done. */
  async claimTask(taskId) { return this.#op('claim', checkId(taskId, 'taskId')); }

  /** Marks a task this agent claimed as done. */
  async completeTask(taskId) { return this.#op('complete', checkId(taskId, 'taskId')); }

  /** Reopens a task (claimed or done -> empty). */
  async reopenTask(taskId) { return this.#op('reopen', checkId(taskId, 'taskId')); }

  /**
   * Lets agentId (hex) write to the list. Only the list's creator may;
   * others reject with X0xTaskError X0X_ERR_NOT_WRITER.
   */
  async addWriter(agentId) { return this.#op('addWriter', checkId(agentId, 'agentId')); }

  /** Revokes agentId's write access (creator only). */
  async removeWriter(agentId) { return this.#op('removeWriter', checkId(agentId, 'agentId')); }

  /** Lets every agent write (true) or only the creator and its writers (creator only). */
  async setOpen(open) {
    if (typeof open !== 'boolean') throw new TypeError(`open must be a boolean, got ${typeName(open)}`);
    return this.#op('setOpen', open);
  }

  /** Removes a task (a concurrent edit elsewhere keeps it: add wins). */
  async removeTask(taskId) { return this.#op('remove', checkId(taskId, 'taskId')); }

  /** Moves a task just after afterId, or to the front when afterId is null. */
  async moveTask(taskId, afterId) {
    checkId(taskId, 'taskId');
    if (afterId !== null && afterId !== undefined) checkId(afterId, 'afterId');
    return this.#op('move', taskId, afterId ?? null);
  }

  /**
   * Sets fields of a task: title (at most 1,024 UTF-8 bytes), description
   * (at most 16 KiB), assignee (agent ID hex, or null to unassign),
   * priority (integer 0..255). Each field is a separate signed operation,
   * applied in that order.
   */
  async updateTask(taskId, fields) {
    checkId(taskId, 'taskId');
    const f = checkOptions(fields, ['title', 'description', 'assignee', 'priority'], 'updateTask fields');
    const ops = [];
    if (f.title !== undefined) ops.push(['title', checkField(f.title, 'title', MAX_TASK_TITLE)]);
    if (f.description !== undefined) ops.push(['description', checkField(f.description, 'description', MAX_TASK_DESCRIPTION)]);
    if (f.assignee !== undefined) ops.push(['assignee', f.assignee === null ? '' : checkId(f.assignee, 'assignee')]);
    if (f.priority !== undefined) {
      if (typeof f.priority !== 'number') throw new TypeError(`priority must be a number, got ${typeName(f.priority)}`);
      if (!Number.isInteger(f.priority) || f.priority < 0 || f.priority > 255) {
        throw new RangeError(`priority must be an integer from 0 to 255, got ${f.priority}`);
      }
      ops.push(['priority', String(f.priority)]);
    }
    if (ops.length === 0) throw new TypeError('updateTask: no field to update');
    for (const op of ops) await this.#op('update', taskId, op);
  }

  /** Resolves to a snapshot {id, name, tasks: [...]} in list order. */
  async listTasks() {
    return parseSnapshot(await this.#op('snapshot'));
  }

  /**
   * Stops syncing the list (its state stays on disk). Every other TaskList
   * of the same list on this agent is left too (the library invalidates
   * all its handles). Calling it again returns the same Promise.
   */
  leave() {
    if (this.#leaving) return this.#leaving;
    if (this.#left) return Promise.resolve();
    let h;
    try {
      h = this.#h();
    } catch (err) {
      return Promise.reject(err);
    }
    for (const l of this.#agent[kListsOf](this.#id)) {
      l[kListClosed]();
      this.#agent[kListClosed](l);
    }
    this.#left = true;
    this.#agent[kListClosed](this);
    this.#leaving = native.tasklist('leave', h).catch((err) => {
      // Already invalidated by the library (its group was closed): left.
      if (!(err instanceof X0xError && err.code === 'X0X_ERR_INVALID_HANDLE')) throw err;
    });
    return this.#leaving;
  }

  [kListClosed]() { this.#left = true; }
}

module.exports = {
  Agent,
  Topic,
  Stream,
  Subscription,
  TopicEvents,
  TaskList,
  Group,
  GroupMessages,
  GroupEvents,
  Identity,
  X0xError,
  X0xTaskError,
  X0xGroupError,
  LaggedError,
  Status,
  EventKind,
  /** ABI version of the linked library: (major << 16) | minor. */
  abiVersion: () => native.abiVersion(),
  /** Which optional library functions the linked libx0x provides. */
  capabilities: Object.freeze({ ...native.capabilities }),
};
