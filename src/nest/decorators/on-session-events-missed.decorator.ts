import { SESSION_EVENTS_MISSED_METADATA } from '../constants.js';

/**
 * Makes a method of a provider or controller hear that session events were
 * lost before this instance could deliver them (a shared storage's log was
 * trimmed while the instance lagged). It receives a `SessionEventsMissed`;
 * per-session state built from events may be stale and worth rebuilding.
 */
export function OnSessionEventsMissed(): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    if (typeof descriptor.value !== 'function' || typeof target === 'function') {
      const owner = typeof target === 'function' ? target.name : target.constructor.name;
      throw new TypeError(`@OnSessionEventsMissed() goes on an instance method; ${owner}.${String(propertyKey)} is not one`);
    }
    Reflect.defineMetadata(SESSION_EVENTS_MISSED_METADATA, true, descriptor.value);
    return descriptor;
  };
}
