// Loads the built package (run `npm run build` first) the ways a user's app does,
// and checks that CommonJS and ESM consumers share one copy of every class.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);

test('import and require of the package name give the same classes', async () => {
  const imported = await import('nestjs-mtproto-sessions');
  const required = require('nestjs-mtproto-sessions');
  assert.equal(typeof imported.SessionsModule, 'function');
  assert.equal(imported.SessionsModule, required.SessionsModule);
  assert.equal(imported.SessionSubject, required.SessionSubject);
  assert.equal(imported.InvalidSessionIdError, required.InvalidSessionIdError);
});

test('the CommonJS build, which jest and older Nodes take, exports the same API', async () => {
  const commonjs = require('../../dist/cjs/index.js');
  const esm = await import('../../dist/esm/index.js');
  assert.deepEqual(Object.keys(commonjs).sort(), Object.keys(esm).sort());
  assert.equal(commonjs.toSessionId('-9223372036854775808'), -(2n ** 63n));
});

test('the built package boots a Nest app that wires a decorated observer', async () => {
  const { Injectable, Module } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  const { OnSessionEvent, SessionsModule, SessionSubject } = await import('nestjs-mtproto-sessions');

  class Observer {
    events = [];
    onSession(event) {
      this.events.push(event);
    }
  }
  const method = Object.getOwnPropertyDescriptor(Observer.prototype, 'onSession');
  OnSessionEvent('created')(Observer.prototype, 'onSession', method);
  Injectable()(Observer);
  class AppModule {}
  Module({ imports: [SessionsModule.forRoot()], providers: [Observer] })(AppModule);

  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  try {
    const subject = app.get(SessionSubject);
    assert.equal(await subject.createSession(2n ** 63n - 1n), true);
    assert.deepEqual(
      app.get(Observer).events.map((event) => [event.type, event.sessionId]),
      [['created', 2n ** 63n - 1n]],
    );
  } finally {
    await app.close();
  }
});

test('the package root loads no redis or @redis/* module, by require and by import', () => {
  const redis = /[\\/]node_modules[\\/](redis|@redis[\\/][^\\/]+)[\\/]/;
  // Fresh processes, so nothing loaded by this test file counts. redis is installed here (a dev dependency).
  const required = execFileSync(process.execPath, ['-e', `
    require('nestjs-mtproto-sessions'); require('./dist/cjs/index.js');
    console.log(JSON.stringify(Object.keys(require.cache)));
  `], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(required).filter((file) => redis.test(file)), []);
  assert.ok(JSON.parse(required).some((file) => file.endsWith('dist/cjs/index.js')), 'the CommonJS build was not loaded');
  execFileSync(process.execPath, ['--import', './test/smoke/forbid-redis.mjs', '--input-type=module', '-e', `
    await import('nestjs-mtproto-sessions'); await import('./dist/esm/index.js');
  `], { encoding: 'utf8' });
  // The /redis entry alone loads none either (an app on ioredis has no node-redis)...
  execFileSync(process.execPath, ['--import', './test/smoke/forbid-redis.mjs', '--input-type=module', '-e', `
    await import('nestjs-mtproto-sessions/redis');
  `], { encoding: 'utf8' });
  // ...and the check itself can fail: a storage on { url } does load node-redis, and says so when it cannot.
  const control = spawnSync(process.execPath, ['--import', './test/smoke/forbid-redis.mjs', '--input-type=module', '-e', `
    const { RedisSessionStorage } = await import('nestjs-mtproto-sessions/redis');
    const storage = new RedisSessionStorage({ url: 'redis://127.0.0.1:1', commandTimeout: 200 });
    await storage.ready().catch(() => undefined);
    await storage.close();
  `], { encoding: 'utf8' });
  assert.match(control.stderr, /needs the optional peer `redis` \(node-redis\), which could not be loaded \(Error: the package root loaded a Redis module/);
});

test('the package root loads no other optional peer: no ioredis, @nestjs/terminus or @opentelemetry/* (metrics import the API when a subject is built, if installed)', () => {
  const optional = /[\\/]node_modules[\\/](ioredis|@nestjs[\\/]terminus|@opentelemetry[\\/][^\\/]+)[\\/]/;
  const loaded = JSON.parse(execFileSync(process.execPath, ['-e', `
    const loaded = new Set();
    const Module = require('node:module');
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (...args) { const file = resolve.apply(this, args); loaded.add(file); return file; };
    require('nestjs-mtproto-sessions');
    console.log(JSON.stringify([...loaded]));
  `], { encoding: 'utf8' }));
  assert.ok(loaded.some((file) => file.endsWith('dist/cjs/index.js')), 'the CommonJS build was not loaded');
  assert.deepEqual(loaded.filter((file) => optional.test(file)), []);
});

test('the Redis storage loads from nestjs-mtproto-sessions/redis, by import and by require, and not from the root', async () => {
  const imported = await import('nestjs-mtproto-sessions/redis');
  const required = require('nestjs-mtproto-sessions/redis');
  assert.equal(typeof imported.RedisSessionStorage, 'function');
  assert.equal(imported.RedisSessionStorage, required.RedisSessionStorage);
  assert.equal((await import('nestjs-mtproto-sessions')).RedisSessionStorage, undefined);
});

test('the published files are the build, README, CHANGELOG and LICENSE only', () => {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' }));
  const outside = pack.files.map((file) => file.path).filter((path) => !/^(dist\/|README\.md$|CHANGELOG\.md$|LICENSE$|package\.json$)/.test(path));
  assert.deepEqual(outside, []);
  assert.ok(pack.files.some((file) => file.path === 'dist/esm/index.js'));
  assert.ok(pack.files.some((file) => file.path === 'dist/cjs/index.d.ts'));
});

test('the root, by import and by require, loads no @nestjs/event-emitter nor eventemitter2 (an optional peer)', () => {
  // A fresh process each: this one has loaded @nestjs/core and more. Any copy of
  // @nestjs/event-emitter loads eventemitter2, a CommonJS module, so it would show in require.cache.
  const report = "console.log(JSON.stringify(Object.keys(require.cache).filter((path) => /eventemitter2|event-emitter/.test(path))))";
  const loaders = {
    require: ['-e', `require('nestjs-mtproto-sessions'); ${report}`],
    import: ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); await import('nestjs-mtproto-sessions'); ${report}`],
  };
  for (const [how, args] of Object.entries(loaders)) {
    const loaded = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' }));
    assert.deepEqual(loaded, [], `${how} of the root loaded ${loaded.join(', ')}`);
  }
  // The check itself can fail: an app that imports @nestjs/event-emitter does load eventemitter2.
  const withEmitter = JSON.parse(execFileSync(process.execPath, ['-e', `require('@nestjs/event-emitter'); ${report}`], { encoding: 'utf8' }));
  assert.ok(withEmitter.length > 0, 'eventemitter2 did not show in require.cache');
});

test('the conformance kit loads from nestjs-mtproto-sessions/testing, by import and by require', async () => {
  const imported = await import('nestjs-mtproto-sessions/testing');
  const required = require('nestjs-mtproto-sessions/testing');
  assert.equal(typeof imported.describeSessionStorage, 'function');
  assert.equal(imported.describeSessionStorage, required.describeSessionStorage);
  // It throws a clear TypeError outside a runner with describe/it globals, as here under node:test.
  assert.throws(() => imported.describeSessionStorage('x', () => undefined), /needs describe\(\) and it\(\)/);
});

// The kit on the built package, under node:test: a runner without globals, given its describe and it.
const { describe, it } = await import('node:test');
const { describeSessionStorage } = await import('nestjs-mtproto-sessions/testing');
const { InMemorySessionStorage } = await import('nestjs-mtproto-sessions');
describeSessionStorage('InMemorySessionStorage (built)', (options) => new InMemorySessionStorage(options), {
  lifetime: true,
  testApi: { describe, it: (name, body) => it(name, body) },
});
