import type { SessionStorage } from '../core/session-storage.js';

/** What `SessionsModule.forRoot()` takes, and what a `forRootAsync()` factory returns. */
export interface SessionsModuleOptions {
  /** Where sessions are kept; an `InMemorySessionStorage` when omitted. */
  storage?: SessionStorage;
  /** Idle expiry (ms) of the default in-memory storage; give a `storage` its own options instead. */
  idleTimeout?: number;
  /** Bound on live sessions of the default in-memory storage; give a `storage` its own options instead. */
  maxSessions?: number;
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
