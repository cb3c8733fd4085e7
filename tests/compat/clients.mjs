// Client-side helpers: the official @deepstream/client wrapped with recorders for what it
// receives, so scenarios can assert on (and wait for) messages, state changes and errors.
//
// The wire tap hooks the client's own socket factory (the `socketFactory` client option), so
// the client behaves exactly as in production; we only observe the decoded frames.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { DeepstreamClient, C } = require('@deepstream/client');
// The client's default socket factory; internal module of the pinned 7.0.5 package.
const { socketFactory } = require('@deepstream/client/dist/src/connection/socket-factory.js');

export { C };
export const { TOPIC, EVENT_ACTION, AUTH_ACTION, CONNECTION_ACTION, CONNECTION_STATE } = C;

export const DEFAULT_WAIT_MS = 5_000;

/** Human-readable form of a decoded message, for failure output. */
export function describe(m) {
  const topic = C.TOPIC[m.topic] ?? m.topic;
  const action = C.ACTIONS[m.topic]?.[m.action] ?? m.action;
  const fields = Object.entries(m)
    .filter(([k, v]) => !['topic', 'action', 'parsedData'].includes(k) && v !== undefined)
    .map(([k, v]) => `${k}=${JSON.stringify(k === 'originalAction' ? (C.ACTIONS[m.topic]?.[v] ?? v) : v)}`);
  return `${topic} ${action}${fields.length ? ' {' + fields.join(', ') + '}' : ''}`;
}

/**
 * An append-only log with waiters. `next()` waits for a *future* item, `seen()` also accepts
 * one already recorded. Every wait is bounded and fails with the recent history in the message.
 */
export class Recorder {
  constructor(label, format = (x) => JSON.stringify(x)) {
    this.label = label;
    this.format = format;
    this.items = [];
    this.waiters = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.pred(item)) w.resolve(item);
    }
  }

  filter(pred) {
    return this.items.filter(pred);
  }

  next(pred, what = 'matching item', timeoutMs = DEFAULT_WAIT_MS) {
    return this.wait(pred, what, timeoutMs);
  }

  /** Number of items so far; pass it to seen() to ignore older history. */
  mark() {
    return this.items.length;
  }

  seen(pred, what = 'matching item', timeoutMs = DEFAULT_WAIT_MS, from = 0) {
    const hit = this.items.slice(from).find(pred);
    return hit !== undefined ? Promise.resolve(hit) : this.wait(pred, what, timeoutMs);
  }

  wait(pred, what, timeoutMs) {
    let waiter;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const recent = this.items.slice(-15).map(this.format).join('\n    ');
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms; last recorded:\n    ${recent || '(nothing)'}`));
      }, timeoutMs);
      waiter = {
        pred,
        resolve: (item) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(item);
        },
        cancel: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
        },
      };
      this.waiters.add(waiter);
    });
    promise.catch(() => {}); // a wait abandoned by a failing scenario must not become unhandled
    return promise;
  }

  dispose() {
    for (const w of [...this.waiters]) w.cancel();
  }
}

/** Bounds a promise the client API gives us (login() never settles if the server is silent). */
export function withTimeout(promise, what, timeoutMs = DEFAULT_WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Predicate helpers over decoded messages. */
export const is = {
  msg: (topic, action, extra = {}) => (m) =>
    m.topic === topic && m.action === action && Object.entries(extra).every(([k, v]) => m[k] === v),
  ack: (topic, action, extra = {}) => is.msg(topic, action, { isAck: true, ...extra }),
  emit: (name) => is.msg(TOPIC.EVENT, EVENT_ACTION.EMIT, { name }),
};

/** Provides the RPC `name` and resolves once the server acknowledged the PROVIDE carrying it. */
export async function provideRpc(client, name, callback) {
  const from = client.received.mark();
  const sent = client.sent.next(
    (m) => m.topic === C.TOPIC.RPC && m.action === C.RPC_ACTION.PROVIDE && m.names?.includes(name),
    `PROVIDE carrying ${name}`,
  );
  client.ds.rpc.provide(name, callback);
  const { correlationId } = await sent;
  await client.received.seen(is.ack(C.TOPIC.RPC, C.RPC_ACTION.PROVIDE, { correlationId }), `PROVIDE ack ${correlationId}`, DEFAULT_WAIT_MS, from);
}

/** getRecord and wait until it is ready. */
export async function ready(client, name) {
  const record = client.ds.record.getRecord(name);
  await withTimeout(record.whenReady(), `${name} ready`);
  return record;
}

/** Every value a record (or list) subscription callback is given. */
export function changes(record, label = record.name) {
  const seen = new Recorder(`${label} changes`);
  record.subscribe((data) => seen.push(data));
  return seen;
}

/** Waits until `record.get()` equals `expected`. */
export async function until(seen, record, expected, what) {
  const matches = () => { try { assert.deepEqual(record.get(), expected); return true; } catch { return false; } };
  if (!matches()) await seen.next(matches, what);
}

/**
 * A DeepstreamClient plus recorders:
 *   received  decoded frames the client got (after the client handled them)
 *   sent      messages the client wrote
 *   states    connectionStateChanged values
 *   errors    {msg, event, topic} from client.on('error', …)
 *   sockets   'open' / 'close' of the underlying WebSocket
 * The client connects immediately (no lazyConnect); call login() to authenticate.
 */
export class TestClient {
  constructor(url, options = {}) {
    this.url = url;
    this.received = new Recorder(`${url} received`, describe);
    this.sent = new Recorder(`${url} sent`, describe);
    this.states = new Recorder(`${url} connection state`, String);
    this.errors = new Recorder(`${url} errors`, (e) => `${e.topic} ${e.event} ${JSON.stringify(e.msg)}`);
    this.sockets = new Recorder(`${url} socket`, String);
    this.rawSockets = [];

    this.ds = new DeepstreamClient(url, {
      // Explicitly: only with this flag set does 7.0.5 use plain timers that close() clears.
      nativeTimerRegistry: true,
      ...options,
      socketFactory: (u, socketOptions, heartbeatInterval) => this.tapSocket(socketFactory(u, socketOptions, heartbeatInterval)),
    });
    this.ds.on('connectionStateChanged', (s) => this.states.push(s));
    this.ds.on('error', (msg, event, topic) => this.errors.push({ msg, event, topic }));
  }

  tapSocket(socket) {
    this.rawSockets.push(socket);
    let handler = null;
    const received = this.received;
    // The client assigns `onparsedmessages` after the factory returns; intercept it so every
    // decoded message is recorded once the client has processed it.
    Object.defineProperty(socket, 'onparsedmessages', {
      configurable: true,
      get: () => (messages) => {
        try {
          handler(messages);
        } finally {
          for (const m of messages) received.push(m);
        }
      },
      set: (fn) => { handler = fn; },
    });
    const send = socket.sendParsedMessage;
    socket.sendParsedMessage = (message) => {
      try {
        return send(message);
      } finally {
        this.sent.push({ ...message }); // after send(): `data` is then filled in from parsedData
      }
    };
    socket.on('open', () => this.sockets.push('open'));
    socket.on('close', () => this.sockets.push('close'));
    return socket;
  }

  get state() {
    return this.ds.getConnectionState();
  }

  /** Resolves with the client data or rejects with the client's reason object. */
  login(authData = {}) {
    return withTimeout(this.ds.login(authData), `login result for ${JSON.stringify(authData)}`);
  }

  // ---- events -------------------------------------------------------------------------------

  /**
   * Subscribes and resolves once the server acknowledged the (bulk) SUBSCRIBE that carried it.
   * Names subscribed in the same tick share one bulk message and thus one ack.
   */
  async subscribe(name, callback) {
    // Correlation ids restart at "0" on every connection: only acks after this point count.
    const from = this.received.mark();
    const sent = this.sent.next((m) => m.topic === TOPIC.EVENT && m.action === EVENT_ACTION.SUBSCRIBE && m.names?.includes(name), `SUBSCRIBE carrying ${name}`);
    this.ds.event.subscribe(name, callback);
    const { correlationId } = await sent;
    return this.received.seen(is.ack(TOPIC.EVENT, EVENT_ACTION.SUBSCRIBE, { correlationId }), `SUBSCRIBE ack for correlationId ${correlationId}`, DEFAULT_WAIT_MS, from);
  }

  async unsubscribe(name, callback) {
    const from = this.received.mark();
    const sent = this.sent.next((m) => m.topic === TOPIC.EVENT && m.action === EVENT_ACTION.UNSUBSCRIBE && m.names?.includes(name), `UNSUBSCRIBE carrying ${name}`);
    this.ds.event.unsubscribe(name, callback);
    const { correlationId } = await sent;
    return this.received.seen(is.ack(TOPIC.EVENT, EVENT_ACTION.UNSUBSCRIBE, { correlationId }), `UNSUBSCRIBE ack for correlationId ${correlationId}`, DEFAULT_WAIT_MS, from);
  }

  /** Registers an event listen pattern and resolves once the LISTEN ack arrived. */
  async listen(pattern, callback) {
    const ack = this.received.next(is.ack(TOPIC.EVENT, EVENT_ACTION.LISTEN, { name: pattern }), `LISTEN ack for ${pattern}`);
    this.ds.event.listen(pattern, callback);
    return ack;
  }

  emit(name, data) {
    this.ds.event.emit(name, data);
  }

  /** Records every payload delivered to a subscription callback for `name`. */
  collector(name) {
    const rec = new Recorder(`${this.url} event ${name}`);
    const cb = (data) => rec.push({ data });
    rec.callback = cb;
    return rec;
  }

  // ---- teardown / diagnostics ----------------------------------------------------------------

  async close() {
    for (const r of [this.received, this.sent, this.states, this.errors, this.sockets]) r.dispose();
    try { this.ds.close(); } catch { /* already closed */ }
    // A close handshake towards a dead server would keep the process alive for ws's 30 s
    // close timeout; cut such sockets off.
    for (const s of this.rawSockets) {
      if (s.readyState !== 3 /* CLOSED */) {
        await new Promise((resolve) => {
          const t = setTimeout(() => { s.terminate(); resolve(); }, 500);
          s.once('close', () => { clearTimeout(t); resolve(); });
        });
      }
    }
  }

  report() {
    return [
      `===== client ${this.url} =====`,
      `states: ${this.states.items.join(' -> ')}`,
      `errors: ${this.errors.items.map(this.errors.format).join('; ') || '(none)'}`,
      'received:',
      ...this.received.items.map((m) => `  ${describe(m)}`),
      'sent:',
      ...this.sent.items.map((m) => `  ${describe(m)}`),
    ].join('\n');
  }
}
