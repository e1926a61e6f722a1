import { Logger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { AppModule } from './app.module.js';

const logger = new Logger('Bootstrap');

async function bootstrap(): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule, { abortOnError: false });
  try {
    // The module boots on a storage that is not ready (its calls fail with a typed error
    // until it is); a server that cannot reach its sessions had better not start at all.
    await app.get(SessionSubject).ready();
    // On SIGINT/SIGTERM, run the shutdown hooks: SessionsModule lets pending
    // notifications finish and closes the storage; the SSE stream ends its responses.
    app.enableShutdownHooks();
    await app.listen(process.env.PORT ?? 3000);
  } catch (error) {
    // Close what was opened (the Redis connections), so that the process can exit.
    await app.close().catch(() => undefined);
    throw error;
  }
  logger.log(`Listening on ${await app.getUrl()}/sessions`);
  return app;
}

bootstrap().catch((error: unknown) => {
  logger.error(`Cannot start: ${error instanceof Error ? error.message : String(error)}`, error instanceof Error ? error.stack : undefined);
  // Exit now: a connection or timer left behind by a half-started app must not keep a failed process alive.
  process.exit(1);
});
