// Permission denials as the client sees them (protocol.md §3.2): MESSAGE_DENIED reaches the
// client's error callback as (msg, 'MESSAGE_DENIED', 'EVENT'); for a denied subscribe the
// client also drops its local listeners.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { scenario, pluginDir } from './harness.mjs';
import { DENY_PRIVATE_EVENTS } from './fixtures.mjs';
import { is, TOPIC, EVENT_ACTION } from './clients.mjs';

/** Runs `action` and waits for the MESSAGE_DENIED it must cause, on the wire and as error. */
async function expectDenied(client, originalAction, name, action) {
  const error = client.errors.next((e) => e.event === 'MESSAGE_DENIED', `MESSAGE_DENIED error for ${name}`);
  const denial = client.received.next(
    is.msg(TOPIC.EVENT, EVENT_ACTION.MESSAGE_DENIED, { name, originalAction }),
    `MESSAGE_DENIED {name: ${name}, originalAction: ${EVENT_ACTION[originalAction]}}`,
  );
  action();
  assert.equal((await error).topic, 'EVENT');
  assert.equal((await denial).isError, true);
}

/** An allowed name still works end to end: `sub` receives what `pub` emits. */
async function expectDelivered(pub, sub, name) {
  const got = sub.collector(name);
  await sub.subscribe(name, got.callback);
  const arrived = got.next(() => true, `event on ${name}`);
  pub.emit(name, { ok: name });
  assert.deepEqual((await arrived).data, { ok: name });
}

scenario('valve config permissions: events under private/ are denied, others work', async (h) => {
  const server = await h.server({
    permission: { type: 'config', options: { permissions: DENY_PRIVATE_EVENTS } },
  });
  const alice = await h.loggedIn(server, { username: 'alice' });
  const bob = await h.loggedIn(server, { username: 'bob' });

  await expectDenied(alice, EVENT_ACTION.SUBSCRIBE, 'private/x', () => alice.ds.event.subscribe('private/x', () => {}));
  assert.ok(!alice.ds.event.eventNames().includes('private/x'), 'client dropped the denied subscription');
  await expectDenied(alice, EVENT_ACTION.EMIT, 'private/x', () => alice.emit('private/x', 'secret'));

  await expectDelivered(alice, bob, 'public/x');
  assert.equal(alice.errors.items.length, 2, 'exactly the two denials');
  assert.deepEqual(bob.errors.items, []);
});

scenario('our plugins loaded from .so: token auth and user-scoped permissions', { oursOnly: true }, async (h) => {
  const dir = pluginDir();
  const server = await h.server({
    auth: [{
      path: join(dir, 'libauth_token.so'),
      options: { tokens: { 'tok-alice': { id: 'alice', clientData: { role: 'admin' }, serverData: {} } } },
    }],
    permission: { path: join(dir, 'libpermission_user_scope.so') },
  });

  const stranger = h.client(server);
  await assert.rejects(stranger.login({ token: 'tok-unknown' }), (err) => 'reason' in err);
  assert.equal(stranger.state, 'AWAITING_AUTHENTICATION');

  const alice = h.client(server);
  assert.deepEqual(await alice.login({ token: 'tok-alice' }), { role: 'admin' });
  const alice2 = await h.loggedIn(server, { token: 'tok-alice' });

  // A user may only act on names containing their id.
  await expectDenied(alice, EVENT_ACTION.SUBSCRIBE, 'chat/bob', () => alice.ds.event.subscribe('chat/bob', () => {}));
  await expectDenied(alice, EVENT_ACTION.EMIT, 'chat/bob', () => alice.emit('chat/bob', 'hi bob'));
  await expectDelivered(alice, alice2, 'chat/alice');
  assert.equal(alice.errors.items.length, 2, 'exactly the two denials');
});
