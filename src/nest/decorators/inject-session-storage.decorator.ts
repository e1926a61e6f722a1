import { Inject } from '@nestjs/common';
import { SessionStorage } from '../../core/session-storage.js';

/**
 * Injects the storage that `SessionsModule` keeps sessions in: the one given to
 * `forRoot`/`forRootAsync`, or the default in-memory storage. For health checks
 * and operational code; session changes go through `SessionSubject`, which
 * tells the observers.
 */
export function InjectSessionStorage(): PropertyDecorator & ParameterDecorator {
  return Inject(SessionStorage);
}
