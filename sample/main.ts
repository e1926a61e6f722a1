import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  // On SIGINT/SIGTERM, run the shutdown hooks: SessionsModule lets pending
  // notifications finish and closes the storage; the SSE stream ends its responses.
  app.enableShutdownHooks();
  await app.listen(process.env.PORT ?? 3000);
  new Logger('Bootstrap').log(`Listening on ${await app.getUrl()}/sessions`);
}

bootstrap().catch((error: unknown) => {
  new Logger('Bootstrap').error('Failed to start', error instanceof Error ? error.stack : String(error));
  process.exitCode = 1;
});
