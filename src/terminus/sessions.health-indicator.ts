import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { SessionStorage } from '../core/session-storage.js';
import { describeError, toError } from '../core/to-error.js';
import { InjectSessionStorage } from '../nest/decorators/inject-session-storage.decorator.js';

/**
 * A `@nestjs/terminus` health indicator for the application's session
 * storage: down when the storage cannot be reached (its `ping()` fails within
 * the storage's own bound, `commandTimeout` for Redis), up otherwise. Either
 * way its details carry what the storage reports for operators: for Redis,
 * whether it is connected, the event reader's lag and the missed-events
 * notices. Provide it in a module that imports `TerminusModule` and sees
 * `SessionsModule`'s exports.
 */
@Injectable()
export class SessionsHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    @InjectSessionStorage() private readonly storage: SessionStorage,
  ) {}

  /** Checks the storage; the result is keyed by `key` (`'sessions'` by default) in terminus's report. */
  async isHealthy<const Key extends string = 'sessions'>(key: Key = 'sessions' as Key): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.health.check(key);
    try {
      await this.storage.ping?.();
    } catch (error) {
      return indicator.down({ ...this.details(), message: describeError(error) });
    }
    return indicator.up(this.details());
  }

  private details(): Record<string, string | number | boolean | null> {
    try {
      return { ...this.storage.healthDetails?.() };
    } catch (error) {
      // A storage that cannot describe itself is still checked by its ping.
      return { detailsError: toError(error).message };
    }
  }
}
