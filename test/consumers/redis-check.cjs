// The checks a Redis consumer app runs: RedisSessionStorage from the /redis entry
// point, with the app's own node-redis installed beside the package, or its own
// ioredis client and no node-redis at all.
const assert = require('node:assert/strict');

module.exports = async function checkRedis({ mode, redisEntry, otherRedisEntry, pkg, common, core, url, ioredis, resolve }) {
  const clients = [];
  if (ioredis !== undefined) {
    assert.throws(() => resolve('redis'), { code: 'MODULE_NOT_FOUND' }, `${mode}: redis was installed beside ioredis`);
  }
  // The app's own ioredis client per instance, or a URL the storage connects to itself.
  const source = () => {
    if (ioredis === undefined) return { url };
    const client = new ioredis.Redis(url);
    clients.push(client);
    return { client };
  };
  const { RedisSessionStorage } = redisEntry;
  assert.equal(typeof RedisSessionStorage, 'function', `${mode}: nestjs-mtproto-sessions/redis exports no RedisSessionStorage`);
  assert.ok(RedisSessionStorage === otherRedisEntry.RedisSessionStorage, `${mode}: require() and import() give two RedisSessionStorage classes`);
  assert.equal(pkg.RedisSessionStorage, undefined, `${mode}: the package root still exports RedisSessionStorage`);

  const { Module } = common;
  const { SessionsModule, SessionSubject } = pkg;
  const apps = [];
  try {
    for (const instanceId of ['a', 'b']) {
      class AppModule {}
      Module({ imports: [SessionsModule.forRoot(new RedisSessionStorage({ ...source(), instanceId, keyPrefix: `consumer-${mode}${ioredis === undefined ? '' : '-ioredis'}` }))] })(AppModule);
      const app = await core.NestFactory.createApplicationContext(AppModule, { logger: false });
      await app.init();
      apps.push(app);
    }
    const [a, b] = apps.map((app) => app.get(SessionSubject));
    const id = -(2n ** 63n);
    // a hears b's destruction from the shared stream; until then its local replica may still answer true.
    const destroyedOnA = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('a never heard the destruction b made')), 5000);
      a.subscribe({ update: (event) => { if (event.type === 'destroyed' && event.origin === 'b') { clearTimeout(timer); resolve(); } } });
    });
    assert.equal(await a.createSession(id, 9n), true, `${mode}: createSession on a did not resolve true`);
    assert.equal(await b.hasSession(id, 9n), true, `${mode}: b does not see the session a created`);
    assert.equal(await b.destroySession(id, 9n), true, `${mode}: destroySession on b did not resolve true`);
    await destroyedOnA;
    assert.equal(await a.hasSession(id, 9n), false, `${mode}: a still sees the session b destroyed after hearing it`);
  } finally {
    for (const app of apps) await app.close();
    // The application's own clients, which the storage never closes.
    for (const client of clients) await client.quit();
  }
};
