import type { INestApplication, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { RecordingLogger } from './recording-logger';

/** Boots a real Nest application around one small module, as a user's app would. */
export async function bootstrap(rootModule: Type, logger = new RecordingLogger()): Promise<{ app: INestApplication; logger: RecordingLogger }> {
  const moduleRef = await Test.createTestingModule({ imports: [rootModule] }).setLogger(logger).compile();
  const app = moduleRef.createNestApplication({ logger });
  await app.init();
  return { app, logger };
}
