import type { SessionStorage } from '../core/session-storage.js';

/** What `SessionsModule.forRoot()` takes, and what a `forRootAsync()` factory returns. */
export interface SessionsModuleOptions {
  /** Where sessions are kept; an `InMemorySessionStorage` when omitted. */
  storage?: SessionStorage;
  /** Idle expiry (ms) of the default in-memory storage; give a `storage` its own options instead. */
  idleTimeout?: number;
  /** Bound on live sessions of the default in-memory storage; give a `storage` its own options instead. */
  maxSessions?: number;
  /**
   * How long (ms) a transition, `drain()` and `app.close()` wait for one
   * observer to settle one event; 5000 by default. An observer that has not
   * settled by then is logged by name as a failure and no longer waited for.
   */
  observerTimeout?: number;
}

/** Options that shape the module itself rather than the subject. */
export interface SessionsModuleExtras {
  /** Makes `SessionSubject` injectable everywhere without importing the module again. */
  isGlobal?: boolean;
}

/** What `forRootAsync({ useClass })` and `forRootAsync({ useExisting })` expect of the class. */
export interface SessionsOptionsFactory {
  createSessionsOptions(): SessionsModuleOptions | Promise<SessionsModuleOptions>;
}
