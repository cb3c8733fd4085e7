// Event listening beyond listen.test.mjs (protocol.md §8): a provider is asked again for every
// new subscription (deepstream.io#865), a silent listener times out and the next one is asked,
// unlistening hands the subscription over, and patterns are JavaScript regular expressions.

import assert from 'node:assert/strict';
import { scenario } from './harness.mjs';
import { Recorder, is, TOPIC, EVENT_ACTION } from './clients.mjs';

const LISTEN_CONFIG = { listen: { shuffleProviders: false, responseTimeout: 2000 } };

/**
 * Listens on `pattern`; every offer is pushed to `asked` as {who, subscription} and answered
 * with `decide(offer)`: 'accept', 'reject' or 'ignore'. Stops are pushed to `stopped`.
 */
function provide(client, who, pattern, { asked, stopped, decide = () => 'accept' }) {
  return client.listen(pattern, (subscription, response) => {
    const offer = { who, subscription };
    const verdict = decide(offer);
    if (verdict === 'accept') {
      response.onStop((s) => stopped.push({ who, subscription: s }));
      response.accept();
    } else if (verdict === 'reject') {
      response.reject();
    }
    asked.push({ ...offer, verdict });
  });
}

const recorders = () => ({ asked: new Recorder('offers'), stopped: new Recorder('stops') });

scenario('listen: the provider is asked again for every new subscription of a name (#865)', async (h) => {
  const server = await h.server(LISTEN_CONFIG);
  const provider = await h.loggedIn(server, { username: 'provider' });
  const sub = await h.loggedIn(server, { username: 'sub' });
  const { asked, stopped } = recorders();
  await provide(provider, 'provider', '^ticker/', { asked, stopped });

  for (let round = 1; round <= 3; round++) {
    const offered = asked.next((o) => o.subscription === 'ticker/x', `offer in round ${round}`);
    await sub.subscribe('ticker/x', () => {});
    await offered;
    const stop = stopped.next((s) => s.subscription === 'ticker/x', `stop in round ${round}`);
    await sub.unsubscribe('ticker/x');
    await stop;
  }
  assert.equal(asked.items.length, 3);
  assert.equal(stopped.items.length, 3);
  assert.deepEqual(provider.errors.items, []);
});

scenario('listen: a listener that does not answer times out and the next one is asked', async (h) => {
  const server = await h.server({ listen: { shuffleProviders: false, responseTimeout: 300 } });
  const silent = await h.loggedIn(server, { username: 'silent' });
  const eager = await h.loggedIn(server, { username: 'eager' });
  const sub = await h.loggedIn(server, { username: 'sub' });
  const { asked, stopped } = recorders();
  await provide(silent, 'silent', '^slow/', { asked, stopped, decide: () => 'ignore' });
  await provide(eager, 'eager', '^slow/', { asked, stopped });

  const accepted = asked.next((o) => o.verdict === 'accept', 'eager listener asked');
  await sub.subscribe('slow/1', () => {});
  await accepted;
  assert.deepEqual(asked.items.map((o) => o.who), ['silent', 'eager']);
  // LISTEN_RESPONSE_TIMEOUT carries only the subscription (§8.2).
  const timeout = silent.received.items.find(is.msg(TOPIC.EVENT, EVENT_ACTION.LISTEN_RESPONSE_TIMEOUT));
  assert.equal(timeout?.subscription, 'slow/1');
  assert.equal(timeout.name, undefined);
});

scenario('listen: unlisten hands the subscription to another listener, without a stop message', async (h) => {
  const server = await h.server(LISTEN_CONFIG);
  const providers = { p1: await h.loggedIn(server, { username: 'p1' }), p2: await h.loggedIn(server, { username: 'p2' }) };
  const sub = await h.loggedIn(server, { username: 'sub' });
  const { asked, stopped } = recorders();
  await provide(providers.p1, 'p1', '^feed/', { asked, stopped });
  await provide(providers.p2, 'p2', '^feed/', { asked, stopped });

  const feed = sub.collector('feed/a');
  const first = asked.next(() => true, 'first offer');
  await sub.subscribe('feed/a', feed.callback);
  const { who } = await first;
  const other = who === 'p1' ? 'p2' : 'p1';

  const handover = asked.next((o) => o.who === other, `offer to ${other}`);
  const unlistened = providers[who].received.next(is.ack(TOPIC.EVENT, EVENT_ACTION.UNLISTEN, { name: '^feed/' }), 'UNLISTEN ack');
  providers[who].ds.event.unlisten('^feed/');
  await unlistened;
  await handover;
  const delivered = feed.next(() => true, 'event from the new provider');
  providers[other].emit('feed/a', `from ${other}`);
  assert.equal((await delivered).data, `from ${other}`);
  assert.ok(!providers[who].received.items.some(is.msg(TOPIC.EVENT, EVENT_ACTION.SUBSCRIPTION_FOR_PATTERN_REMOVED)),
    'an unlistening provider is not sent SUBSCRIPTION_FOR_PATTERN_REMOVED');
});

scenario('listen: patterns are unanchored JavaScript regular expressions; invalid ones are refused', async (h) => {
  const server = await h.server(LISTEN_CONFIG);
  const provider = await h.loggedIn(server, { username: 'provider' });
  const sub = await h.loggedIn(server, { username: 'sub' });
  const { asked, stopped } = recorders();

  const refused = provider.received.next(is.msg(TOPIC.EVENT, EVENT_ACTION.INVALID_LISTEN_REGEX, { name: '([' }), 'INVALID_LISTEN_REGEX');
  provider.ds.event.listen('([', () => {});
  await refused;

  // JS-only syntax (lookahead, named group, \d) and a match in the middle of the name.
  await provide(provider, 'provider', '(?<kind>price)/(?!skip)\\d+', { asked, stopped });
  const offered = asked.next((o) => o.subscription === 'eu/price/42', 'offer of eu/price/42');
  await sub.subscribe('price/skip1', () => {});
  await sub.subscribe('eu/price/42', () => {});
  await offered;
  assert.deepEqual(asked.items.map((o) => o.subscription), ['eu/price/42']);
  assert.ok(!provider.received.items.some(is.ack(TOPIC.EVENT, EVENT_ACTION.LISTEN, { name: '([' })), 'no ack for an invalid pattern');
});
