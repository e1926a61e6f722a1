import type { INestApplication, LoggerService, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';

/** Keeps what Nest logs, so that tests can assert on warnings and errors. */
export class RecordingLogger implements LoggerService {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  log(): void {}
  debug(): void {}
  verbose(): void {}
  warn(message: unknown): void {
    this.warnings.push(String(message));
  }
  error(message: unknown): void {
    this.errors.push(String(message));
  }
}

/** Boots a real Nest application around one small module, as a user's app would. */
export async function bootstrap(rootModule: Type, logger = new RecordingLogger()): Promise<{ app: INestApplication; logger: RecordingLogger }> {
  const moduleRef = await Test.createTestingModule({ imports: [rootModule] }).setLogger(logger).compile();
  const app = moduleRef.createNestApplication({ logger });
  await app.init();
  return { app, logger };
}

/** A promise with its resolve handle, to hold an observer open for as long as a test wants. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
