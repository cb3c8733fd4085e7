// Events: subscribe / emit / unsubscribe, bulk subscriptions (protocol.md §3.4, §4).
//
// Proving that something was NOT delivered without sleeping: after the action under test, a
// sentinel event is sent over the same path; messages of one connection are processed and
// forwarded in order, so once the sentinel arrived, the unwanted message would have too.

import assert from 'node:assert/strict';
import { scenario } from './harness.mjs';
import { is, TOPIC, EVENT_ACTION } from './clients.mjs';

const loginAll = (h, server, names) => Promise.all(names.map((username) => h.loggedIn(server, { username })));

scenario('events reach every other subscriber, never echo to the emitter, stop after unsubscribe', async (h) => {
  const server = await h.server();
  const [a, b, c] = await loginAll(h, server, ['a', 'b', 'c']);
  const room = { a: a.collector('chat/room'), b: b.collector('chat/room'), c: c.collector('chat/room') };
  const controlAtC = c.collector('chat/control');
  await Promise.all([
    a.subscribe('chat/room', room.a.callback),
    b.subscribe('chat/room', room.b.callback),
    c.subscribe('chat/room', room.c.callback),
    c.subscribe('chat/control', controlAtC.callback),
  ]);

  // Every payload type survives the round trip; `undefined` means "no data" on the wire.
  const payloads = [{ text: 'hi', list: [1, 2, { deep: true }] }, 'a string', 42, 0, '', false, null, undefined];
  for (const [i, data] of payloads.entries()) {
    const atB = room.b.next(() => true, `payload #${i} at b`);
    const atC = room.c.next(() => true, `payload #${i} at c`);
    a.emit('chat/room', data);
    assert.deepEqual((await atB).data, data, `payload #${i} at b`);
    assert.deepEqual((await atC).data, data, `payload #${i} at c`);
  }
  const wireAtB = b.received.filter(is.emit('chat/room'));
  assert.equal(wireAtB.at(-1).data, undefined, 'an emit without payload arrives without data');
  assert.equal(wireAtB.at(-2).data, 'null');

  // The emitter's own callback fired once per emit (locally). Make b emit a sentinel: had the
  // server echoed a's emits back to a, they would have reached a before it.
  const sentinelAtA = room.a.next((x) => x.data === 'sentinel from b', 'sentinel at a');
  b.emit('chat/room', 'sentinel from b');
  await sentinelAtA;
  assert.deepEqual(room.a.items.map((x) => x.data), [...payloads, 'sentinel from b']);
  assert.equal(a.received.filter(is.emit('chat/room')).length, 1, 'a got only b\'s event from the server');

  // After c unsubscribes, b still gets events, c does not.
  await c.unsubscribe('chat/room');
  const lateAtB = room.b.next((x) => x.data === 'after unsubscribe', 'late event at b');
  const controlSeen = controlAtC.next(() => true, 'control event at c');
  a.emit('chat/room', 'after unsubscribe');
  a.emit('chat/control', 'barrier'); // same sender, so it is forwarded after the previous emit
  await lateAtB;
  await controlSeen;
  // Checked on the wire: the client itself would drop an event it no longer listens to.
  assert.ok(!c.received.items.some((m) => is.emit('chat/room')(m) && m.data === '"after unsubscribe"'),
    'c received an event after unsubscribing');
  assert.deepEqual(a.errors.items, []);
  assert.deepEqual(b.errors.items, []);
  assert.deepEqual(c.errors.items, []);
});

scenario('names subscribed within one subscriptionInterval go out as one bulk message and all work', async (h) => {
  const server = await h.server();
  const [emitter, sub] = await loginAll(h, server, ['emitter', 'sub']);
  const names = ['bulk/1', 'bulk/2', 'bulk/3', 'bulk/4', 'bulk/5'];
  const got = Object.fromEntries(names.map((n) => [n, sub.collector(n)]));
  const barrier = sub.collector('bulk/barrier');
  await sub.subscribe('bulk/barrier', barrier.callback);

  const sentMark = sub.sent.mark();
  const ackMark = sub.received.mark();
  await Promise.all(names.map((n) => sub.subscribe(n, got[n].callback))); // same tick → one message
  const bulk = sub.sent.items.slice(sentMark).filter(is.msg(TOPIC.EVENT, EVENT_ACTION.SUBSCRIBE));
  assert.equal(bulk.length, 1, 'the client batched the subscriptions');
  assert.deepEqual(bulk[0].names, names);
  const acks = sub.received.items.slice(ackMark).filter(is.ack(TOPIC.EVENT, EVENT_ACTION.SUBSCRIBE));
  assert.deepEqual(acks.map((m) => m.correlationId), [bulk[0].correlationId], 'one ack for the bulk message');

  for (const n of names) {
    const arrived = got[n].next(() => true, `event on ${n}`);
    emitter.emit(n, { name: n });
    assert.deepEqual((await arrived).data, { name: n });
  }

  // Bulk unsubscribe: afterwards none of the names is delivered.
  const unsubMark = sub.sent.mark();
  await Promise.all(names.map((n) => sub.unsubscribe(n)));
  const unsub = sub.sent.items.slice(unsubMark).filter(is.msg(TOPIC.EVENT, EVENT_ACTION.UNSUBSCRIBE));
  assert.equal(unsub.length, 1);
  assert.deepEqual(unsub[0].names, names);
  const barrierSeen = barrier.next(() => true, 'barrier event');
  for (const n of names) emitter.emit(n, 'after unsubscribe');
  emitter.emit('bulk/barrier', 'barrier');
  await barrierSeen;
  for (const n of names) {
    // On the wire: the client would silently drop events it no longer listens to.
    assert.equal(sub.received.filter(is.emit(n)).length, 1, `${n} sent to the client after unsubscribe`);
  }
  assert.deepEqual(sub.errors.items, []);
});
