import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  InjectSessionStorage,
  InMemorySessionStorage,
  SessionStorage,
  SessionsModule,
  SessionSubject,
  type SessionsModuleOptions,
  type SessionsOptionsFactory,
} from 'nestjs-mtproto-sessions';
import { bootstrap } from '../support/bootstrap';

const STORAGE = Symbol('STORAGE');

/** Stands for the user's configuration module: it provides a storage others build options from. */
@Module({ providers: [{ provide: STORAGE, useFactory: () => new InMemorySessionStorage() }], exports: [STORAGE] })
class StorageConfigModule {}

@Injectable()
class OptionsFactory implements SessionsOptionsFactory {
  readonly storage = new InMemorySessionStorage();
  createSessionsOptions(): SessionsModuleOptions {
    return { storage: this.storage };
  }
}

@Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
class OptionsFactoryModule {}

/** A service in a feature module of its own, injecting the subject as users do. */
@Injectable()
class Greeter {
  constructor(readonly sessions: SessionSubject) {}
}

async function expectSubjectUses(app: INestApplication, storage: SessionStorage): Promise<void> {
  const subject = app.get(SessionSubject);
  const id = -(2n ** 63n);
  expect(await subject.createSession(id, 7n)).toBe(true);
  expect(await storage.hasSession(id, 7n)).toBe(true);
}

describe('SessionsModule.forRoot', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('keeps sessions in memory when given nothing, and the subject is injectable in an importing module', async () => {
    @Module({ imports: [SessionsModule.forRoot()], providers: [Greeter] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    const { sessions } = app.get(Greeter);
    expect(sessions).toBe(app.get(SessionSubject));
    expect(await sessions.createSession(2n ** 63n - 1n)).toBe(true);
    expect(await sessions.hasSession(2n ** 63n - 1n)).toBe(true);
    expect(await sessions.createSession(2n ** 63n - 1n)).toBe(false);
  });

  it('uses the storage instance it is given', async () => {
    const storage = new InMemorySessionStorage();
    @Module({ imports: [SessionsModule.forRoot(storage)] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await expectSubjectUses(app, storage);
  });

  it('takes an options object with the storage', async () => {
    const storage = new InMemorySessionStorage();
    @Module({ imports: [SessionsModule.forRoot({ storage })] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await expectSubjectUses(app, storage);
  });

  it('with isGlobal, serves modules that do not import it', async () => {
    @Module({ providers: [Greeter] })
    class FeatureModule {}
    @Module({ imports: [SessionsModule.forRoot({ isGlobal: true }), FeatureModule] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    expect(app.get(Greeter).sessions).toBe(app.get(SessionSubject));
  });

  it('without isGlobal, a module that does not import it cannot inject the subject', async () => {
    @Module({ providers: [Greeter] })
    class FeatureModule {}
    @Module({ imports: [SessionsModule.forRoot(), FeatureModule] })
    class AppModule {}
    await expect(Test.createTestingModule({ imports: [AppModule] }).setLogger({ log() {}, error() {}, warn() {} }).compile()).rejects.toThrow(
      /SessionSubject/,
    );
  });

  it.each([
    ['isGlobal as a string', { isGlobal: 'false' }, /SessionsModule.forRoot\(\) isGlobal must be a boolean; got the string "false"/],
    ['isGlobal as a number', { isGlobal: 1 }, /isGlobal must be a boolean; got number 1/],
    ['storage: undefined (an unset configuration value)', { storage: undefined }, /SessionsModule.forRoot\(\) has storage: undefined/],
  ])('refuses %s at once, naming it', (_name, options, message) => {
    expect(() => SessionsModule.forRoot(options as never)).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(message) }));
  });

  it('refuses options it cannot inspect (a revoked Proxy) with a TypeError naming forRoot', () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(() => SessionsModule.forRoot(proxy as never)).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/SessionsModule.forRoot\(\) must be an options object .*cannot be inspected/) }));
  });

  it('rejects a storage that lacks the storage methods, naming what is missing', () => {
    const notAStorage = { createSession: async () => true } as unknown as SessionStorage;
    expect(() => SessionsModule.forRoot(notAStorage)).toThrow(/lacks hasSession, destroySession\(\)/);
    expect(() => SessionsModule.forRoot({ storage: {} as SessionStorage })).toThrow(TypeError);
  });
});

describe('SessionsModule.forRootAsync', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('builds the options with useFactory from injected providers of imported modules', async () => {
    @Module({
      imports: [
        SessionsModule.forRootAsync({
          imports: [StorageConfigModule],
          inject: [STORAGE],
          useFactory: async (storage: SessionStorage) => ({ storage }),
        }),
      ],
    })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await expectSubjectUses(app, app.get(STORAGE, { strict: false }));
  });

  it('builds the options with useClass', async () => {
    @Module({ imports: [SessionsModule.forRootAsync({ useClass: OptionsFactory })] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await expectSubjectUses(app, app.get(OptionsFactory, { strict: false }).storage);
  });

  it('builds the options with useExisting, reusing a factory another module provides', async () => {
    @Module({ imports: [SessionsModule.forRootAsync({ imports: [OptionsFactoryModule], useExisting: OptionsFactory })] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await expectSubjectUses(app, app.get(OptionsFactory, { strict: false }).storage);
  });

  it('with isGlobal, serves modules that do not import it', async () => {
    @Module({ providers: [Greeter] })
    class FeatureModule {}
    @Module({ imports: [SessionsModule.forRootAsync({ isGlobal: true, useFactory: () => ({}) }), FeatureModule] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    const { sessions } = app.get(Greeter);
    expect(await sessions.createSession(1n)).toBe(true);
    expect(await sessions.hasSession(1n)).toBe(true);
  });

  it('refuses at once a useClass without createSessionsOptions(), naming it', () => {
    class NoFactoryMethod {}
    expect(() => SessionsModule.forRootAsync({ useClass: NoFactoryMethod as never })).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/useClass must be a class with a createSessionsOptions\(\) method; got NoFactoryMethod, which has none/) }),
    );
  });

  it('closes a storage its factory opened when the factory\'s result is refused (a failed bootstrap closes nothing)', async () => {
    const storage = new InMemorySessionStorage();
    const close = jest.spyOn(storage, 'close');
    @Module({ imports: [SessionsModule.forRootAsync({ useFactory: () => ({ storage, observerTimeout: 'x' as unknown as number }) })] })
    class AppModule {}
    await expect(bootstrap(AppModule)).rejects.toThrow(/observerTimeout/);
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('needs exactly one of useFactory, useClass and useExisting', () => {
    expect(() => SessionsModule.forRootAsync({})).toThrow(/exactly one of useFactory, useClass or useExisting; got none/);
    expect(() => SessionsModule.forRootAsync({ useClass: OptionsFactory, useExisting: OptionsFactory })).toThrow(/got useClass and useExisting/);
  });

  it('fails the bootstrap with a clear error when the factory returns something that is not a storage', async () => {
    @Module({ imports: [SessionsModule.forRootAsync({ useFactory: () => ({ storage: { hasSession: () => true } as unknown as SessionStorage }) })] })
    class AppModule {}
    await expect(bootstrap(AppModule)).rejects.toThrow(/not a SessionStorage: it lacks createSession, destroySession\(\)/);
  });
});

describe('forRootAsync results that are not an options object', () => {
  it.each([
    ['the storage itself', () => new InMemorySessionStorage(), /got a storage itself: wrap it as \{ storage \}/],
    ['a URL string', () => 'redis://127.0.0.1:6379', /must be an options object such as \{ storage \}; got the string "redis:\/\/127.0.0.1:6379"/],
    ['a number', () => 42, /must be an options object such as \{ storage \}; got number 42/],
    ['an object with a misspelt key', () => ({ storgae: new InMemorySessionStorage() }), /unknown option storgae; expected storage, idleTimeout, maxSessions or observerTimeout$/],
    ['undefined', () => undefined, /must be an options object such as \{ storage \}; got undefined$/],
    ['storage: undefined (an unset configuration value)', () => ({ storage: undefined }), /has storage: undefined .*leave storage out for the in-memory default/],
    ['isGlobal, which only forRootAsync itself can take', () => ({ isGlobal: true }), /has isGlobal, which a factory cannot set .*forRootAsync\(\{ isGlobal, useFactory \}\)/],
  ])('refuses %s at bootstrap instead of booting on a fresh in-memory storage', async (_name, factory, message) => {
    @Module({ imports: [SessionsModule.forRootAsync({ useFactory: factory as () => SessionsModuleOptions })] })
    class AppModule {}
    await expect(bootstrap(AppModule)).rejects.toThrow(message);
  });
});

describe('the storage as a provider', () => {
  @Injectable()
  class HealthCheck {
    constructor(@InjectSessionStorage() readonly storage: SessionStorage) {}
  }

  it('injects the storage given to forRoot through @InjectSessionStorage() and the SessionStorage token', async () => {
    const storage = new InMemorySessionStorage();
    @Module({ imports: [SessionsModule.forRoot(storage)], providers: [HealthCheck] })
    class AppModule {}
    const { app } = await bootstrap(AppModule);
    try {
      expect(app.get(HealthCheck).storage).toBe(storage);
      expect(app.get(SessionStorage)).toBe(storage);
    } finally {
      await app.close();
    }
  });

  it('injects the default in-memory storage, the one the subject uses, when none is given', async () => {
    @Module({ imports: [SessionsModule.forRoot()], providers: [HealthCheck] })
    class AppModule {}
    const { app } = await bootstrap(AppModule);
    try {
      const { storage } = app.get(HealthCheck);
      expect(storage).toBeInstanceOf(InMemorySessionStorage);
      await app.get(SessionSubject).createSession(5n);
      await expect(storage.hasSession(5n)).resolves.toBe(true);
    } finally {
      await app.close();
    }
  });
});

describe('lifetime options on the module', () => {
  it('configure the default in-memory storage: maxSessions bounds it', async () => {
    @Module({ imports: [SessionsModule.forRoot({ maxSessions: 1, idleTimeout: 60_000 })] })
    class AppModule {}
    const { app } = await bootstrap(AppModule);
    try {
      const subject = app.get(SessionSubject);
      await expect(subject.createSession(1n)).resolves.toBe(true);
      await expect(subject.createSession(2n)).rejects.toMatchObject({ name: 'SessionLimitError', limit: 1 });
      await expect(subject.count()).resolves.toBe(1);
    } finally {
      await app.close();
    }
  });

  it('are refused beside a storage of your own, and when not positive integers', () => {
    expect(() => SessionsModule.forRoot({ storage: new InMemorySessionStorage(), idleTimeout: 1000 })).toThrow(/idleTimeout configure the default in-memory storage/);
    expect(() => SessionsModule.forRoot({ maxSessions: 0 })).toThrow(TypeError);
    expect(() => SessionsModule.forRoot({ idleTimeout: 1.5 })).toThrow(/idleTimeout/);
  });
});
