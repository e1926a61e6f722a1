import {
  Logger,
  Module,
  type DynamicModule,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { SessionObserverExplorer } from './session-observer-explorer.js';
import { resolveLifetime } from './session-lifetime.js';
import type { SessionStorage } from './session-storage.js';
import { SessionSubject } from './session-subject.js';
import {
  ConfigurableSessionsModule,
  SESSIONS_MODULE_OPTIONS,
  type SessionsModuleAsyncOptions,
  type SessionsModuleRootOptions,
} from './sessions.module-definition.js';
import type { SessionsModuleOptions } from './sessions-module-options.js';
import { InMemorySessionStorage } from './storages/in-memory-session-storage.js';

const STORAGE_METHODS = ['createSession', 'hasSession', 'destroySession'] as const;

function createSubject(options: SessionsModuleOptions | undefined, explorer: SessionObserverExplorer): SessionSubject {
  assertLifetimeOnDefaultOnly(options ?? {}, 'the options given to SessionsModule');
  const storage = options?.storage ?? new InMemorySessionStorage({ idleTimeout: options?.idleTimeout, maxSessions: options?.maxSessions });
  assertStorage(storage, 'the options given to SessionsModule');
  const subject: SessionSubject = new SessionSubject(storage, {
    logger: new Logger(SessionSubject.name),
    // Events raised before our onModuleInit (in another provider's, or in a factory) must still reach decorated observers.
    prepareObservers: () => explorer.subscribeObservers(subject),
  });
  return subject;
}

/**
 * Registers an injectable {@link SessionSubject} and wires every
 * `@OnSessionEvent()` method of the application to it at bootstrap.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    SessionObserverExplorer,
    { provide: SessionSubject, useFactory: createSubject, inject: [SESSIONS_MODULE_OPTIONS, SessionObserverExplorer] },
  ],
  exports: [SessionSubject],
})
export class SessionsModule extends ConfigurableSessionsModule implements OnModuleInit, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('SessionsModule');

  constructor(
    private readonly subject: SessionSubject,
    private readonly explorer: SessionObserverExplorer,
  ) {
    super();
  }

  /**
   * `forRoot()` keeps sessions in memory, `forRoot(storage)` in the given
   * storage; `forRoot({ storage, isGlobal })` also sets module options.
   */
  static override forRoot(storageOrOptions: SessionStorage | SessionsModuleRootOptions = {}): DynamicModule {
    const options: SessionsModuleRootOptions = isStorage(storageOrOptions) ? { storage: storageOrOptions } : storageOrOptions;
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`SessionsModule.forRoot() takes a SessionStorage or an options object; got ${String(options)}`);
    }
    if (options.storage !== undefined) assertStorage(options.storage, 'SessionsModule.forRoot({ storage })');
    assertLifetimeOnDefaultOnly(options, 'SessionsModule.forRoot()');
    // Checked now rather than at bootstrap, so a bad value fails where it is written.
    resolveLifetime({ idleTimeout: options.idleTimeout, maxSessions: options.maxSessions }, 'SessionsModule.forRoot()');
    return super.forRoot(options);
  }

  /** Options built from other providers, such as a storage configured from `ConfigService`. */
  static override forRootAsync(options: SessionsModuleAsyncOptions): DynamicModule {
    const given = (['useFactory', 'useClass', 'useExisting'] as const).filter((key) => options?.[key] !== undefined);
    if (given.length !== 1) {
      throw new TypeError(
        `SessionsModule.forRootAsync() needs exactly one of useFactory, useClass or useExisting; got ${given.length === 0 ? 'none' : given.join(' and ')}`,
      );
    }
    return super.forRootAsync(options);
  }

  /**
   * Wires the observers, then waits (within the storage's own bound) until a
   * shared storage reads its events, so an app that has booted hears every
   * later transition. A storage that is not ready is reported, not fatal:
   * its calls wait for it or fail with its own typed error.
   */
  async onModuleInit(): Promise<void> {
    this.explorer.subscribeObservers(this.subject, true);
    try {
      await this.subject.ready();
    } catch (error) {
      this.logger.warn(`The session storage is not ready yet (${error instanceof Error ? error.message : String(error)}); going on`);
    }
  }

  /** Lets notifications in flight finish while the observers are still alive. */
  async onModuleDestroy(): Promise<void> {
    await this.subject.drain();
  }

  /** Runs after every provider's own destroy hooks, which may still destroy sessions. */
  async onApplicationShutdown(): Promise<void> {
    await this.subject.close();
  }
}

/** Lifetime options on the module configure the default storage only: a given storage has its own. */
function assertLifetimeOnDefaultOnly(options: SessionsModuleOptions, source: string): void {
  if (options.storage === undefined) return;
  const misplaced = (['idleTimeout', 'maxSessions'] as const).filter((key) => options[key] !== undefined);
  if (misplaced.length > 0) {
    throw new TypeError(`${source}: ${misplaced.join(' and ')} configure the default in-memory storage; pass them to the storage you give instead`);
  }
}

function isStorage(value: unknown): value is SessionStorage {
  return typeof (value as Partial<SessionStorage> | null)?.createSession === 'function';
}

function assertStorage(storage: unknown, source: string): asserts storage is SessionStorage {
  const missing = STORAGE_METHODS.filter((method) => typeof (storage as Record<string, unknown> | null)?.[method] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`The storage in ${source} is not a SessionStorage: it lacks ${missing.join(', ')}()`);
  }
}
