import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { STATIC_CONTEXT } from '@nestjs/core/injector/constants.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { SessionEventType } from '../core/session-event.js';
import { SESSION_EVENT_METADATA, SESSION_EVENTS_MISSED_METADATA } from './constants.js';
import type { SessionEventFilter } from './decorators/on-session-event.decorator.js';
import { asEventEmitter, type AsyncEventEmitter } from './event-emitter.bridge.js';

/** What a decorated method hears. */
export type Hears =
  | { readonly kind: 'every-event' }
  | { readonly kind: 'some-events'; readonly types: ReadonlySet<SessionEventType> }
  | { readonly kind: 'missed-events' };

export interface DecoratedMethod {
  readonly methodName: string;
  readonly hears: Hears;
}

/** One constructed instance and its decorated methods. */
export interface ObservingInstance {
  readonly instance: object;
  readonly className: string;
  readonly methods: readonly DecoratedMethod[];
}

/** What one {@link SessionObserverExplorer.explore} call found that no earlier call had. */
export interface Exploration {
  readonly instances: readonly ObservingInstance[];
  /** The `EventEmitter2` of `@nestjs/event-emitter`, when the app has one. */
  readonly eventEmitters: readonly AsyncEventEmitter[];
  /** False while Nest is still constructing some provider: a later call finds it. */
  readonly complete: boolean;
}

/**
 * Finds the `@OnSessionEvent()` and `@OnSessionEventsMissed()` methods of the
 * application's providers and controllers, and the `EventEmitter2` of
 * `@nestjs/event-emitter` if the app has one. It only discovers:
 * {@link SessionObserversRegistrar} subscribes what it finds.
 */
@Injectable()
export class SessionObserverExplorer {
  private readonly logger = new Logger('SessionsModule');
  /** Wrappers already looked at, and instances already reported (one instance can sit behind several wrappers). */
  private readonly seen = new WeakSet<object>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  /** Reports what exists now and was not reported before, each instance once however often this is called. */
  explore(): Exploration {
    const instances: ObservingInstance[] = [];
    const eventEmitters: AsyncEventEmitter[] = [];
    let complete = true;
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // An alias (`useExisting`) resolves to an instance found under its own token.
      if (wrapper.isAlias || this.seen.has(wrapper)) continue;
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
        this.seen.add(wrapper);
        this.warnAboutScoped(wrapper);
        continue;
      }
      const { instance, isResolved } = wrapper.getInstanceByContextId(STATIC_CONTEXT);
      // Until Nest has constructed it, the instance is a stand-in that the real one will replace.
      if (!isResolved) {
        complete = false;
        continue;
      }
      this.seen.add(wrapper);
      if (instance === null || typeof instance !== 'object' || this.seen.has(instance)) continue;
      this.seen.add(instance);
      const methods = this.decoratedMethods(Object.getPrototypeOf(instance) as object | null);
      if (methods.length > 0) instances.push({ instance, className: instance.constructor.name, methods });
      const emitter = asEventEmitter(wrapper, instance);
      if (emitter !== undefined) eventEmitters.push(emitter);
    }
    return { instances, eventEmitters, complete };
  }

  private decoratedMethods(prototype: object | null): DecoratedMethod[] {
    const found: DecoratedMethod[] = [];
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method: unknown = (prototype as Record<string, unknown>)[methodName];
      if (typeof method !== 'function') continue;
      const filter: SessionEventFilter | undefined = Reflect.getMetadata(SESSION_EVENT_METADATA, method);
      if (filter !== undefined) found.push({ methodName, hears: hearsFor(filter) });
      if (Reflect.getMetadata(SESSION_EVENTS_MISSED_METADATA, method) === true) found.push({ methodName, hears: { kind: 'missed-events' } });
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

/** Stacked `@OnSessionEvent()`s add up; one without a type hears every event. */
function hearsFor(filter: SessionEventFilter): Hears {
  if (filter.includes(undefined)) return { kind: 'every-event' };
  return { kind: 'some-events', types: new Set(filter as readonly SessionEventType[]) };
}
