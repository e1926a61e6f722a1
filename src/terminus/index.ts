export { SessionsHealthIndicator } from './sessions.health-indicator.js';
