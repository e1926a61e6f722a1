/** Metadata key under which `@OnSessionEvent()` records the event types a method observes. */
export const SESSION_EVENT_METADATA = 'nestjs-mtproto-sessions:on-session-event';

/** Metadata key under which `@OnSessionEventsMissed()` marks a method. */
export const SESSION_EVENTS_MISSED_METADATA = 'nestjs-mtproto-sessions:on-session-events-missed';
