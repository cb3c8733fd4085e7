// RPC (protocol.md §6): providing, routing, accept/response/error, reject and reroute,
// NO_RPC_PROVIDER, the accept and response timeouts, a provider leaving mid-call, and the
// requestor name/data a server can hand to providers.
//
// `make()` rejects with the action name for server-side failures and with the provider's
// payload for `response.error(...)` (§6.4).

import assert from 'node:assert/strict';
import { scenario } from './harness.mjs';
import { fileAuth } from './fixtures.mjs';
import { C, DEFAULT_WAIT_MS, Recorder, TOPIC, is, provideRpc as provide, withTimeout } from './clients.mjs';

const { RPC_ACTION } = C;

/** Small timeouts so the timeout scenarios stay fast. */
const FAST_TIMEOUTS = { rpc: { ackTimeout: 300, responseTimeout: 900 } };


/** make() as {ok, value} / {ok: false, error}, bounded in time. */
async function call(client, name, data, timeoutMs = DEFAULT_WAIT_MS) {
  try {
    return { ok: true, value: await withTimeout(client.ds.rpc.make(name, data), `result of rpc ${name}`, timeoutMs) };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('no result')) throw error;
    return { ok: false, error };
  }
}

scenario('rpc: a provider answers; data in both directions keeps its type', async (h) => {
  const server = await h.server();
  const provider = await h.loggedIn(server, { username: 'provider' });
  const requestor = await h.loggedIn(server, { username: 'requestor' });
  const seen = new Recorder('add requests');
  await provide(provider, 'add', (data, response, requestorInfo) => {
    seen.push({ data, requestorInfo });
    response.send(data.a + data.b);
  });
  await provide(provider, 'echo', (data, response) => response.send(data));

  assert.deepEqual(await call(requestor, 'add', { a: 1, b: 2 }), { ok: true, value: 3 });
  assert.deepEqual(seen.items, [{ data: { a: 1, b: 2 }, requestorInfo: undefined }], 'no requestor info by default');
  for (const payload of [{ nested: [1, { x: null }] }, 'text', 0, false, null]) {
    assert.deepEqual(await call(requestor, 'echo', payload), { ok: true, value: payload });
  }

  // On the wire: the requestor got ACCEPT then RESPONSE for its own correlation id.
  const [request] = requestor.sent.filter((m) => m.topic === TOPIC.RPC && m.action === RPC_ACTION.REQUEST && m.name === 'add');
  const replies = requestor.received.filter((m) => m.topic === TOPIC.RPC && m.correlationId === request.correlationId);
  assert.deepEqual(replies.map((m) => RPC_ACTION[m.action]), ['ACCEPT', 'RESPONSE']);
  assert.deepEqual(requestor.errors.items, []);
  assert.deepEqual(provider.errors.items, []);
});

scenario('rpc: response.error() fails the call with the provider\'s payload', async (h) => {
  const server = await h.server();
  const provider = await h.loggedIn(server, { username: 'provider' });
  const requestor = await h.loggedIn(server, { username: 'requestor' });
  await provide(provider, 'fail', (data, response) => response.error(`cannot ${data}`));
  await provide(provider, 'fail-object', (_data, response) => response.error({ code: 42 }));

  assert.deepEqual(await call(requestor, 'fail', 'divide'), { ok: false, error: 'cannot divide' });
  assert.deepEqual(await call(requestor, 'fail-object'), { ok: false, error: { code: 42 } });
  assert.ok(requestor.received.items.some(is.msg(TOPIC.RPC, RPC_ACTION.REQUEST_ERROR, { name: 'fail', data: '"cannot divide"' })));
});

scenario('rpc: a rejected request is rerouted to the other provider; all reject → NO_RPC_PROVIDER', async (h) => {
  const server = await h.server();
  const providers = { p1: await h.loggedIn(server, { username: 'p1' }), p2: await h.loggedIn(server, { username: 'p2' }) };
  const requestor = await h.loggedIn(server, { username: 'requestor' });
  const asked = new Recorder('providers asked');
  for (const [who, client] of Object.entries(providers)) {
    await provide(client, 'flaky', (_data, response) => {
      // Whoever is asked first rejects; the next one answers.
      const first = asked.items.length === 0;
      asked.push(who);
      if (first) response.reject();
      else response.send(`ok from ${who}`);
    });
    await provide(client, 'unwilling', (_data, response) => {
      asked.push(who);
      response.reject();
    });
  }

  const result = await call(requestor, 'flaky');
  assert.equal(asked.items.length, 2);
  assert.notEqual(asked.items[0], asked.items[1], 'the rejecting provider is not asked again');
  assert.deepEqual(result, { ok: true, value: `ok from ${asked.items[1]}` });

  asked.items.length = 0;
  assert.deepEqual(await call(requestor, 'unwilling'), { ok: false, error: 'NO_RPC_PROVIDER' });
  assert.deepEqual([...asked.items].sort(), ['p1', 'p2'], 'each provider asked exactly once');
});

scenario('rpc: no provider → NO_RPC_PROVIDER; unprovide stops routing; a provider may call itself', async (h) => {
  const server = await h.server();
  const client = await h.loggedIn(server, { username: 'solo' });
  assert.deepEqual(await call(client, 'nobody'), { ok: false, error: 'NO_RPC_PROVIDER' });
  const noProvider = client.received.items.find(is.msg(TOPIC.RPC, RPC_ACTION.NO_RPC_PROVIDER, { name: 'nobody' }));
  assert.ok(noProvider.correlationId, 'NO_RPC_PROVIDER carries the correlation id');

  await provide(client, 'self', (data, response) => response.send(`self ${data}`));
  assert.deepEqual(await call(client, 'self', 1), { ok: true, value: 'self 1' });

  const from = client.received.mark();
  client.ds.rpc.unprovide('self');
  await client.received.seen(is.ack(TOPIC.RPC, RPC_ACTION.UNPROVIDE), 'UNPROVIDE ack', DEFAULT_WAIT_MS, from);
  assert.deepEqual(await call(client, 'self', 2), { ok: false, error: 'NO_RPC_PROVIDER' });
});

scenario('rpc: accept timeout and response timeout; late replies are refused', async (h) => {
  const server = await h.server(FAST_TIMEOUTS);
  const provider = await h.loggedIn(server, { username: 'provider' });
  const requestor = await h.loggedIn(server, { username: 'requestor' });
  const pending = {};
  await provide(provider, 'never-accepts', (_data, response) => {
    response.autoAccept = false;
    pending.unaccepted = response;
  });
  await provide(provider, 'never-answers', (_data, response) => {
    response.accept();
    pending.unanswered = response;
  });

  assert.deepEqual(await call(requestor, 'never-accepts'), { ok: false, error: 'ACCEPT_TIMEOUT' });

  const accepted = requestor.received.next(is.msg(TOPIC.RPC, RPC_ACTION.ACCEPT, { name: 'never-answers' }), 'ACCEPT');
  assert.deepEqual(await call(requestor, 'never-answers'), { ok: false, error: 'RESPONSE_TIMEOUT' });
  await accepted;

  // A reply after the call ended gets INVALID_RPC_CORRELATION_ID {originalAction, isError}.
  const refused = provider.received.next(
    is.msg(TOPIC.RPC, RPC_ACTION.INVALID_RPC_CORRELATION_ID, { name: 'never-answers', originalAction: RPC_ACTION.RESPONSE, isError: true }),
    'INVALID_RPC_CORRELATION_ID for the late response',
  );
  pending.unanswered.send('too late');
  await refused;
});

scenario('rpc: a provider leaving mid-call ends the call by timeout', async (h) => {
  const server = await h.server(FAST_TIMEOUTS);
  const requestor = await h.loggedIn(server, { username: 'requestor' });

  const quitter = await h.loggedIn(server, { username: 'quitter' });
  await provide(quitter, 'vanish', (_data, response) => {
    response.autoAccept = false;
    quitter.close();
  });
  assert.deepEqual(await call(requestor, 'vanish'), { ok: false, error: 'ACCEPT_TIMEOUT' });

  const accepter = await h.loggedIn(server, { username: 'accepter' });
  await provide(accepter, 'vanish-after-accept', (_data, response) => {
    response.accept();
    setTimeout(() => accepter.close(), 50);
  });
  assert.deepEqual(await call(requestor, 'vanish-after-accept'), { ok: false, error: 'RESPONSE_TIMEOUT' });

  // Its provisions are gone with it.
  assert.deepEqual(await call(requestor, 'vanish'), { ok: false, error: 'NO_RPC_PROVIDER' });
});

scenario('rpc: provideRequestorName hands the requestor\'s user id to the provider', async (h) => {
  const server = await h.server({ rpc: { provideRequestorName: true } });
  const provider = await h.loggedIn(server, { username: 'provider' });
  const requestor = await h.loggedIn(server, { username: 'alice' });
  const seen = new Recorder('requestor info');
  await provide(provider, 'who', (data, response, requestorInfo) => {
    seen.push(requestorInfo);
    response.send(data);
  });
  assert.deepEqual(await call(requestor, 'who', 1), { ok: true, value: 1 });
  assert.equal(seen.items[0].requestorName, 'alice');
  assert.equal(seen.items[0].requestorData, undefined, 'no requestor data unless configured');
  assert.ok(provider.received.items.some(is.msg(TOPIC.RPC, RPC_ACTION.REQUEST, { name: 'who', requestorName: 'alice' })));
});

scenario('rpc: provideRequestorData hands the requestor\'s client data to the provider', async (h) => {
  const { config, files } = fileAuth({
    alice: { password: 'alice-pw', clientData: { favouriteColor: 'red' } },
    provider: { password: 'provider-pw' },
  });
  const server = await h.server({ ...config, rpc: { provideRequestorName: true, provideRequestorData: true } }, { files });
  const provider = await h.loggedIn(server, { username: 'provider', password: 'provider-pw' });
  const requestor = await h.loggedIn(server, { username: 'alice', password: 'alice-pw' });
  const seen = new Recorder('requestor info');
  await provide(provider, 'who', (_data, response, requestorInfo) => {
    seen.push(requestorInfo);
    response.send('ok');
  });
  assert.deepEqual(await call(requestor, 'who'), { ok: true, value: 'ok' });
  const [info] = seen.items;
  assert.equal(info.requestorName, 'alice');
  // JSON text on the wire; the client parses it.
  assert.deepEqual(info.requestorData, { favouriteColor: 'red' });
  const [request] = provider.received.filter(is.msg(TOPIC.RPC, RPC_ACTION.REQUEST, { name: 'who' }));
  assert.equal(request.requestorName, 'alice');
});
