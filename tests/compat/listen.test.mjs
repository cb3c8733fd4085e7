// Event listening / active providers (protocol.md §8).
//
// Providers answer from inside the listen callback (well within listen.responseTimeout). The
// tests do not depend on which of two providers the server asks first.

import assert from 'node:assert/strict';
import { scenario } from './harness.mjs';
import { Recorder, is, TOPIC, EVENT_ACTION } from './clients.mjs';

const PATTERN = 'news/.*';
const LISTEN_CONFIG = { listen: { shuffleProviders: false, responseTimeout: 2000 } };

/**
 * Makes `client` listen on PATTERN. Every "subscription for pattern found" is pushed to `asked`
 * as {who, subscription}; `decide({who, subscription})` returns 'accept' or 'reject'.
 * Stops of accepted subscriptions are pushed to `stopped`.
 */
async function provide(client, who, { asked, stopped, decide = () => 'accept' }) {
  await client.listen(PATTERN, (subscription, response) => {
    const request = { who, subscription };
    const verdict = decide(request);
    if (verdict === 'accept') {
      response.onStop((s) => stopped.push({ who, subscription: s }));
      response.accept();
    } else {
      response.reject();
    }
    asked.push({ ...request, verdict });
  });
}

function recorders() {
  return { asked: new Recorder('providers asked'), stopped: new Recorder('providers stopped') };
}

scenario('listen: provider is asked for matching subscriptions, provides, and is told when they end', async (h) => {
  const server = await h.server(LISTEN_CONFIG);
  const provider = await h.loggedIn(server, { username: 'provider' });
  const sub = await h.loggedIn(server, { username: 'sub' });
  const { asked, stopped } = recorders();

  // A subscription that exists before the provider listens is offered too.
  await sub.subscribe('news/early', () => {});
  const early = asked.next((r) => r.subscription === 'news/early', 'offer of news/early');
  await provide(provider, 'provider', { asked, stopped });
  await early;

  // Non-matching names are not offered: sports/x is subscribed before news/a on the same
  // connection, so it would have been offered before news/a.
  const news = sub.collector('news/a');
  const offered = asked.next((r) => r.subscription === 'news/a', 'offer of news/a');
  await sub.subscribe('sports/x', () => {});
  await sub.subscribe('news/a', news.callback);
  await offered;
  assert.deepEqual(asked.items.map((r) => r.subscription), ['news/early', 'news/a']);
  assert.ok(provider.received.items.some(is.msg(TOPIC.EVENT, EVENT_ACTION.SUBSCRIPTION_FOR_PATTERN_FOUND, { name: PATTERN, subscription: 'news/a' })));

  const delivered = news.next(() => true, 'provided event');
  provider.emit('news/a', { headline: 'provided' });
  assert.deepEqual((await delivered).data, { headline: 'provided' });

  // The last subscriber leaves → the provider's onStop runs.
  const stop = stopped.next((s) => s.subscription === 'news/a', 'onStop for news/a');
  await sub.unsubscribe('news/a');
  assert.deepEqual(await stop, { who: 'provider', subscription: 'news/a' });
  assert.ok(provider.received.items.some(is.msg(TOPIC.EVENT, EVENT_ACTION.SUBSCRIPTION_FOR_PATTERN_REMOVED, { name: PATTERN, subscription: 'news/a' })));
  assert.deepEqual(provider.errors.items, []);
});

scenario('listen: a rejected subscription is offered to the next provider', async (h) => {
  const server = await h.server(LISTEN_CONFIG);
  const p1 = await h.loggedIn(server, { username: 'p1' });
  const p2 = await h.loggedIn(server, { username: 'p2' });
  const sub = await h.loggedIn(server, { username: 'sub' });
  const { asked, stopped } = recorders();
  // Whoever is asked first rejects; the second one accepts.
  const decide = () => (asked.items.length === 0 ? 'reject' : 'accept');
  await provide(p1, 'p1', { asked, stopped, decide });
  await provide(p2, 'p2', { asked, stopped, decide });

  const news = sub.collector('news/b');
  const second = asked.next((r) => r.verdict === 'accept', 'second provider asked');
  await sub.subscribe('news/b', news.callback);
  await second;
  const [first, accepted] = asked.items;
  assert.deepEqual(asked.items.map((r) => [r.subscription, r.verdict]), [['news/b', 'reject'], ['news/b', 'accept']]);
  assert.notEqual(first.who, accepted.who, 'the rejecting provider is not asked again');

  const provider = accepted.who === 'p1' ? p1 : p2;
  const delivered = news.next(() => true, 'event from accepting provider');
  provider.emit('news/b', 'from ' + accepted.who);
  assert.equal((await delivered).data, 'from ' + accepted.who);

  const stop = stopped.next(() => true, 'onStop');
  await sub.unsubscribe('news/b');
  assert.deepEqual(await stop, { who: accepted.who, subscription: 'news/b' });
});

scenario('listen: when the active provider disconnects, another listener is asked', async (h) => {
  const server = await h.server(LISTEN_CONFIG);
  const providers = { p1: await h.loggedIn(server, { username: 'p1' }), p2: await h.loggedIn(server, { username: 'p2' }) };
  const sub = await h.loggedIn(server, { username: 'sub' });
  const { asked, stopped } = recorders();
  await provide(providers.p1, 'p1', { asked, stopped });
  await provide(providers.p2, 'p2', { asked, stopped });

  const news = sub.collector('news/c');
  const firstOffer = asked.next(() => true, 'first offer');
  await sub.subscribe('news/c', news.callback);
  const first = await firstOffer;
  const other = first.who === 'p1' ? 'p2' : 'p1';

  const secondOffer = asked.next((r) => r.who === other, `offer to ${other}`);
  await providers[first.who].close();
  assert.deepEqual(await secondOffer, { who: other, subscription: 'news/c', verdict: 'accept' });

  const delivered = news.next(() => true, 'event from the new provider');
  providers[other].emit('news/c', 'from ' + other);
  assert.equal((await delivered).data, 'from ' + other);
});
