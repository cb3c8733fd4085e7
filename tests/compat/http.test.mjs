// The HTTP API (server.md §5) next to the official client: what one side does, the other sees.
// Records written over HTTP reach subscribed clients, RPCs made over HTTP are served by a
// client's provider, events emitted over HTTP reach subscribers, and HTTP reads see what
// clients wrote.

import assert from 'node:assert/strict';
import { scenario, wsBinary } from './harness.mjs';
import { provideRpc, withTimeout } from './clients.mjs';

const WITH_HTTP = { connectionEndpoints: [...wsBinary(), { type: 'http', options: { requestTimeout: 3000 } }] };

/** POST /api with a JIF batch; returns the parsed answer. */
async function api(server, body) {
  const response = await fetch(`http://127.0.0.1:${server.port}/api`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ body }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

scenario('http: a record written over HTTP reaches a subscribed client, and HTTP reads what clients write', async (h) => {
  const server = await h.server(WITH_HTTP);
  const client = await h.loggedIn(server, { username: 'ws' });
  const record = client.ds.record.getRecord('doc/1');
  await withTimeout(record.whenReady(), 'doc/1 ready');
  const changed = new Promise((resolve) => record.subscribe('title', resolve));

  const written = await api(server, [{ topic: 'record', action: 'write', recordName: 'doc/1', data: { title: 'from http' } }]);
  assert.deepEqual(written, { result: 'SUCCESS', body: [{ success: true }] });
  assert.equal(await withTimeout(changed, 'update at the client'), 'from http');
  assert.equal(record.version, 1);

  await new Promise((resolve, reject) => record.set('title', 'from ws', (error) => (error ? reject(error) : resolve())));
  const read = await api(server, [{ topic: 'record', action: 'read', recordName: 'doc/1' }]);
  assert.deepEqual(read.body[0], { success: true, version: 2, data: { title: 'from ws' } });

  const conflict = await api(server, [{ topic: 'record', action: 'write', recordName: 'doc/1', data: { title: 'stale' }, version: 2 }]);
  assert.equal(conflict.body[0].errorEvent, 102);
  assert.equal(conflict.body[0].currentVersion, 2);
  assert.deepEqual(conflict.body[0].currentData, { title: 'from ws' });
});

scenario('http: an RPC made over HTTP is served by a client provider', async (h) => {
  const server = await h.server(WITH_HTTP);
  const provider = await h.loggedIn(server, { username: 'provider' });
  await provideRpc(provider, 'multiply', (data, response) => response.send(data.a * data.b));
  await provideRpc(provider, 'refuse', (data, response) => response.error('not today'));

  const answer = await api(server, [
    { topic: 'rpc', action: 'make', rpcName: 'multiply', data: { a: 6, b: 7 } },
    { topic: 'rpc', action: 'make', rpcName: 'refuse' },
  ]);
  assert.equal(answer.result, 'PARTIAL_SUCCESS');
  assert.deepEqual(answer.body[0], { success: true, data: 42 });
  assert.deepEqual(answer.body[1], { success: false, errorTopic: 'rpc', error: 'not today' });
});

scenario('http: an event emitted over HTTP reaches subscribed clients; presence over HTTP sees them', async (h) => {
  const server = await h.server(WITH_HTTP);
  const [alice, bob] = await Promise.all([h.loggedIn(server, { username: 'alice' }), h.loggedIn(server, { username: 'bob' })]);
  const news = alice.collector('news');
  await alice.subscribe('news', news.callback);
  const arrived = news.next(() => true, 'news at alice');

  const answer = await api(server, [
    { topic: 'event', action: 'emit', eventName: 'news', data: { headline: 'hi' } },
    { topic: 'presence', action: 'query', names: ['alice', 'bob', 'carol'] },
  ]);
  assert.equal(answer.result, 'SUCCESS');
  assert.deepEqual((await arrived).data, { headline: 'hi' });
  assert.deepEqual(answer.body[1], { success: true, users: { alice: true, bob: true, carol: false } });
  assert.ok(bob);
});
