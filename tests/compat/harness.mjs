// Server harness for the wire-compatibility suite.
//
// Environment:
//   DEEPSTREAM_BIN         (required) server executable; invoked as `$DEEPSTREAM_BIN start -c FILE`.
//                          Either our Rust `deepstream` or the reference CLI installed by
//                          scripts/install-reference.sh (scratch/reference/node_modules/.bin/deepstream).
//   DEEPSTREAM_REFERENCE=1 the run is against the original (reference) server: scenarios marked
//                          ours-only (they need our plugin libraries) are skipped. Nothing is
//                          skipped otherwise.
//   DEEPSTREAM_PLUGIN_DIR  directory holding our built plugin libraries (`*.so`); needed by the
//                          ours-only scenarios.
//   DEEPSTREAM_LOG_LEVEL   optional numeric server logLevel (0 debug … 3 error, default 1).
//
// Every server gets its own temp directory with a generated config.yml (server.md §1 format)
// and a free port on 127.0.0.1. Its stdout/stderr are captured and attached to the failure of
// the scenario that started it.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { toYaml } from './yaml.mjs';
import { TestClient } from './clients.mjs';

export { raw } from './yaml.mjs';

export const IS_REFERENCE = process.env.DEEPSTREAM_REFERENCE === '1';
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

function deepstreamBin() {
  const bin = process.env.DEEPSTREAM_BIN;
  if (!bin) throw new Error('DEEPSTREAM_BIN must name the server executable (see harness.mjs header)');
  // Servers run with their temp dir as cwd, so a relative path must be resolved here; a bare
  // command name is left to PATH lookup.
  return bin.includes('/') ? resolve(bin) : bin;
}

/** Directory of our plugin libraries; only ours-only scenarios call this. */
export function pluginDir() {
  const dir = process.env.DEEPSTREAM_PLUGIN_DIR;
  if (!dir) throw new Error('DEEPSTREAM_PLUGIN_DIR must point at the built plugin libraries (*.so)');
  return dir;
}

/** Options of the binary WebSocket endpoint; the defaults match server.md §1.5.1. */
export function wsBinary(options = {}) {
  return [{ type: 'ws-binary', options: { urlPath: '/deepstream', ...options } }];
}

/** Config used unless a scenario overrides keys (top-level keys are deep-merged, lists replaced). */
function baseConfig(port) {
  return {
    showLogo: false,
    logLevel: Number(process.env.DEEPSTREAM_LOG_LEVEL ?? 1),
    httpServer: { type: 'default', options: { host: '127.0.0.1', port } },
    // Only the endpoint under test: the built-in default list would also open MQTT on 1883.
    connectionEndpoints: wsBinary(),
    auth: [{ type: 'none', options: {} }],
    // `permission` is left to the server default (none): a scenario's own section must not be
    // merged with a default one (e.g. `type: none` next to a plugin `path`).
  };
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Same merge rule as deepstream's config loader: objects merge, arrays and scalars replace. */
export function merge(base, override) {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = merge(base[k], v);
  return out;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One WebSocket upgrade on the client's path. Resolves true on `101 Switching Protocols`.
 * Used as readiness probe: a listening port alone is not enough, the reference binds its
 * HTTP server before it attaches the WebSocket endpoint, and an upgrade for an unknown path
 * has its socket destroyed (protocol.md §1.1).
 */
function probeUpgrade(port, path) {
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      timeout: 1000,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode === 101);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(false);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

class ServerProcess {
  constructor({ dir, configFile, port }) {
    this.dir = dir;
    this.configFile = configFile;
    this.port = port;
    this.url = `ws://127.0.0.1:${port}/deepstream`;
    this.log = [];
    this.child = null;
    this.exited = null;
  }

  async start() {
    const child = spawn(deepstreamBin(), ['start', '-c', this.configFile], {
      cwd: this.dir,
      detached: true, // own process group, so stop() also reaches anything it forks
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.log.push(`--- [harness] started pid ${child.pid}: ${deepstreamBin()} start -c ${this.configFile}`);
    child.stdout.setEncoding('utf8').on('data', (d) => this.log.push(d.trimEnd()));
    child.stderr.setEncoding('utf8').on('data', (d) => this.log.push(d.trimEnd()));
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.log.push(`--- [harness] spawn error: ${err.message}`);
        resolve({ code: null, signal: null, error: err });
      });
      child.on('exit', (code, signal) => {
        this.log.push(`--- [harness] pid ${child.pid} exited code=${code} signal=${signal}`);
        resolve({ code, signal });
      });
    });
    let exitedEarly = false;
    this.exited.then(() => { exitedEarly = true; });

    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exitedEarly) throw new Error(`server exited during startup\n${this.logText()}`);
      if (await probeUpgrade(this.port, '/deepstream')) return this;
      await sleep(100);
    }
    await this.stop();
    throw new Error(`server did not accept WebSocket connections on port ${this.port} within ${START_TIMEOUT_MS} ms\n${this.logText()}`);
  }

  /** Kills the process group (SIGTERM, then SIGKILL) and waits for the exit. */
  async stop() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const kill = (sig) => {
      try { process.kill(-child.pid, sig); } catch { /* already gone */ }
    };
    kill('SIGTERM');
    // Unref'd guard timers: a pending guard must not keep the test process alive.
    const guard = () => sleep(STOP_TIMEOUT_MS, 'timeout', { ref: false });
    if ((await Promise.race([this.exited, guard()])) === 'timeout') {
      kill('SIGKILL');
      await Promise.race([this.exited, guard()]);
    }
  }

  /** Process id of the running server (undefined when stopped). */
  get pid() {
    return this.child?.pid;
  }

  /** True while the server process has not exited. */
  get running() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `sig` (e.g. 'SIGHUP') to the server process itself (not its group). */
  signal(sig) {
    if (!this.running) throw new Error(`cannot send ${sig}: the server is not running\n${this.logText()}`);
    process.kill(this.child.pid, sig);
  }

  /** (Re)writes a file in the server's directory, next to config.yml. */
  writeFile(name, text) {
    writeFileSync(join(this.dir, name), text);
  }

  /** Stop and start again on the same port with the same config. */
  async restart() {
    await this.stop();
    await this.start();
  }

  logText() {
    return this.log.join('\n');
  }
}

/**
 * Writes config.yml (plus any `files`, e.g. users.yml, next to it) into a fresh temp directory,
 * spawns the server and waits until it accepts WebSocket upgrades. The files can be rewritten
 * later with `server.writeFile(name, text)` (e.g. before `server.signal('SIGHUP')`).
 * @returns {Promise<{url: string, port: number, dir: string, pid: number, running: boolean,
 *   signal(sig: string): void, writeFile(name: string, text: string): void,
 *   stop(): Promise<void>, restart(): Promise<void>}>}
 */
export async function startServer(configOverrides = {}, { files = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ds-compat-'));
  const port = await freePort();
  const config = merge(baseConfig(port), configOverrides);
  const configFile = join(dir, 'config.yml');
  const configText = toYaml(config);
  writeFileSync(configFile, configText);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const server = new ServerProcess({ dir, configFile, port });
  server.configText = configText;
  try {
    return await server.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Declares one scenario. `fn(h)` gets a context that starts servers and clients and cleans
 * them all up afterwards; when the scenario fails, the server logs and config are appended to
 * the error so a CI failure is self-explanatory.
 *   scenario(name, fn)
 *   scenario(name, { oursOnly: true }, fn)   skipped only when DEEPSTREAM_REFERENCE=1
 *   scenario(name, { oursOnly: 'why' }, fn)  the same, with the reason the reference cannot run it
 * A scenario whose tail is ours-only ends with `if (IS_REFERENCE) return h.skip('why');`, so the
 * reference run reports it skipped rather than passed.
 */
export function scenario(name, opts, fn) {
  if (typeof opts === 'function') [fn, opts] = [opts, {}];
  const why = typeof opts.oursOnly === 'string' ? opts.oursOnly : 'needs our plugin libraries';
  const skip = opts.oursOnly && IS_REFERENCE ? `ours-only: ${why}` : false;
  test(name, { skip, timeout: opts.timeout ?? 60_000 }, async (t) => {
    const h = new ScenarioContext(t);
    try {
      await fn(h);
    } catch (err) {
      const report = h.report();
      if (report) {
        try { err.message += `\n${report}`; } catch { /* frozen message: print instead */ console.error(report); }
      }
      throw err;
    } finally {
      await h.cleanup();
    }
  });
}

class ScenarioContext {
  constructor(t) {
    // node's test context: a scenario that stops early against the reference says so.
    this.test = t;
    this.servers = [];
    this.clients = [];
  }

  /** Marks the scenario skipped (the caller returns): the rest checks what only ours does. */
  skip(why) {
    this.test.skip(`ours-only from here: ${why}`);
  }

  async server(configOverrides, opts) {
    const server = await startServer(configOverrides, opts);
    this.servers.push(server);
    return server;
  }

  /** A client that is connected but not logged in (see TestClient). */
  client(server, options) {
    const c = new TestClient(server.url, options);
    this.clients.push(c);
    return c;
  }

  /** A connected client whose login() with `authData` succeeded. */
  async loggedIn(server, authData = {}, options) {
    const c = this.client(server, options);
    await c.login(authData);
    return c;
  }

  report() {
    const parts = [];
    for (const c of this.clients) parts.push(c.report());
    for (const s of this.servers) {
      parts.push(`===== server on port ${s.port} config.yml =====\n${s.configText}`);
      parts.push(`===== server on port ${s.port} output =====\n${s.logText()}`);
    }
    return parts.join('\n');
  }

  async cleanup() {
    // Clients first, while their server still runs, so their sockets close cleanly.
    await Promise.all(this.clients.map((c) => c.close()));
    await Promise.all(this.servers.map((s) => s.stop()));
    for (const s of this.servers) rmSync(s.dir, { recursive: true, force: true });
  }
}
