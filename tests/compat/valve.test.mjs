// Valve permissions (server.md §3) as the official client experiences them: rules per topic and
// rule type (protocol.md §3.2), `$variables` from path patterns, `data` / `oldData`, cross
// references with `_()`, `user.data` from the file auth plugin's serverData, and a reload of
// the rules file (SIGHUP) that takes effect for connections that are already open.
//
// What a denial looks like to the 7.0.5 client:
//   records  setWithAck / setDataWithAck reject (callbacks get the error) with "MESSAGE_DENIED";
//            snapshot / head reject with it; getRecord emits (msg, 'MESSAGE_DENIED', 'RECORD') on
//            the client and 'error' on the record, which never becomes ready; delete rejects.
//   events   client error (msg, 'MESSAGE_DENIED', 'EVENT'); a denied subscribe drops the local
//            listeners; a denied emit reaches nobody.
//   rpc      a denied provide is an error (…, 'MESSAGE_DENIED', 'RPC') and drops the provider;
//            a denied request makes make() reject with "MESSAGE_DENIED".
//   presence denied queries reject with "MESSAGE_DENIED"; denied subscriptions are errors.
// A rule that throws (e.g. member access on null) is a MESSAGE_PERMISSION_ERROR instead.
//
// "Not delivered" is proven without sleeping, as in records/events: a later message that takes
// the same path (a barrier) arrives only after everything sent before it.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { scenario } from './harness.mjs';
import { fileAuth } from './fixtures.mjs';
import { toYaml, raw } from './yaml.mjs';
import { C, DEFAULT_WAIT_MS, Recorder, TOPIC, changes, is, ready, until, withTimeout } from './clients.mjs';

const RA = C.RECORD_ACTION;
const EA = C.EVENT_ACTION;
const PA = C.PRESENCE_ACTION;
const RPA = C.RPC_ACTION;
const ACTIONS_OF = { [TOPIC.RECORD]: RA, [TOPIC.EVENT]: EA, [TOPIC.RPC]: RPA, [TOPIC.PRESENCE]: PA };

// ---- permission documents ---------------------------------------------------------------------

/** Every section's root entry, allowing everything (server.md §3.2: all four are required). */
const ALLOW_ALL = {
  record: { '*': { create: true, write: true, read: true, delete: true, listen: true, notify: true } },
  event: { '*': { publish: true, subscribe: true, listen: true } },
  rpc: { '*': { provide: true, request: true } },
  presence: { '*': { allow: true } },
};

/** A full Valve document: the allow-all roots plus the scenario's own patterns per section. */
function valve(sections = {}) {
  return Object.fromEntries(Object.entries(ALLOW_ALL).map(([s, root]) => [s, { ...root, ...sections[s] }]));
}

/** Config section for `permission: {type: config}` with `doc` inline. */
function valveConfig(doc) {
  return { permission: { type: 'config', options: { permissions: doc } } };
}

const loginAll = (h, server, names) => Promise.all(names.map((username) => h.loggedIn(server, { username })));

// ---- expectations -----------------------------------------------------------------------------

/**
 * Runs `act` and waits for the denial reply it must cause: `{topic, action: <kind>,
 * originalAction, name, isError: true}` (protocol.md §3.2). `name: null` does not check the
 * name (presence QUERY_ALL has none). Returns the reply and whatever `act` returned.
 */
async function denial(client, topic, originalAction, name, act, kind = 'MESSAGE_DENIED') {
  const actions = ACTIONS_OF[topic];
  const extra = { originalAction, ...(name === null ? {} : { name }) };
  const what = `${kind} {originalAction: ${actions[originalAction]}, name: ${name}} on ${TOPIC[topic]}`;
  const reply = client.received.next(is.msg(topic, actions[kind], extra), what);
  const result = act();
  // A promise that rejects while we wait for the reply must not count as unhandled; the caller
  // still gets the original promise to assert on.
  if (typeof result?.then === 'function') result.then(() => {}, () => {});
  const msg = await reply;
  assert.equal(msg.isError, true, `${what} carries isError`);
  return { msg, result };
}

/** A promise the client API gives us, as {ok, value} / {ok: false, error}, bounded in time. */
async function outcome(promise, what, timeoutMs = DEFAULT_WAIT_MS) {
  try {
    return { ok: true, value: await withTimeout(promise, what, timeoutMs) };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('no ')) throw error;
    return { ok: false, error };
  }
}

const DENIED = { ok: false, error: 'MESSAGE_DENIED' };
const PERMISSION_ERROR = { ok: false, error: 'MESSAGE_PERMISSION_ERROR' };

/** Record writes (UPDATE / PATCH / ERASE broadcasts) for `name` a client received. */
const writesOf = (client, name) => client.received.filter((m) => m.topic === TOPIC.RECORD && m.name === name
  && [RA.UPDATE, RA.PATCH, RA.ERASE, RA.PATCH_MULTI].includes(m.action));

/** `sub` subscribes to `name` and receives what `pub` emits: the name is usable end to end. */
async function expectDelivered(pub, sub, name, data = { ok: name }) {
  const got = sub.collector(name);
  await sub.subscribe(name, got.callback);
  const arrived = got.next(() => true, `event on ${name}`);
  pub.emit(name, data);
  assert.deepEqual((await arrived).data, data);
  return got;
}

/** Provides `name` and resolves once the server acknowledged the PROVIDE carrying it. */
async function provide(client, name, callback) {
  const from = client.received.mark();
  const sent = client.sent.next((m) => m.topic === TOPIC.RPC && m.action === RPA.PROVIDE && m.names?.includes(name), `PROVIDE carrying ${name}`);
  client.ds.rpc.provide(name, callback);
  const { correlationId } = await sent;
  await client.received.seen(is.ack(TOPIC.RPC, RPA.PROVIDE, { correlationId }), `PROVIDE ack ${correlationId}`, DEFAULT_WAIT_MS, from);
}

const make = (client, name, data) => outcome(client.ds.rpc.make(name, data), `result of rpc ${name}`);

/** Every error the client reported is `event` on `topic`; returns how many there were. */
function onlyErrors(client, event, topic) {
  for (const e of client.errors.items) assert.deepEqual([e.event, e.topic], [event, topic], `unexpected client error ${JSON.stringify(e)}`);
  return client.errors.items.length;
}

// ---- records ----------------------------------------------------------------------------------

scenario('valve record read: a $variable binds the path segment (user/$userId readable and writable by its owner only)', async (h) => {
  const server = await h.server(valveConfig(valve({
    // No `create` here: creating falls back to the "*" entry (rule selection, server.md §3.3).
    record: { 'user/$userId': { read: 'user.id === $userId', write: 'user.id === $userId' } },
  })));
  const [alice, bob] = await loginAll(h, server, ['alice', 'bob']);

  const ownedByBob = await ready(bob, 'user/bob');
  await withTimeout(ownedByBob.setWithAck({ name: 'Bob' }), 'bob writes his own record');

  // One-off reads of someone else's record.
  const read = await denial(alice, TOPIC.RECORD, RA.READ, 'user/bob', () => alice.ds.record.snapshot('user/bob'));
  assert.deepEqual(await outcome(read.result, 'snapshot'), DENIED);
  const head = await denial(alice, TOPIC.RECORD, RA.HEAD, 'user/bob', () => alice.ds.record.head('user/bob'));
  assert.deepEqual(await outcome(head.result, 'head'), DENIED);

  // Writing someone else's record with setData: create is allowed ("*"), write is not. (Before
  // getRecord: for a record it holds, the client turns setData into a write of that record.)
  const forced = await denial(alice, TOPIC.RECORD, RA.CREATEANDUPDATE, 'user/bob', () => alice.ds.record.setDataWithAck('user/bob', { name: 'hacked' }));
  assert.deepEqual(await outcome(forced.result, 'setDataWithAck'), DENIED);
  assert.equal(forced.msg.isWriteAck, true, 'the denial of an acked write is flagged isWriteAck');

  // Subscribing: the record exists, so only `read` is checked, and it says no.
  const recordErrors = new Recorder('user/bob record errors at alice');
  const clientError = alice.errors.next((e) => e.event === 'MESSAGE_DENIED', 'MESSAGE_DENIED client error');
  const { result: heldByAlice } = await denial(alice, TOPIC.RECORD, RA.SUBSCRIBECREATEANDREAD, 'user/bob', () => {
    const r = alice.ds.record.getRecord('user/bob');
    r.on('error', (...args) => recordErrors.push(args));
    return r;
  });
  assert.equal((await clientError).topic, 'RECORD');
  assert.deepEqual(await recordErrors.seen(() => true, 'record error event'), ['MESSAGE_DENIED', 'SUBSCRIBECREATEANDREAD']);
  assert.equal(heldByAlice.isReady, false, 'a record that may not be read never becomes ready');
  assert.deepEqual(heldByAlice.get(), {}, 'and holds no data');

  // Her own record works: the variable binds "alice" there.
  const ownedByAlice = await ready(alice, 'user/alice');
  await withTimeout(ownedByAlice.setWithAck({ name: 'Alice' }), 'alice writes her own record');

  // Bob goes on writing; nothing of it reaches alice, whose subscription was refused.
  const barrierAtAlice = await ready(alice, 'pub/barrier');
  const barrier = changes(barrierAtAlice);
  await withTimeout(ownedByBob.setWithAck({ name: 'Bob 2' }), 'bob writes again');
  bob.ds.record.setData('pub/barrier', { after: 'bob' });
  await until(barrier, barrierAtAlice, { after: 'bob' }, 'barrier at alice');
  assert.deepEqual(writesOf(alice, 'user/bob'), [], 'no write to user/bob reached alice');
  assert.deepEqual(heldByAlice.get(), {});

  assert.deepEqual(await withTimeout(bob.ds.record.snapshot('user/alice').catch((e) => e), 'bob snapshots user/alice'), 'MESSAGE_DENIED');
  const [checker] = await loginAll(h, server, ['bob']);
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('user/bob'), 'snapshot'), { name: 'Bob 2' }, 'the denied write left no trace');
  assert.equal(await withTimeout(checker.ds.record.head('user/bob'), 'head'), 2);
  assert.ok(onlyErrors(alice, 'MESSAGE_DENIED', 'RECORD') >= 1);
  assert.deepEqual([...bob.errors.items, ...checker.errors.items], []);
});

scenario('valve record write with data: the new value of an update, the stored value with the patch applied', async (h) => {
  const server = await h.server(valveConfig(valve({
    record: { 'item/*': { write: 'typeof data.price === "number" && data.price >= 0' } },
  })));
  const [seller, observer, patcher, forcer, editor, checker] = await loginAll(h, server, ['seller', 'observer', 'patcher', 'forcer', 'editor', 'checker']);

  const item = await ready(seller, 'item/1');
  await withTimeout(item.setWithAck({ title: 'pen', price: 5 }), 'valid price');
  const atObserver = await ready(observer, 'item/1');
  assert.deepEqual(atObserver.get(), { title: 'pen', price: 5 });
  const observed = changes(atObserver);

  // UPDATE: data is the new value.
  const update = await denial(seller, TOPIC.RECORD, RA.UPDATE, 'item/1', () => item.setWithAck({ title: 'pen', price: -1 }));
  assert.deepEqual(await outcome(update.result, 'setWithAck with a negative price'), DENIED);
  const sentUpdate = seller.sent.filter(is.msg(TOPIC.RECORD, RA.UPDATE, { name: 'item/1' })).at(-1);
  assert.equal(update.msg.correlationId, sentUpdate.correlationId, 'the denial answers the write (correlationId)');
  assert.equal(update.msg.isWriteAck, true);

  // PATCH: data is the stored value with the patch applied; here via the callback API.
  const atPatcher = await ready(patcher, 'item/1');
  const patch = await denial(patcher, TOPIC.RECORD, RA.PATCH, 'item/1', () => new Promise((resolve) => atPatcher.set('price', -3, (error) => resolve(error))));
  assert.equal(await withTimeout(patch.result, 'set callback'), 'MESSAGE_DENIED');

  // setData with a path (CREATEANDPATCH). Denied whichever value the rule sees: the reference
  // checks its write step as an UPDATE whose `data` is the bare patch value ("free").
  const forced = await denial(forcer, TOPIC.RECORD, RA.CREATEANDPATCH, 'item/1', () => forcer.ds.record.setDataWithAck('item/1', 'price', 'free'));
  assert.deepEqual(await outcome(forced.result, 'setDataWithAck with a string price'), DENIED);

  // A patch the rule accepts: only the price changes and the whole value still passes. (From a
  // fresh holder: the seller's and the patcher's copies are a version ahead after their denials.)
  const atEditor = await ready(editor, 'item/1');
  await withTimeout(atEditor.setWithAck('price', 7), 'valid patch');
  await until(observed, atObserver, { title: 'pen', price: 7 }, 'the valid patch at the observer');
  assert.deepEqual(writesOf(observer, 'item/1').map((m) => [m.version, m.data]), [[2, '7']], 'denied writes were not broadcast');
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('item/1'), 'snapshot'), { title: 'pen', price: 7 });

  for (const c of [seller, patcher, forcer]) onlyErrors(c, 'MESSAGE_DENIED', 'RECORD');
  assert.deepEqual([...observer.errors.items, ...editor.errors.items, ...checker.errors.items], []);
});

scenario('valve record write with oldData: null for a missing record, then the stored value (the owner may not change)', async (h) => {
  const server = await h.server(valveConfig(valve({
    // Whoever wrote the owner first owns the document; nobody may change the owner afterwards.
    record: { 'doc/*': { write: '!oldData || oldData.owner === undefined || oldData.owner === data.owner' } },
  })));
  const [alice, bob, checker] = await loginAll(h, server, ['alice', 'bob', 'checker']);

  await withTimeout(alice.ds.record.setDataWithAck('doc/1', { owner: 'alice', text: 'v1' }), 'alice creates doc/1');
  const takeover = await denial(bob, TOPIC.RECORD, RA.CREATEANDUPDATE, 'doc/1', () => bob.ds.record.setDataWithAck('doc/1', { owner: 'bob', text: 'mine now' }));
  assert.deepEqual(await outcome(takeover.result, 'owner change by update'), DENIED);
  const sneaky = await denial(bob, TOPIC.RECORD, RA.CREATEANDPATCH, 'doc/1', () => bob.ds.record.setDataWithAck('doc/1', 'owner', 'bob'));
  assert.deepEqual(await outcome(sneaky.result, 'owner change by patch'), DENIED);
  await withTimeout(bob.ds.record.setDataWithAck('doc/1', { owner: 'alice', text: 'edited by bob' }), 'an edit that keeps the owner');
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('doc/1'), 'snapshot doc/1'), { owner: 'alice', text: 'edited by bob' });

  // A record created by getRecord exists with {} (oldData {}, no owner yet).
  const doc2 = await ready(bob, 'doc/2');
  await withTimeout(doc2.setWithAck({ owner: 'bob', text: 'hello' }), 'bob claims doc/2');
  const doc2AtAlice = await ready(alice, 'doc/2');
  const claim = await denial(alice, TOPIC.RECORD, RA.PATCH, 'doc/2', () => doc2AtAlice.setWithAck('owner', 'alice'));
  assert.deepEqual(await outcome(claim.result, 'alice claims doc/2'), DENIED);
  await withTimeout(doc2.setWithAck('text', 'hello again'), 'the owner edits doc/2');
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('doc/2'), 'snapshot doc/2'), { owner: 'bob', text: 'hello again' });
  // alice is still subscribed: the owner's edit reaches her.
  const edit = await alice.received.seen(is.msg(TOPIC.RECORD, RA.PATCH, { name: 'doc/2', path: 'text' }), 'the owner\'s edit at alice');
  assert.equal(edit.data, '"hello again"');

  for (const c of [alice, bob]) onlyErrors(c, 'MESSAGE_DENIED', 'RECORD');
  assert.deepEqual(checker.errors.items, []);
});

scenario('valve record create: checked when getRecord or setData would create the record, and by setData always', async (h) => {
  const server = await h.server(valveConfig(valve({
    record: { 'locked/*': { create: 'user.id === "admin"' } },
  })));
  const [admin, guest, reader, upserter, checker] = await loginAll(h, server, ['admin', 'guest', 'reader', 'upserter', 'checker']);

  // A missing record: getRecord needs `create`.
  const recordErrors = new Recorder('locked/a record errors at guest');
  const { result: refused } = await denial(guest, TOPIC.RECORD, RA.SUBSCRIBECREATEANDREAD, 'locked/a', () => {
    const r = guest.ds.record.getRecord('locked/a');
    r.on('error', (...args) => recordErrors.push(args));
    return r;
  });
  assert.deepEqual(await recordErrors.seen(() => true, 'record error event'), ['MESSAGE_DENIED', 'SUBSCRIBECREATEANDREAD']);
  assert.equal(refused.isReady, false);
  const forced = await denial(guest, TOPIC.RECORD, RA.CREATEANDUPDATE, 'locked/b', () => guest.ds.record.setDataWithAck('locked/b', { x: 1 }));
  assert.deepEqual(await outcome(forced.result, 'setDataWithAck creating locked/b'), DENIED);
  assert.equal(await withTimeout(checker.ds.record.has('locked/a'), 'has locked/a'), false, 'not created');
  assert.equal(await withTimeout(checker.ds.record.has('locked/b'), 'has locked/b'), false, 'not created');

  // The admin may create it; then reading and writing it need no `create`.
  const byAdmin = await ready(admin, 'locked/a');
  assert.equal(byAdmin.version, 0);
  await withTimeout(byAdmin.setWithAck({ x: 1 }), 'admin writes');
  const atReader = await ready(reader, 'locked/a');
  assert.deepEqual(atReader.get(), { x: 1 });
  await withTimeout(atReader.setWithAck({ x: 2 }), 'an UPDATE needs `write` only');
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('locked/a'), 'snapshot'), { x: 2 });

  // setData (CREATEANDUPDATE) is checked for `create` and `write` even when the record exists
  // (server.md §3.2). From a client that does not hold the record: one that does sends an UPDATE.
  const upsert = await denial(upserter, TOPIC.RECORD, RA.CREATEANDUPDATE, 'locked/a', () => upserter.ds.record.setDataWithAck('locked/a', { x: 3 }));
  assert.deepEqual(await outcome(upsert.result, 'setDataWithAck on the existing locked/a'), DENIED);
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('locked/a'), 'snapshot after the upsert'), { x: 2 });

  for (const c of [guest, upserter]) onlyErrors(c, 'MESSAGE_DENIED', 'RECORD');
  assert.deepEqual([...admin.errors.items, ...reader.errors.items, ...checker.errors.items], []);
});

scenario('valve record delete: the rule sees oldData; a refused delete leaves the record and the subscription', async (h) => {
  const server = await h.server(valveConfig(valve({
    record: { 'note/*': { delete: 'oldData.author === user.id' } },
  })));
  const [author, other, checker] = await loginAll(h, server, ['author', 'other', 'checker']);
  await withTimeout(author.ds.record.setDataWithAck('note/1', { author: 'author', text: 'hi' }), 'author writes note/1');

  const atOther = await ready(other, 'note/1');
  const removal = await denial(other, TOPIC.RECORD, RA.DELETE, 'note/1', () => atOther.delete());
  assert.deepEqual(await outcome(removal.result, 'delete by someone else'), DENIED);
  assert.equal(await withTimeout(checker.ds.record.has('note/1'), 'has note/1'), true, 'still there');
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('note/1'), 'snapshot note/1'), { author: 'author', text: 'hi' });

  const atAuthor = await ready(author, 'note/1');
  await withTimeout(atAuthor.delete(), 'the author deletes');
  assert.equal(await withTimeout(checker.ds.record.has('note/1'), 'has note/1 after the delete'), false);
  // The refused delete left `other` subscribed: it is told of the real one.
  await other.received.seen(is.msg(TOPIC.RECORD, RA.DELETED, { name: 'note/1' }), 'DELETED at the other subscriber');

  onlyErrors(other, 'MESSAGE_DENIED', 'RECORD');
  assert.deepEqual([...author.errors.items, ...checker.errors.items], []);
});

scenario('valve cross reference: _() reads another record written by another client first, at the time of each check', async (h) => {
  const server = await h.server(valveConfig(valve({
    record: {
      'settings/$userId': { create: 'user.id === "admin"', write: 'user.id === "admin"' },
      'board/*': { write: "_('settings/' + user.id).canWrite === true" },
    },
  })));
  const [admin, alice, bob, carol, checker] = await loginAll(h, server, ['admin', 'alice', 'bob', 'carol', 'checker']);
  await withTimeout(admin.ds.record.setDataWithAck('settings/alice', { canWrite: true }), 'settings for alice');
  await withTimeout(admin.ds.record.setDataWithAck('settings/bob', { canWrite: false }), 'settings for bob');

  const atAlice = await ready(alice, 'board/1');
  await withTimeout(atAlice.setWithAck({ msg: 'from alice' }), 'alice may write');
  const atBob = await ready(bob, 'board/1');
  assert.deepEqual(atBob.get(), { msg: 'from alice' });
  const refused = await denial(bob, TOPIC.RECORD, RA.UPDATE, 'board/1', () => atBob.setWithAck({ msg: 'from bob' }));
  assert.deepEqual(await outcome(refused.result, 'bob may not write'), DENIED);

  // Nobody grants themselves the right: settings are admin-only.
  const selfService = await denial(bob, TOPIC.RECORD, RA.CREATEANDPATCH, 'settings/bob', () => bob.ds.record.setDataWithAck('settings/bob', 'canWrite', true));
  assert.deepEqual(await outcome(selfService.result, 'bob edits his settings'), DENIED);
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('board/1'), 'snapshot board/1'), { msg: 'from alice' });

  // The admin changes the settings; the next check reads them afresh. (setData from
  // connections that do not hold board/1: bob's copy is a version ahead since his denied write.)
  const [bob2, alice2] = await loginAll(h, server, ['bob', 'alice']);
  await withTimeout(admin.ds.record.setDataWithAck('settings/bob', 'canWrite', true), 'admin grants bob');
  await withTimeout(bob2.ds.record.setDataWithAck('board/1', { msg: 'from bob, now allowed' }), 'bob may write now');
  await withTimeout(admin.ds.record.setDataWithAck('settings/alice', 'canWrite', false), 'admin revokes alice');
  const revoked = await denial(alice2, TOPIC.RECORD, RA.CREATEANDUPDATE, 'board/1', () => alice2.ds.record.setDataWithAck('board/1', { msg: 'alice again' }));
  assert.deepEqual(await outcome(revoked.result, 'alice after the revocation'), DENIED);
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('board/1'), 'snapshot after the changes'), { msg: 'from bob, now allowed' });

  // carol has no settings record: `_()` gives null and `.canWrite` on null throws, which is a
  // permission *error*, not a plain denial (server.md §3.7).
  const broken = await denial(carol, TOPIC.RECORD, RA.CREATEANDUPDATE, 'board/1',
    () => carol.ds.record.setDataWithAck('board/1', { msg: 'from carol' }), 'MESSAGE_PERMISSION_ERROR');
  assert.deepEqual(await outcome(broken.result, 'carol\'s write'), PERMISSION_ERROR);
  assert.deepEqual(await withTimeout(checker.ds.record.snapshot('board/1'), 'final snapshot'), { msg: 'from bob, now allowed' });
  assert.deepEqual([...admin.errors.items, ...alice.errors.items, ...bob2.errors.items, ...checker.errors.items], []);
});

// ---- events -----------------------------------------------------------------------------------

scenario('valve events: publish checks data, subscribe is denied by name pattern and by $variable', async (h) => {
  const server = await h.server(valveConfig(valve({
    event: {
      'chat/*': { publish: 'typeof data.text === "string" && data.text.length <= 20' },
      'secret/*': { subscribe: false },
      'inbox/$owner': { subscribe: 'user.id === $owner' },
    },
  })));
  const [alice, bob] = await loginAll(h, server, ['alice', 'bob']);

  // publish with data.
  const lobby = bob.collector('chat/lobby');
  await bob.subscribe('chat/lobby', lobby.callback);
  for (const data of [{ text: 'this text is much too long for the rule' }, 'not an object', { text: 42 }]) {
    const error = alice.errors.next((e) => e.event === 'MESSAGE_DENIED', `client error for ${JSON.stringify(data)}`);
    await denial(alice, TOPIC.EVENT, EA.EMIT, 'chat/lobby', () => alice.emit('chat/lobby', data));
    assert.equal((await error).topic, 'EVENT');
  }
  const allowed = lobby.next(() => true, 'the allowed chat message');
  alice.emit('chat/lobby', { text: 'hi bob' });
  assert.deepEqual((await allowed).data, { text: 'hi bob' });
  assert.deepEqual(lobby.items.map((i) => i.data), [{ text: 'hi bob' }], 'denied emits reached nobody');

  // subscribe denied by the pattern alone; publishing there falls back to "*" and is allowed.
  const secret = bob.collector('secret/plans');
  await denial(bob, TOPIC.EVENT, EA.SUBSCRIBE, 'secret/plans', () => bob.ds.event.subscribe('secret/plans', secret.callback));
  assert.ok(!bob.ds.event.eventNames().includes('secret/plans'), 'the client dropped the denied subscription');
  alice.emit('secret/plans', { text: 'psst' });
  const barrier = lobby.next(() => true, 'barrier on chat/lobby');
  alice.emit('chat/lobby', { text: 'barrier' });
  await barrier;
  assert.deepEqual(secret.items, []);
  assert.ok(!bob.received.items.some(is.emit('secret/plans')), 'secret/plans was not delivered');

  // $owner: bob's own inbox only.
  await denial(bob, TOPIC.EVENT, EA.SUBSCRIBE, 'inbox/alice', () => bob.ds.event.subscribe('inbox/alice', () => {}));
  await expectDelivered(alice, bob, 'inbox/bob', { text: 'for bob' });
  await expectDelivered(bob, alice, 'inbox/alice', { text: 'for alice' });

  assert.equal(onlyErrors(alice, 'MESSAGE_DENIED', 'EVENT'), 3, 'exactly the three denied emits');
  assert.equal(onlyErrors(bob, 'MESSAGE_DENIED', 'EVENT'), 2, 'exactly the two denied subscriptions');
});

// ---- rpc --------------------------------------------------------------------------------------

scenario('valve rpc: provide limited by user, request checked against data', async (h) => {
  const server = await h.server(valveConfig(valve({
    rpc: {
      'admin/*': { provide: 'user.id === "root"' },
      divide: { request: 'typeof data.divisor === "number" && data.divisor !== 0' },
    },
  })));
  const [mallory, root, calc, requester] = await loginAll(h, server, ['mallory', 'root', 'calc', 'requester']);

  const error = mallory.errors.next((e) => e.event === 'MESSAGE_DENIED', 'client error for the denied provide');
  await denial(mallory, TOPIC.RPC, RPA.PROVIDE, 'admin/shutdown', () => mallory.ds.rpc.provide('admin/shutdown', (_, response) => response.send('mallory')));
  assert.equal((await error).topic, 'RPC');
  assert.ok(!mallory.ds.rpc.providers.has('admin/shutdown'), 'the client dropped the denied provider');
  assert.deepEqual(await make(requester, 'admin/shutdown'), { ok: false, error: 'NO_RPC_PROVIDER' }, 'the denied provider was not registered');

  await provide(root, 'admin/shutdown', (_, response) => response.send('root'));
  assert.deepEqual(await make(requester, 'admin/shutdown'), { ok: true, value: 'root' });

  const requests = new Recorder('divide requests');
  await provide(calc, 'divide', (data, response) => {
    requests.push(data);
    response.send(data.n / data.divisor);
  });
  for (const data of [{ n: 6, divisor: 0 }, { n: 6 }, 'six']) {
    const refused = await denial(requester, TOPIC.RPC, RPA.REQUEST, 'divide', () => requester.ds.rpc.make('divide', data));
    assert.deepEqual(await outcome(refused.result, `make divide ${JSON.stringify(data)}`), DENIED);
    const sent = requester.sent.filter(is.msg(TOPIC.RPC, RPA.REQUEST, { name: 'divide' })).at(-1);
    assert.equal(refused.msg.correlationId, sent.correlationId, 'the denial answers the request');
  }
  assert.deepEqual(await make(requester, 'divide', { n: 6, divisor: 3 }), { ok: true, value: 2 });
  assert.deepEqual(await make(mallory, 'divide', { n: 9, divisor: 3 }), { ok: true, value: 3 }, 'mallory\'s denial did not stick to her');
  assert.deepEqual(requests.items, [{ n: 6, divisor: 3 }, { n: 9, divisor: 3 }], 'the provider never saw a denied request');

  assert.equal(onlyErrors(mallory, 'MESSAGE_DENIED', 'RPC'), 1);
  assert.deepEqual([...root.errors.items, ...calc.errors.items, ...requester.errors.items], []);
});

// ---- presence ---------------------------------------------------------------------------------

scenario('valve presence: allow rules for queries and subscriptions, per user name and for everyone', async (h) => {
  const server = await h.server(valveConfig(valve({
    presence: {
      // QUERY_ALL / SUBSCRIBE_ALL carry no name: the "*" entry decides (server.md §3.3).
      '*': { allow: 'user.id !== "lurker"' },
      boss: { allow: 'user.id === "deputy"' },
    },
  })));
  const [boss, deputy, alice, lurker] = await loginAll(h, server, ['boss', 'deputy', 'alice', 'lurker']);

  const all = await denial(lurker, TOPIC.PRESENCE, PA.QUERY_ALL, null, () => lurker.ds.presence.getAll());
  assert.deepEqual(await outcome(all.result, 'lurker getAll()'), DENIED);
  const some = await denial(lurker, TOPIC.PRESENCE, PA.QUERY, 'alice', () => lurker.ds.presence.getAll(['alice']));
  assert.deepEqual(await outcome(some.result, 'lurker getAll([alice])'), DENIED);
  assert.equal(some.msg.correlationId, lurker.sent.filter(is.msg(TOPIC.PRESENCE, PA.QUERY)).at(-1).correlationId);
  const everyone = new Recorder('lurker presence of everyone');
  const error = lurker.errors.next((e) => e.event === 'MESSAGE_DENIED', 'client error for SUBSCRIBE_ALL');
  await denial(lurker, TOPIC.PRESENCE, PA.SUBSCRIBE_ALL, null, () => lurker.ds.presence.subscribe((user, online) => everyone.push({ user, online })));
  assert.equal((await error).topic, 'PRESENCE');

  const allAtAlice = await outcome(alice.ds.presence.getAll(), 'alice getAll()');
  assert.equal(allAtAlice.ok, true);
  assert.deepEqual([...allAtAlice.value].sort(), ['boss', 'deputy', 'lurker']);
  const aboutBoss = await denial(alice, TOPIC.PRESENCE, PA.QUERY, 'boss', () => alice.ds.presence.getAll(['boss']));
  assert.deepEqual(await outcome(aboutBoss.result, 'alice getAll([boss])'), DENIED);
  assert.deepEqual(await outcome(alice.ds.presence.getAll(['deputy']), 'alice getAll([deputy])'), { ok: true, value: { deputy: true } });
  assert.deepEqual(await outcome(deputy.ds.presence.getAll(['boss']), 'deputy getAll([boss])'), { ok: true, value: { boss: true } });

  // Subscriptions to one user: alice may not watch the boss, the deputy may.
  const bossAtAlice = new Recorder('boss at alice');
  await denial(alice, TOPIC.PRESENCE, PA.SUBSCRIBE, 'boss', () => alice.ds.presence.subscribe('boss', (user, online) => bossAtAlice.push({ user, online })));
  const sentinelAtAlice = new Recorder('sentinel at alice');
  const subscribed = alice.received.next(is.ack(TOPIC.PRESENCE, PA.SUBSCRIBE), 'presence SUBSCRIBE ack for sentinel');
  alice.ds.presence.subscribe('sentinel', (user, online) => sentinelAtAlice.push({ user, online }));
  await subscribed;
  const bossAtDeputy = new Recorder('boss at deputy');
  const deputySubscribed = deputy.received.next(is.ack(TOPIC.PRESENCE, PA.SUBSCRIBE), 'presence SUBSCRIBE ack for boss');
  deputy.ds.presence.subscribe('boss', (user, online) => bossAtDeputy.push({ user, online }));
  await deputySubscribed;

  await boss.close();
  await bossAtDeputy.seen((c) => c.user === 'boss' && c.online === false, 'boss leaves, at the deputy');
  await loginAll(h, server, ['sentinel']);
  await sentinelAtAlice.seen((c) => c.user === 'sentinel' && c.online === true, 'sentinel joins, at alice');
  assert.deepEqual(bossAtAlice.items, [], 'the refused subscription got no leave');
  const notifications = [PA.PRESENCE_JOIN, PA.PRESENCE_LEAVE, PA.PRESENCE_JOIN_ALL, PA.PRESENCE_LEAVE_ALL];
  assert.ok(!alice.received.items.some((m) => m.topic === TOPIC.PRESENCE && notifications.includes(m.action) && m.name === 'boss'),
    'no join/leave of boss reached alice');
  // lurker's own later request is answered after any notification queued before it.
  await denial(lurker, TOPIC.PRESENCE, PA.QUERY, 'deputy', () => lurker.ds.presence.getAll(['deputy']).catch(() => {}));
  assert.deepEqual(everyone.items, [], 'the refused subscribe-all got no joins or leaves');

  assert.ok(onlyErrors(lurker, 'MESSAGE_DENIED', 'PRESENCE') >= 1);
  assert.ok(onlyErrors(alice, 'MESSAGE_DENIED', 'PRESENCE') >= 1);
  assert.deepEqual(deputy.errors.items, []);
});

// ---- user.data --------------------------------------------------------------------------------

scenario('valve user.data is the serverData of file auth (not the clientData); null serverData makes such a rule fail', async (h) => {
  const auth = fileAuth({
    admin: { password: 'admin-pw', serverData: { role: 'admin' } },
    // clientData is what the client is told, never what rules see.
    bob: { password: 'bob-pw', serverData: { role: 'user' }, clientData: { role: 'admin' } },
    plain: { password: 'plain-pw' },
    listener: { password: 'listener-pw', serverData: { role: 'user' } },
  });
  const rule = "user.data.role === 'admin'";
  const server = await h.server({
    ...auth.config,
    ...valveConfig(valve({
      record: { 'config/*': { write: rule } },
      event: { 'broadcast/*': { publish: rule } },
      rpc: { 'ops/*': { request: rule } },
    })),
  }, { files: auth.files });

  const admin = h.client(server);
  assert.equal(await admin.login({ username: 'admin', password: 'admin-pw' }), null);
  const bob = h.client(server);
  assert.deepEqual(await bob.login({ username: 'bob', password: 'bob-pw' }), { role: 'admin' });
  const plain = await h.loggedIn(server, { username: 'plain', password: 'plain-pw' });
  // Hears the events; emitters are not subscribed themselves (the client delivers its own emits
  // to its local listeners whatever the server says).
  const listener = await h.loggedIn(server, { username: 'listener', password: 'listener-pw' });

  // records
  const atAdmin = await ready(admin, 'config/site');
  await withTimeout(atAdmin.setWithAck({ theme: 'dark' }), 'admin writes config');
  const atBob = await ready(bob, 'config/site');
  const refused = await denial(bob, TOPIC.RECORD, RA.UPDATE, 'config/site', () => atBob.setWithAck({ theme: 'pink' }));
  assert.deepEqual(await outcome(refused.result, 'bob writes config'), DENIED);

  // events
  const news = await expectDelivered(admin, listener, 'broadcast/news', { text: 'from admin' });
  await denial(bob, TOPIC.EVENT, EA.EMIT, 'broadcast/news', () => bob.emit('broadcast/news', { text: 'from bob' }));

  // rpc
  await provide(admin, 'ops/restart', (_, response) => response.send('restarting'));
  assert.deepEqual(await make(admin, 'ops/restart'), { ok: true, value: 'restarting' });
  const call = await denial(bob, TOPIC.RPC, RPA.REQUEST, 'ops/restart', () => bob.ds.rpc.make('ops/restart'));
  assert.deepEqual(await outcome(call.result, 'bob calls ops/restart'), DENIED);

  // No serverData: user.data is null and `user.data.role` throws, a permission *error*
  // (server.md §3.7), on every topic.
  const failed = await denial(plain, TOPIC.RECORD, RA.CREATEANDUPDATE, 'config/site',
    () => plain.ds.record.setDataWithAck('config/site', { theme: 'none' }), 'MESSAGE_PERMISSION_ERROR');
  assert.deepEqual(await outcome(failed.result, 'plain writes config'), PERMISSION_ERROR);
  await denial(plain, TOPIC.EVENT, EA.EMIT, 'broadcast/news', () => plain.emit('broadcast/news', { text: 'from plain' }), 'MESSAGE_PERMISSION_ERROR');
  const plainCall = await denial(plain, TOPIC.RPC, RPA.REQUEST, 'ops/restart', () => plain.ds.rpc.make('ops/restart'), 'MESSAGE_PERMISSION_ERROR');
  assert.deepEqual(await outcome(plainCall.result, 'plain calls ops/restart'), PERMISSION_ERROR);

  // None of the refused writes or emits got through.
  assert.deepEqual(await withTimeout(listener.ds.record.snapshot('config/site'), 'snapshot'), { theme: 'dark' });
  const barrier = news.next((i) => i.data.text === 'barrier', 'barrier');
  admin.emit('broadcast/news', { text: 'barrier' });
  await barrier;
  assert.deepEqual(news.items.map((i) => i.data.text), ['from admin', 'barrier']);
  assert.deepEqual([...admin.errors.items, ...listener.errors.items], []);
});

// ---- reload -----------------------------------------------------------------------------------

/** Emits on `name` until `sub` receives it (or `deadline`); each attempt that is denied retries. */
async function emitUntilDelivered(pub, sub, got, name, deadlineMs = 5_000) {
  const until = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    const data = { attempt };
    const delivered = got.next((i) => i.data?.attempt === attempt, `attempt ${attempt} on ${name}`, 1_000);
    const denied = pub.received.next(is.msg(TOPIC.EVENT, EA.MESSAGE_DENIED, { name, originalAction: EA.EMIT }), `denial of attempt ${attempt}`, 1_000);
    pub.emit(name, data);
    const result = await Promise.any([delivered.then(() => 'delivered'), denied.then(() => 'denied')]).catch(() => 'nothing');
    if (result === 'delivered') return attempt;
    if (result === 'nothing') throw new Error(`attempt ${attempt} on ${name} was neither delivered nor denied`);
    if (Date.now() > until) throw new Error(`${name} still denied ${deadlineMs} ms after the reload (${attempt} attempts)`);
    await sleep(100);
  }
}

scenario('valve reload: SIGHUP re-reads permissions.yml for open connections; a broken file keeps the old rules',
  { oursOnly: 'the reference server has no reload (SIGHUP ends the process)' }, async (h) => {
    const before = valve({ event: { 'news/*': { publish: false } } });
    const after = valve({ event: { 'sports/*': { publish: false } } });
    const server = await h.server(
      { permission: { type: 'config', options: { permissions: raw('fileLoad(permissions.yml)') } } },
      { files: { 'permissions.yml': toYaml(before) } },
    );
    const [alice, bob] = await loginAll(h, server, ['alice', 'bob']);
    const news = bob.collector('news/today');
    await bob.subscribe('news/today', news.callback);
    const sports = bob.collector('sports/today');
    await bob.subscribe('sports/today', sports.callback);

    await denial(alice, TOPIC.EVENT, EA.EMIT, 'news/today', () => alice.emit('news/today', { n: 0 }));
    const ok = sports.next(() => true, 'sports before the reload');
    alice.emit('sports/today', { n: 0 });
    await ok;

    // Broken files: YAML that does not parse, and a document Valve refuses (no presence section).
    const broken = ['event: [unclosed\n', toYaml({ record: before.record, event: before.event, rpc: before.rpc })];
    for (const text of broken) {
      server.writeFile('permissions.yml', text);
      server.signal('SIGHUP');
      await sleep(500);
      assert.ok(server.running, `the server survives a reload with a broken file:\n${text}`);
      await denial(alice, TOPIC.EVENT, EA.EMIT, 'news/today', () => alice.emit('news/today', { n: 1 }));
    }

    // A good file: news becomes allowed, sports denied, for the connection that is already open.
    server.writeFile('permissions.yml', toYaml(after));
    server.signal('SIGHUP');
    await emitUntilDelivered(alice, bob, news, 'news/today');
    await denial(alice, TOPIC.EVENT, EA.EMIT, 'sports/today', () => alice.emit('sports/today', { n: 1 }));
    assert.deepEqual(sports.items.map((i) => i.data), [{ n: 0 }], 'the denied sports emit reached nobody');
    assert.deepEqual(alice.sockets.items, ['open'], 'alice never reconnected');
    assert.deepEqual(bob.sockets.items, ['open']);

    // New connections get the new rules too.
    const [carol] = await loginAll(h, server, ['carol']);
    await denial(carol, TOPIC.EVENT, EA.EMIT, 'sports/today', () => carol.emit('sports/today', { n: 2 }));
    await expectDelivered(carol, bob, 'news/tomorrow');
    assert.deepEqual(bob.errors.items, []);
  });

// ---- isolation --------------------------------------------------------------------------------

scenario('valve: a stream of denials for one client neither affects other clients nor stops the server', async (h) => {
  const server = await h.server(valveConfig(valve({
    record: { 'vault/*': { read: false, create: false, write: false, delete: false } },
    event: { 'vault/*': { publish: false, subscribe: false } },
    rpc: { 'vault/*': { provide: false, request: false } },
  })));
  const [intruder, alice, bob] = await loginAll(h, server, ['intruder', 'alice', 'bob']);
  const shared = await ready(alice, 'open/shared');
  const atBob = await ready(bob, 'open/shared');
  const seen = changes(atBob);

  // Many denials, interleaved with alice's and bob's normal traffic.
  const denials = [];
  for (let i = 0; i < 20; i++) {
    denials.push(outcome(intruder.ds.record.setDataWithAck(`vault/${i}`, { i }), `vault write ${i}`));
    denials.push(outcome(intruder.ds.record.snapshot(`vault/${i}`), `vault read ${i}`));
    denials.push(outcome(intruder.ds.rpc.make(`vault/${i}`, i), `vault rpc ${i}`));
    intruder.emit(`vault/${i}`, i);
    shared.set('n', i);
  }
  for (const result of await Promise.all(denials)) assert.deepEqual(result, DENIED);
  await until(seen, atBob, { n: 19 }, 'alice\'s writes at bob');
  assert.equal(atBob.version, 20);
  await intruder.received.seen(is.msg(TOPIC.EVENT, EA.MESSAGE_DENIED, { name: 'vault/19', originalAction: EA.EMIT }), 'the last emit denial');

  // The intruder is still connected and served where the rules allow it.
  assert.equal(intruder.state, 'OPEN');
  assert.deepEqual(intruder.sockets.items, ['open']);
  assert.deepEqual(await withTimeout(intruder.ds.record.snapshot('open/shared'), 'intruder snapshot'), { n: 19 });
  await expectDelivered(intruder, bob, 'open/news');
  await expectDelivered(bob, intruder, 'open/replies');
  assert.deepEqual([...alice.errors.items, ...bob.errors.items], []);
});
