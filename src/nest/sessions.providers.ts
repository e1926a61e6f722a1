import { Logger, type FactoryProvider } from '@nestjs/common';
import { SessionStorage } from '../core/session-storage.js';
import { SessionSubject } from '../core/session-subject.js';
import { InMemorySessionStorage } from '../storages/in-memory/in-memory-session-storage.js';
import type { SessionsModuleOptions } from './sessions-module-options.interface.js';
import { assertModuleOptions, isStorage } from './sessions-module-options.validation.js';
import { SESSIONS_MODULE_OPTIONS } from './sessions.module-definition.js';
import { SessionObserversRegistrar } from './session-observers.registrar.js';

/** The storage the module keeps sessions in: the one given, or else, chosen here once, an in-memory one. */
export const sessionStorageProvider: FactoryProvider<SessionStorage> = {
  provide: SessionStorage,
  inject: [SESSIONS_MODULE_OPTIONS],
  useFactory: (options: unknown): SessionStorage => {
    // forRoot() checked its options already; a forRootAsync() factory's result is first seen here.
    try {
      assertModuleOptions(options, 'the options that SessionsModule.forRootAsync() resolved', true);
    } catch (error) {
      // Nest closes nothing of a bootstrap that failed: a storage the factory opened would keep the process alive.
      closeRefusedStorage(options);
      throw error;
    }
    return options.storage ?? new InMemorySessionStorage({ idleTimeout: options.idleTimeout, maxSessions: options.maxSessions });
  },
};

export const sessionSubjectProvider: FactoryProvider<SessionSubject> = {
  provide: SessionSubject,
  inject: [SessionStorage, SessionObserversRegistrar, SESSIONS_MODULE_OPTIONS],
  useFactory: (storage: SessionStorage, registrar: SessionObserversRegistrar, options: SessionsModuleOptions): SessionSubject => {
    const subject: SessionSubject = new SessionSubject(storage, {
      logger: new Logger(SessionSubject.name),
      // Checked with the other options by the storage provider, which runs first.
      observerTimeout: options.observerTimeout,
      // Events raised before our onModuleInit (in another provider's, or in a factory) must still reach decorated observers.
      prepareObservers: () => registrar.subscribeObservers(subject),
    });
    return subject;
  },
};

/** Closes the storage of refused options, if they hold one; never throws. */
function closeRefusedStorage(options: unknown): void {
  try {
    const storage = (options as { storage?: unknown } | null)?.storage;
    if (isStorage(storage)) storage.close?.()?.catch(() => undefined);
  } catch {
    // Options that cannot be inspected hold nothing to close.
  }
}
