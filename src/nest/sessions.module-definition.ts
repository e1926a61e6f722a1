import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { SessionsModuleExtras, SessionsModuleOptions } from './sessions-module-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableSessionsModule,
  MODULE_OPTIONS_TOKEN: SESSIONS_MODULE_OPTIONS,
  OPTIONS_TYPE: SESSIONS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SESSIONS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SessionsModuleOptions>({ moduleName: 'Sessions' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createSessionsOptions')
  .setExtras<SessionsModuleExtras>({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** `forRoot()`'s options object. */
export type SessionsModuleRootOptions = typeof SESSIONS_OPTIONS_TYPE;

/** `forRootAsync()`'s options: `imports`, `inject`, one of `useFactory`/`useClass`/`useExisting`, and `isGlobal`. */
export type SessionsModuleAsyncOptions = typeof SESSIONS_ASYNC_OPTIONS_TYPE;
