import {
  Logger,
  Module,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { registerWithGlobalProvider } from '../core/session-metrics.js';
import { SessionStorage } from '../core/session-storage.js';
import { SessionSubject } from '../core/session-subject.js';
import { toError } from '../core/to-error.js';
import { SessionObserverExplorer } from './session-observer.explorer.js';
import { SessionObserversRegistrar } from './session-observers.registrar.js';
import {
  ConfigurableSessionsModule,
  type SessionsModuleAsyncOptions,
  type SessionsModuleRootOptions,
} from './sessions.module-definition.js';
import { assertAsyncModuleOptions, assertModuleOptions, isStorage } from './sessions-module-options.validation.js';
import { sessionStorageProvider, sessionSubjectProvider } from './sessions.providers.js';

/**
 * Registers an injectable {@link SessionSubject} and wires every
 * `@OnSessionEvent()` method of the application to it at bootstrap.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    SessionObserverExplorer,
    SessionObserversRegistrar,
    sessionStorageProvider,
    sessionSubjectProvider,
  ],
  exports: [SessionSubject, SessionStorage],
})
export class SessionsModule extends ConfigurableSessionsModule implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('SessionsModule');

  constructor(
    private readonly subject: SessionSubject,
    private readonly registrar: SessionObserversRegistrar,
  ) {
    super();
  }

  /**
   * `forRoot()` keeps sessions in memory, `forRoot(storage)` in the given
   * storage; `forRoot({ storage, isGlobal })` also sets module options.
   */
  static override forRoot(storageOrOptions: SessionStorage | SessionsModuleRootOptions = {}): DynamicModule {
    const options: SessionsModuleRootOptions = isStorage(storageOrOptions) ? { storage: storageOrOptions } : storageOrOptions;
    // Checked now rather than at bootstrap, so a bad value fails where it is written.
    assertModuleOptions(options, 'SessionsModule.forRoot()');
    return super.forRoot(options);
  }

  /** Options built from other providers, such as a storage configured from `ConfigService`. */
  static override forRootAsync(options: SessionsModuleAsyncOptions): DynamicModule {
    assertAsyncModuleOptions(options);
    return super.forRootAsync(options);
  }

  /**
   * Wires the observers, then waits (within the storage's own bound) until a
   * shared storage reads its events, so an app that has booted hears every
   * later transition. A storage that is not ready is reported, not fatal:
   * its calls wait for it or fail with its own typed error.
   */
  async onModuleInit(): Promise<void> {
    this.registrar.subscribeObservers(this.subject, true);
    try {
      await this.subject.ready();
    } catch (error) {
      this.logger.warn(`The session storage is not ready yet (${toError(error).message}); going on`);
    }
  }

  /**
   * An OpenTelemetry SDK started during bootstrap (in a provider's
   * onModuleInit, after the subject was built) is reported to as well: the
   * API's meters do not follow a provider registered later, so the
   * instruments are registered again with it.
   */
  onApplicationBootstrap(): void {
    registerWithGlobalProvider();
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
