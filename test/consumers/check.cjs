// The checks every consumer app runs. The app's entry (app.cjs or app.mjs) loads
// the modules its own way and hands them over, so this file loads nothing by name.
const assert = require('node:assert/strict');

const MAX = 2n ** 63n - 1n;

/** Applies a method decorator the way TypeScript's legacy decorators do. */
function decorate(decorator, cls, method) {
  decorator(cls.prototype, method, Object.getOwnPropertyDescriptor(cls.prototype, method));
}

module.exports = async function check({ mode, pkg, other, nestVersion, common, core, eventEmitter, terminus, health, resolve, loaded }) {
  // 0. An in-memory app installs and runs without the optional Redis peer, and loads none of it.
  assert.throws(() => resolve('redis'), { code: 'MODULE_NOT_FOUND' }, `${mode}: redis was installed, though only the /redis entry needs it`);
  const redisModules = loaded().filter((file) => /[\\/]node_modules[\\/](redis|@redis[\\/][^\\/]+)[\\/]/.test(file));
  assert.deepEqual(redisModules, [], `${mode}: the package root loaded Redis modules`);

  // 1. One copy of the package, whichever way it is loaded.
  for (const name of ['SessionsModule', 'SessionSubject', 'SessionEvent']) {
    assert.equal(typeof pkg[name], 'function', `${name} is not exported`);
    assert.ok(pkg[name] === other[name], `${mode}: require() and import() give two different ${name} classes (dual-package hazard)`);
  }

  // 2. The Nest major this app was installed with.
  const expected = process.env.EXPECT_NEST_MAJOR;
  assert.equal(nestVersion.split('.')[0], expected, `${mode}: expected Nest ${expected}, found @nestjs/core ${nestVersion}`);

  // 3. A real app: module, injected subject, both kinds of observer.
  const { Inject, Injectable, Module } = common;
  const { OnSessionEvent, SessionEvent, SessionsModule, SessionSubject } = pkg;
  const { EventEmitterModule, OnEvent } = eventEmitter;

  class Observer {
    constructor() {
      this.heard = [];
      this.emitted = [];
    }
    onSession(event) {
      this.heard.push(event);
    }
    onCreated(event) {
      this.emitted.push(event);
    }
  }
  decorate(OnSessionEvent(), Observer, 'onSession');
  decorate(OnEvent('session.created'), Observer, 'onCreated');
  Injectable()(Observer);

  class Gateway {
    constructor(sessions) {
      this.sessions = sessions;
    }
  }
  Inject(SessionSubject)(Gateway, undefined, 0);
  Injectable()(Gateway);

  class AppModule {}
  Module({
    imports: [EventEmitterModule.forRoot(), SessionsModule.forRoot(), terminus.TerminusModule],
    providers: [Observer, Gateway, health.SessionsHealthIndicator],
  })(AppModule);

  const app = await core.NestFactory.createApplicationContext(AppModule, { logger: false });
  try {
    await app.init();
    const { sessions } = app.get(Gateway);
    const observer = app.get(Observer);
    assert.ok(sessions instanceof SessionSubject, 'the injected subject is not a SessionSubject');

    assert.equal(await sessions.createSession(MAX, 5n), true, 'createSession did not resolve true');
    for (const [how, events] of [['@OnSessionEvent()', observer.heard], ["@OnEvent('session.created')", observer.emitted]]) {
      assert.equal(events.length, 1, `${how} heard ${events.length} events, expected 1`);
      assert.ok(events[0] instanceof SessionEvent, `${how} got something other than a SessionEvent`);
      const { origin, ...event } = events[0];
      assert.deepEqual(event, { type: 'created', sessionId: MAX, authKeyId: 5n }, `${how} got the wrong event`);
      assert.equal(typeof origin, 'string', `${how} got an event without the storage's instance id`);
    }
    assert.equal(await sessions.hasSession(MAX, 5n), true, 'hasSession is not true after createSession');
    assert.equal(await sessions.destroySession(MAX, 5n), true, 'destroySession did not resolve true');
    assert.deepEqual(observer.heard.map((event) => event.type), ['created', 'destroyed']);

    // 4. The health indicator, from nestjs-mtproto-sessions/terminus, in a real terminus check.
    const report = await app.get(terminus.HealthCheckService).check([() => app.get(health.SessionsHealthIndicator).isHealthy()]);
    assert.deepEqual(report.info, { sessions: { status: 'up' } }, `${mode}: the health indicator reported ${JSON.stringify(report)}`);
  } finally {
    await app.close();
  }
};
