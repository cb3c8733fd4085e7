// Connection life cycle and login (protocol.md §1.6–§1.10).

import assert from 'node:assert/strict';
import { scenario, wsBinary } from './harness.mjs';
import { fileAuth } from './fixtures.mjs';
import { is, TOPIC, CONNECTION_ACTION, AUTH_ACTION } from './clients.mjs';

scenario('connect and login with open auth', async (h) => {
  const server = await h.server();
  const c = h.client(server);

  const clientData = await c.login({ username: 'alice' });

  // Open auth sends no clientData; the client reports that as null.
  assert.equal(clientData, null);
  assert.equal(c.state, 'OPEN');
  assert.deepEqual(c.states.items, ['AWAITING_CONNECTION', 'CHALLENGING', 'AWAITING_AUTHENTICATION', 'AUTHENTICATING', 'OPEN']);
  assert.ok(c.received.items.some(is.msg(TOPIC.CONNECTION, CONNECTION_ACTION.ACCEPT)), 'CHALLENGE answered with ACCEPT');
  assert.ok(c.received.items.some(is.msg(TOPIC.AUTH, AUTH_ACTION.AUTH_SUCCESSFUL)));
  assert.deepEqual(c.errors.items, []);
});

scenario('pings are answered with pongs once logged in, so a fast-heartbeat client stays connected', async (h) => {
  const server = await h.server();
  // The client drops the socket when it receives nothing for 2 × heartbeatInterval.
  const c = await h.loggedIn(server, { username: 'alice' }, { heartbeatInterval: 200 });

  for (let i = 0; i < 4; i++) {
    await c.received.next(is.msg(TOPIC.CONNECTION, CONNECTION_ACTION.PONG), `PONG #${i + 1}`);
  }
  assert.equal(c.state, 'OPEN');
  assert.deepEqual(c.sockets.items, ['open'], 'no reconnect happened');
});

scenario('login denied by file auth, then a good login on the same client', async (h) => {
  const { config, files } = fileAuth({
    alice: { password: 'alice-secret', clientData: { favouriteColor: 'red' }, serverData: { role: 'user' } },
  });
  const server = await h.server({ ...config, connectionEndpoints: wsBinary({ maxAuthAttempts: 5 }) }, { files });
  const c = h.client(server);

  // Wrong password: AUTH_UNSUCCESSFUL without data → the client's generic reason.
  await assert.rejects(c.login({ username: 'alice', password: 'wrong' }), { reason: 'INVALID_AUTHENTICATION_DETAILS' });
  assert.equal(c.state, 'AWAITING_AUTHENTICATION');

  // Unknown user: the file plugin has no opinion, the server still answers AUTH_UNSUCCESSFUL.
  await assert.rejects(c.login({ username: 'mallory', password: 'x' }), { reason: 'INVALID_AUTHENTICATION_DETAILS' });

  // Missing password: the plugin's clientData becomes the reason.
  await assert.rejects(c.login({ username: 'alice' }), {
    reason: { error: 'missing authentication parameter: username or/and password' },
  });

  const clientData = await c.login({ username: 'alice', password: 'alice-secret' });
  assert.deepEqual(clientData, { favouriteColor: 'red' });
  assert.equal(c.state, 'OPEN');
  assert.deepEqual(c.sockets.items, ['open'], 'all attempts used the same connection');
});

scenario('too many failed logins end the connection for good', async (h) => {
  const { config, files } = fileAuth({ alice: { password: 'alice-secret' } });
  const server = await h.server({ ...config, connectionEndpoints: wsBinary({ maxAuthAttempts: 2 }) }, { files });
  const c = h.client(server);

  await assert.rejects(c.login({ username: 'alice', password: 'wrong-1' }), { reason: 'INVALID_AUTHENTICATION_DETAILS' });
  const terminal = c.states.next((s) => s === 'TOO_MANY_AUTH_ATTEMPTS', 'TOO_MANY_AUTH_ATTEMPTS state');
  const error = c.errors.next((e) => e.event === 'TOO_MANY_AUTH_ATTEMPTS', 'TOO_MANY_AUTH_ATTEMPTS error');
  const closed = c.sockets.next((s) => s === 'close', 'socket close');

  await assert.rejects(c.login({ username: 'alice', password: 'wrong-2' }), { reason: 'INVALID_AUTHENTICATION_DETAILS' });
  await terminal;
  assert.equal((await error).topic, 'AUTH');
  await closed; // closed by the server: the client never closes in this state by itself

  assert.equal(c.state, 'TOO_MANY_AUTH_ATTEMPTS', 'terminal state: no reconnect');
  assert.deepEqual(c.sockets.items, ['open', 'close']);
  assert.ok(c.received.items.some(is.msg(TOPIC.AUTH, AUTH_ACTION.TOO_MANY_AUTH_ATTEMPTS)));
});

scenario('a client that never logs in gets AUTHENTICATION_TIMEOUT', async (h) => {
  const server = await h.server({ connectionEndpoints: wsBinary({ unauthenticatedClientTimeout: 1000 }) });
  const c = h.client(server);

  const error = await c.errors.next((e) => e.event === 'AUTHENTICATION_TIMEOUT', 'AUTHENTICATION_TIMEOUT error');
  assert.equal(error.topic, 'CONNECTION');
  await c.sockets.seen((s) => s === 'close', 'socket close');

  assert.equal(c.state, 'AUTHENTICATION_TIMEOUT', 'terminal state: no reconnect');
  assert.deepEqual(c.sockets.items, ['open', 'close']);
  assert.ok(c.received.items.some(is.msg(TOPIC.CONNECTION, CONNECTION_ACTION.AUTHENTICATION_TIMEOUT)));
});
