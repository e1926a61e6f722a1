import { SESSION_EVENT_TYPES, type SessionEventType } from '../../core/session-event.js';
import { SESSION_EVENT_METADATA } from '../constants.js';

/** `undefined` in the list stands for "every type". */
export type SessionEventFilter = readonly (SessionEventType | undefined)[];

/**
 * Makes a method of a provider or controller a session observer, wired at
 * bootstrap. With a type it receives only events of that type; several of these
 * decorators on one method add up, and a method is called at most once per event.
 */
export function OnSessionEvent(type?: SessionEventType): MethodDecorator {
  if (type !== undefined && !SESSION_EVENT_TYPES.includes(type)) {
    throw new TypeError(`@OnSessionEvent(${JSON.stringify(type)}): the type must be one of ${SESSION_EVENT_TYPES.map((t) => `'${t}'`).join(', ')}, or omitted for all`);
  }
  return (target, propertyKey, descriptor) => {
    const method: unknown = descriptor.value;
    // A static method has the class itself as target; discovery looks at instances only.
    if (typeof method !== 'function' || typeof target === 'function') {
      const owner = typeof target === 'function' ? target.name : target.constructor.name;
      throw new TypeError(`@OnSessionEvent() goes on an instance method; ${owner}.${String(propertyKey)} is not one`);
    }
    const types: SessionEventFilter = Reflect.getMetadata(SESSION_EVENT_METADATA, method) ?? [];
    Reflect.defineMetadata(SESSION_EVENT_METADATA, [...types, type], method);
    return descriptor;
  };
}
