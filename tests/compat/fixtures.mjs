// Config fragments shared by several scenarios.

import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { raw } from './yaml.mjs';
import { toYaml } from './yaml.mjs';

/** PBKDF2 settings of the file auth plugin (server.md §4.2). */
export const HASH = { hash: 'sha256', iterations: 100, keyLength: 32 };

/**
 * Stored password in the file-auth format: base64(PBKDF2(password, salt)) followed by the
 * salt, which is a base64 string used as text (server.md §4.2).
 */
export function hashPassword(password, { hash, iterations, keyLength } = HASH) {
  const salt = randomBytes(16).toString('base64');
  return pbkdf2Sync(password, salt, iterations, keyLength, hash).toString('base64') + salt;
}

/**
 * `auth` section plus the users.yml it loads, for `h.server(config, {files})`.
 * `users` maps username → {password, clientData?, serverData?} with clear-text passwords.
 */
export function fileAuth(users) {
  const stored = Object.fromEntries(
    Object.entries(users).map(([name, u]) => [name, { ...u, password: hashPassword(u.password) }]),
  );
  return {
    config: { auth: [{ type: 'file', options: { users: raw('fileLoad(users.yml)'), ...HASH } }] },
    files: { 'users.yml': toYaml(stored) },
  };
}

/**
 * Valve document (server.md §3): everything allowed except events under `private/`.
 * Every section needs its root "*" entry.
 */
export const DENY_PRIVATE_EVENTS = {
  record: { '*': { create: true, write: true, read: true, delete: true, listen: true, notify: true } },
  event: {
    '*': { publish: true, subscribe: true, listen: true },
    'private/*': { publish: false, subscribe: false, listen: false },
  },
  rpc: { '*': { provide: true, request: true } },
  presence: { '*': { allow: true } },
};
