// Records survive a server restart with a storage plugin (protocol.md §5.1–§5.2, §5.6; server.md
// §2.4.3): what the official client wrote with write acknowledgements is read back with the same
// data and version by a new client of the restarted server, whose in-memory cache starts empty.
//
// Ours only: it loads our SQLite storage library from DEEPSTREAM_PLUGIN_DIR. The database file
// is relative, so it lives in the server's temp directory (its working directory), which a
// restart keeps and the cleanup removes.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { scenario, pluginDir } from './harness.mjs';
import { C, is, ready, withTimeout, TOPIC } from './clients.mjs';

const RA = C.RECORD_ACTION;
const rec = (action, extra) => is.msg(TOPIC.RECORD, action, extra);

function sqliteStorage() {
  return { storage: { path: join(pluginDir(), 'libstorage_sqlite.so'), options: { path: 'records.sqlite' } } };
}

scenario('records written with acks survive a restart (SQLite storage plugin)', { oursOnly: true }, async (h) => {
  const server = await h.server(sqliteStorage());
  const writer = await h.loggedIn(server, { username: 'writer' });

  const doc = await ready(writer, 'persist/doc');
  assert.equal(doc.version, 0);
  await withTimeout(doc.setWithAck({ title: 'hello', tags: ['a', 'b'], nested: { n: 1, text: 'é "q"' } }), 'setWithAck');
  await withTimeout(doc.setWithAck('nested.n', 2), 'setWithAck with a path');
  await withTimeout(doc.eraseWithAck('tags'), 'eraseWithAck');
  assert.equal(doc.version, 3);
  const docData = { title: 'hello', nested: { n: 2, text: 'é "q"' } };
  assert.deepEqual(doc.get(), docData);

  // Upserts of records the client does not hold (CREATEANDUPDATE), an object and a list.
  await withTimeout(writer.ds.record.setDataWithAck('persist/upserted', { fresh: true }), 'setDataWithAck');
  await withTimeout(writer.ds.record.setDataWithAck('persist/upserted', 'more', 1), 'setDataWithAck with a path');
  await withTimeout(writer.ds.record.setDataWithAck('persist/list', ['x', 'y']), 'setDataWithAck of a list');
  assert.deepEqual(writer.errors.items, []);
  const acks = writer.received.filter(rec(RA.WRITE_ACKNOWLEDGEMENT, { isWriteAck: true }));
  assert.equal(acks.length, 6, 'one WRITE_ACKNOWLEDGEMENT per write');
  await writer.close();

  await server.restart();

  const reader = await h.loggedIn(server, { username: 'reader' });
  const again = await ready(reader, 'persist/doc');
  const read = reader.received.filter(rec(RA.READ_RESPONSE, { name: 'persist/doc' })).at(-1);
  assert.equal(read.version, 3, 'READ_RESPONSE carries the stored version');
  assert.equal(again.version, 3);
  assert.deepEqual(again.get(), docData);

  assert.deepEqual(await withTimeout(reader.ds.record.snapshot('persist/upserted'), 'snapshot'), { fresh: true, more: 1 });
  assert.equal(await withTimeout(reader.ds.record.head('persist/upserted'), 'head'), 2);
  const list = reader.ds.record.getList('persist/list');
  await withTimeout(list.whenReady(), 'list ready');
  assert.deepEqual(list.getEntries(), ['x', 'y']);
  assert.equal(list.version, 1);

  // Writes go on from the stored version.
  await withTimeout(again.setWithAck('title', 'again'), 'setWithAck after the restart');
  assert.equal(again.version, 4);
  assert.deepEqual(reader.errors.items, []);

  // And that write survives the next restart too.
  await reader.close();
  await server.restart();
  const third = await h.loggedIn(server, { username: 'third' });
  assert.deepEqual(await withTimeout(third.ds.record.snapshot('persist/doc'), 'snapshot'), { ...docData, title: 'again' });
  assert.equal(await withTimeout(third.ds.record.head('persist/doc'), 'head'), 4);
  assert.deepEqual(third.errors.items, []);
});
