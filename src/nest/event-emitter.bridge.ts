import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { SessionEvent, SessionEventsMissed } from '../core/session-event.js';
import type { SessionObserver } from '../core/session-observer.js';

/** The subset of eventemitter2 that the bridge uses. */
export interface AsyncEventEmitter {
  emitAsync(event: string, ...values: unknown[]): Promise<unknown[]>;
}

/** The module of `@nestjs/event-emitter` that provides the app's `EventEmitter2`. */
const EVENT_EMITTER_MODULE_NAME = 'EventEmitterModule';

/** The app's `EventEmitter2` if `wrapper` is the provider of `@nestjs/event-emitter` that holds it. */
export function asEventEmitter(wrapper: InstanceWrapper, instance: object): AsyncEventEmitter | undefined {
  // Nest would find the emitter by its token, but that token is the EventEmitter2 class itself (no string or
  // Symbol.for() token exists), and the class can only be had by importing @nestjs/event-emitter or eventemitter2:
  // statically that makes an optional peer required, and dynamically it is asynchronous (events can be raised
  // before it settles) and may resolve another copy than the app's. So the provider is recognised by its module's
  // name, as one whose token is its instance's own class, with the method the bridge calls.
  const token = wrapper.token;
  if (wrapper.host?.metatype?.name !== EVENT_EMITTER_MODULE_NAME || typeof token !== 'function' || !(instance instanceof token)) return undefined;
  return typeof (instance as Partial<AsyncEventEmitter>).emitAsync === 'function' ? (instance as AsyncEventEmitter) : undefined;
}

/**
 * Re-emits every event as `session.created` / `session.destroyed`, and missed
 * events as `session.events-missed`, so that `@OnEvent()` handlers hear them too.
 */
export class EventEmitterBridge implements SessionObserver {
  constructor(private readonly emitter: AsyncEventEmitter) {}

  async update(event: SessionEvent): Promise<void> {
    await this.emitter.emitAsync(`session.${event.type}`, event);
  }

  async eventsMissed(notice: SessionEventsMissed): Promise<void> {
    await this.emitter.emitAsync('session.events-missed', notice);
  }

  toString(): string {
    return 'EventEmitter2 (session.* events)';
  }
}
