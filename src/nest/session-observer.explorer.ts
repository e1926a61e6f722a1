import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { STATIC_CONTEXT } from '@nestjs/core/injector/constants.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { SESSION_EVENT_METADATA, SESSION_EVENTS_MISSED_METADATA } from './constants.js';
import type { SessionEventFilter } from './decorators/on-session-event.decorator.js';
import type { SessionEvent, SessionEventsMissed, SessionEventType } from '../core/session-event.js';
import type { SessionObserver } from '../core/session-observer.js';
import type { SessionSubject } from '../core/session-subject.js';

/** The subset of eventemitter2 that the bridge uses; found by discovery, so the package stays optional. */
interface AsyncEventEmitter {
  emitAsync(event: string, ...values: unknown[]): Promise<unknown[]>;
}

/** @nestjs/event-emitter's module; its emitter is recognised by where it lives, as the package may be absent. */
const EVENT_EMITTER_MODULE_NAME = 'EventEmitterModule';

/** What has been wired into one subject so far. */
interface WiringState {
  complete: boolean;
  /** Wrappers already looked at, and instances already wired (one instance can sit behind several wrappers). */
  seen: WeakSet<object>;
}

interface DecoratedMethod {
  methodName: string;
  /** What the method hears: events of these types (`undefined`: every type), or missed-events notices. */
  hears: ReadonlySet<SessionEventType> | undefined | 'missed';
}

/**
 * Finds every `@OnSessionEvent()` method of the application's providers and
 * controllers, and the `EventEmitter2` of `@nestjs/event-emitter` if the app has
 * one, and subscribes them to a subject.
 */
@Injectable()
export class SessionObserverExplorer {
  private readonly logger = new Logger('SessionsModule');
  private readonly states = new WeakMap<SessionSubject, WiringState>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  /**
   * Subscribes the application's observers that exist so far to the subject,
   * each once however often this is called. Returns `true` once every one of
   * them has been subscribed: while Nest is still constructing providers it
   * returns `false`, and a later call wires the rest. Once `constructed` (from
   * an init hook, when Nest has built every provider it will build), the wiring
   * counts as complete, so later notifications never scan again.
   */
  subscribeObservers(subject: SessionSubject, constructed = false): boolean {
    let state = this.states.get(subject);
    if (state === undefined) {
      state = { complete: false, seen: new WeakSet() };
      this.states.set(subject, state);
    }
    if (state.complete) return true;
    let complete = true;
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // An alias (`useExisting`) resolves to an instance wired under its own token.
      if (wrapper.isAlias || state.seen.has(wrapper)) continue;
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
        state.seen.add(wrapper);
        this.warnAboutScoped(wrapper);
        continue;
      }
      const { instance, isResolved } = wrapper.getInstanceByContextId(STATIC_CONTEXT);
      // Until Nest has constructed it, the instance is a stand-in that the real one will replace.
      if (!isResolved) {
        complete = false;
        continue;
      }
      state.seen.add(wrapper);
      if (instance === null || typeof instance !== 'object' || state.seen.has(instance)) continue;
      state.seen.add(instance);
      const className = instance.constructor.name;
      for (const { methodName, hears } of this.decoratedMethods(Object.getPrototypeOf(instance) as object | null)) {
        subject.subscribe(hears === 'missed'
          ? new MissedEventsMethodObserver(instance, className, methodName)
          : new MethodObserver(instance, className, methodName, hears));
      }
      if (isEventEmitter(wrapper, instance)) subject.subscribe(new EventEmitterBridge(instance));
    }
    state.complete = complete || constructed;
    return state.complete;
  }

  private decoratedMethods(prototype: object | null): DecoratedMethod[] {
    const found: DecoratedMethod[] = [];
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method: unknown = (prototype as Record<string, unknown>)[methodName];
      if (typeof method !== 'function') continue;
      const filter: SessionEventFilter | undefined = Reflect.getMetadata(SESSION_EVENT_METADATA, method);
      if (filter !== undefined) found.push({ methodName, hears: filter.includes(undefined) ? undefined : new Set(filter as SessionEventType[]) });
      if (Reflect.getMetadata(SESSION_EVENTS_MISSED_METADATA, method) === true) found.push({ methodName, hears: 'missed' });
    }
    return found;
  }

  /** A request-scoped or transient provider has no one instance to call: say so rather than ignore it silently. */
  private warnAboutScoped(wrapper: InstanceWrapper): void {
    const metatype = wrapper.isFactory ? undefined : wrapper.metatype;
    if (typeof metatype !== 'function') return;
    const scope = wrapper.isTransient ? 'transient' : 'request-scoped (or depends on a request-scoped provider)';
    for (const { methodName } of this.decoratedMethods(metatype.prototype as object)) {
      this.logger.warn(
        `@OnSessionEvent() on ${metatype.name}.${methodName} is ignored: ${metatype.name} is ${scope}, and session events belong to no request or consumer. Move the handler to a singleton provider.`,
      );
    }
  }
}

function isEventEmitter(wrapper: InstanceWrapper, instance: object): instance is AsyncEventEmitter {
  return wrapper.host?.metatype?.name === EVENT_EMITTER_MODULE_NAME && typeof (instance as Partial<AsyncEventEmitter>).emitAsync === 'function';
}

/** Calls one decorated method, for the event types it asked for. */
class MethodObserver implements SessionObserver {
  constructor(
    private readonly instance: object,
    private readonly className: string,
    private readonly methodName: string,
    /** `undefined` means every type. */
    private readonly types: ReadonlySet<SessionEventType> | undefined,
  ) {}

  update(event: SessionEvent): void | Promise<void> {
    if (this.types !== undefined && !this.types.has(event.type)) return;
    // Looked up on each call, so a method replaced after bootstrap (a spy, a patch) is the one called.
    const method = (this.instance as Record<string, (event: SessionEvent) => void | Promise<void>>)[this.methodName];
    return method.call(this.instance, event);
  }

  toString(): string {
    return `${this.className}.${this.methodName}`;
  }
}

/** Calls one `@OnSessionEventsMissed()` method; hears no session events. */
class MissedEventsMethodObserver implements SessionObserver {
  constructor(
    private readonly instance: object,
    private readonly className: string,
    private readonly methodName: string,
  ) {}

  update(): void {
    // Only missed-events notices concern this method.
  }

  eventsMissed(notice: SessionEventsMissed): void | Promise<void> {
    const method = (this.instance as Record<string, (notice: SessionEventsMissed) => void | Promise<void>>)[this.methodName];
    return method.call(this.instance, notice);
  }

  toString(): string {
    return `${this.className}.${this.methodName}`;
  }
}

/**
 * Re-emits every event as `session.created` / `session.destroyed`, and missed
 * events as `session.events-missed`, so that `@OnEvent()` handlers hear them too.
 */
class EventEmitterBridge implements SessionObserver {
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
