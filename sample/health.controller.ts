import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { SessionsHealthIndicator } from 'nestjs-mtproto-sessions/terminus';

/**
 * `GET /health`, for a load balancer or a Kubernetes probe: 200 while the
 * session storage answers, 503 when it cannot be reached (Redis away). The
 * details say whether the storage is connected, how far its event reader lags
 * and how many missed-events notices it raised.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly sessions: SessionsHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.sessions.isHealthy('sessions')]);
  }
}
