import { Controller, Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { prometheusExporter } from './metrics.js';

/** `GET /metrics`: the package's OpenTelemetry metrics in Prometheus's text format. */
@Controller('metrics')
export class MetricsController {
  @Get()
  metrics(@Req() request: Request, @Res() response: Response): void {
    prometheusExporter.getMetricsRequestHandler(request, response);
  }
}
