// Presence (protocol.md §7): users, not connections, are online; joins and leaves to
// subscribe-all and per-user subscribers; queries for everyone and for given users.
//
// Proving that a join/leave was NOT sent without sleeping: another user's join or leave is
// caused afterwards; notifications are sent in the order the logins/logouts happen, so once
// that sentinel arrived the unwanted one would have too.

import assert from 'node:assert/strict';
import { scenario } from './harness.mjs';
import { C, DEFAULT_WAIT_MS, Recorder, TOPIC, is, withTimeout } from './clients.mjs';

const { PRESENCE_ACTION } = C;

/** Subscribes to every join/leave; resolves with the recorder once the server acked. */
async function watchEveryone(client) {
  const changes = new Recorder('presence of everyone');
  const ack = client.received.next(is.ack(TOPIC.PRESENCE, PRESENCE_ACTION.SUBSCRIBE_ALL), 'SUBSCRIBE_ALL ack');
  client.ds.presence.subscribe((user, online) => changes.push({ user, online }));
  await ack;
  return changes;
}

/** Subscribes to the given users; resolves once the server acked the bulk SUBSCRIBE. */
async function watchUsers(client, users) {
  const changes = new Recorder(`presence of ${users}`);
  const from = client.received.mark();
  const sent = client.sent.next(
    (m) => m.topic === TOPIC.PRESENCE && m.action === PRESENCE_ACTION.SUBSCRIBE && users.every((u) => m.names?.includes(u)),
    `SUBSCRIBE carrying ${users}`,
  );
  for (const user of users) client.ds.presence.subscribe(user, (name, online) => changes.push({ user: name, online }));
  const { correlationId } = await sent;
  await client.received.seen(is.ack(TOPIC.PRESENCE, PRESENCE_ACTION.SUBSCRIBE, { correlationId }), 'presence SUBSCRIBE ack', DEFAULT_WAIT_MS, from);
  return changes;
}

const change = (user, online) => (c) => c.user === user && c.online === online;

scenario('presence: two connections of one user join once and leave with the last one', async (h) => {
  const server = await h.server();
  const observer = await h.loggedIn(server, { username: 'observer' });
  const everyone = await watchEveryone(observer);

  const aliceJoined = everyone.next(change('alice', true), 'alice joins');
  const alice1 = await h.loggedIn(server, { username: 'alice' });
  await aliceJoined;
  const alice2 = await h.loggedIn(server, { username: 'alice' });
  const bobJoined = everyone.next(change('bob', true), 'bob joins');
  const bob = await h.loggedIn(server, { username: 'bob' });
  await bobJoined;
  assert.deepEqual(everyone.items, [{ user: 'alice', online: true }, { user: 'bob', online: true }], 'second connection of alice: no join');

  await alice1.close();
  const bobLeft = everyone.next(change('bob', false), 'bob leaves');
  await bob.close();
  await bobLeft;
  assert.ok(!everyone.items.some(change('alice', false)), 'alice still has a connection: no leave');

  const aliceLeft = everyone.next(change('alice', false), 'alice leaves');
  await alice2.close();
  await aliceLeft;
  assert.deepEqual(everyone.items.map((c) => `${c.user}:${c.online}`), ['alice:true', 'bob:true', 'bob:false', 'alice:false']);
  assert.deepEqual(observer.errors.items, []);
});

scenario('presence: per-user subscriptions only hear about those users; _ALL comes before the individual notice', async (h) => {
  const server = await h.server();
  const observer = await h.loggedIn(server, { username: 'observer' });
  const users = await watchUsers(observer, ['alice', 'carol']);

  const aliceJoined = users.next(change('alice', true), 'alice joins');
  const alice = await h.loggedIn(server, { username: 'alice' });
  await aliceJoined;
  const bob = await h.loggedIn(server, { username: 'bob' });
  const carolJoined = users.next(change('carol', true), 'carol joins');
  const carol = await h.loggedIn(server, { username: 'carol' });
  await carolJoined;
  const onWire = (action, name) => observer.received.filter(is.msg(TOPIC.PRESENCE, action, { name })).length;
  assert.equal(onWire(PRESENCE_ACTION.PRESENCE_JOIN, 'bob'), 0, 'bob is not watched');
  assert.equal(onWire(PRESENCE_ACTION.PRESENCE_JOIN_ALL, 'alice'), 0, 'no subscribe-all yet');

  const aliceLeft = users.next(change('alice', false), 'alice leaves');
  await alice.close();
  await aliceLeft;

  // With both kinds of subscription, a join comes as JOIN_ALL then JOIN.
  await watchEveryone(observer);
  const from = observer.received.mark();
  const carolLeft = users.next(change('carol', false), 'carol leaves');
  await carol.close();
  await carolLeft;
  const notices = observer.received.items.slice(from).filter((m) => m.topic === TOPIC.PRESENCE && m.name === 'carol');
  assert.deepEqual(notices.map((m) => PRESENCE_ACTION[m.action]), ['PRESENCE_LEAVE_ALL', 'PRESENCE_LEAVE']);

  // Unsubscribed from alice: her next join is not delivered (bob's leave is the sentinel).
  const unsubscribed = observer.received.next(is.ack(TOPIC.PRESENCE, PRESENCE_ACTION.UNSUBSCRIBE), 'presence UNSUBSCRIBE ack');
  observer.ds.presence.unsubscribe('alice');
  await unsubscribed;
  const everyoneFrom = observer.received.mark();
  await h.loggedIn(server, { username: 'alice' });
  const bobLeft = observer.received.next(is.msg(TOPIC.PRESENCE, PRESENCE_ACTION.PRESENCE_LEAVE_ALL, { name: 'bob' }), 'bob leaves');
  await bob.close();
  await bobLeft;
  const afterUnsubscribe = observer.received.items.slice(everyoneFrom).filter((m) => m.name === 'alice').map((m) => PRESENCE_ACTION[m.action]);
  assert.deepEqual(afterUnsubscribe, ['PRESENCE_JOIN_ALL'], 'only the subscribe-all notice for alice');
  assert.deepEqual(observer.errors.items, []);
});

scenario('presence: query everyone (minus oneself) and query given users', async (h) => {
  const server = await h.server();
  const alice1 = await h.loggedIn(server, { username: 'alice' });
  await h.loggedIn(server, { username: 'alice' });
  const bob = await h.loggedIn(server, { username: 'bob' });

  const all = (client) => withTimeout(client.ds.presence.getAll(), 'QUERY_ALL result');
  assert.deepEqual((await all(alice1)).sort(), ['bob']);
  assert.deepEqual((await all(bob)).sort(), ['alice']);

  const some = (client, users) => withTimeout(client.ds.presence.getAll(users), `QUERY result for ${users}`);
  assert.deepEqual(await some(bob, ['alice', 'zed', 'bob']), { alice: true, zed: false, bob: true });
  assert.deepEqual(await some(bob, []), {});

  await alice1.close();
  assert.deepEqual(await some(bob, ['alice']), { alice: true }, 'alice is still online on her other connection');

  // Logged in without a username: the open auth calls everyone "open", who is tracked too.
  const everyone = await watchEveryone(bob);
  const anonymous = await h.loggedIn(server, {});
  assert.deepEqual((await all(bob)).sort(), ['alice', 'open']);
  const left = everyone.next(change('open', false), '"open" leaves');
  await anonymous.close();
  await left;
  const offline = bob.received.next(is.msg(TOPIC.PRESENCE, PRESENCE_ACTION.QUERY_RESPONSE), 'QUERY_RESPONSE');
  assert.deepEqual(await some(bob, ['open']), { open: false });
  assert.equal((await offline).data, '{"open":false}');
  assert.deepEqual(bob.errors.items, []);
});
