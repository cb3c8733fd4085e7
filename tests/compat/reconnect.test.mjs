// Client reconnection after a server restart (protocol.md §1.11): the server keeps nothing, the
// client re-authenticates with its cached login data and re-subscribes by itself.

import assert from 'node:assert/strict';
import { scenario } from './harness.mjs';
import { is, TOPIC, AUTH_ACTION, EVENT_ACTION } from './clients.mjs';

// Retry quickly and long enough to outlast a restart (default: 4 s increments, 5 attempts).
const RECONNECT = { reconnectIntervalIncrement: 100, maxReconnectInterval: 500, maxReconnectAttempts: 60 };
const RESTART_WAIT_MS = 20_000;

scenario('after a server restart clients reconnect, log in again and their subscriptions work', async (h) => {
  const server = await h.server();
  const sub = await h.loggedIn(server, { username: 'sub' }, RECONNECT);
  const pub = await h.loggedIn(server, { username: 'pub' }, RECONNECT);
  const news = sub.collector('news/x');
  await sub.subscribe('news/x', news.callback);

  const before = news.next(() => true, 'event before restart');
  pub.emit('news/x', 'before restart');
  assert.equal((await before).data, 'before restart');

  // Registered before the restart: these only match what happens afterwards.
  const reopened = [sub, pub].map((c) => c.states.next((s) => s === 'OPEN', 'OPEN after restart', RESTART_WAIT_MS));
  const reauth = sub.sent.next(is.msg(TOPIC.AUTH, AUTH_ACTION.REQUEST), 'AUTH REQUEST after restart', RESTART_WAIT_MS);
  const resubscribed = sub.received.next(is.ack(TOPIC.EVENT, EVENT_ACTION.SUBSCRIBE), 're-subscribe ack', RESTART_WAIT_MS);

  await server.restart();
  await Promise.all(reopened);
  assert.ok(sub.states.items.includes('RECONNECTING'), 'the client noticed the lost connection');
  assert.deepEqual((await reauth).parsedData, { username: 'sub' }, 'same login data re-sent');
  await resubscribed;

  const after = news.next((x) => x.data === 'after restart', 'event after restart');
  pub.emit('news/x', 'after restart');
  await after;
  assert.equal(sub.sockets.filter((s) => s === 'open').length >= 2, true, 'a new socket was opened');
  assert.equal(sub.state, 'OPEN');
  assert.equal(pub.state, 'OPEN');
});
