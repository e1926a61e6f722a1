import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { SESSION_EVENT_METADATA, type SessionEventFilter } from './on-session-event.decorator.js';
import type { SessionEvent, SessionEventType } from './session-event.js';
import type { SessionObserver } from './session-observer.js';
import type { SessionSubject } from './session-subject.js';

/** The subset of eventemitter2 that the bridge uses; found by discovery, so the package stays optional. */
interface AsyncEventEmitter {
  emitAsync(event: string, ...values: unknown[]): Promise<unknown[]>;
}

/** @nestjs/event-emitter's module; its emitter is recognised by where it lives, as the package may be absent. */
const EVENT_EMITTER_MODULE_NAME = 'EventEmitterModule';

/**
 * Finds every `@OnSessionEvent()` method of the application's providers and
 * controllers, and the `EventEmitter2` of `@nestjs/event-emitter` if the app has
 * one, and subscribes them to a subject.
 */
@Injectable()
export class SessionObserverExplorer {
  private readonly logger = new Logger('SessionsModule');
  private readonly wired = new WeakSet<SessionSubject>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  /** Subscribes the application's observers to the subject; does nothing the second time. */
  subscribeObservers(subject: SessionSubject): void {
    if (this.wired.has(subject)) return;
    this.wired.add(subject);
    const seen = new Set<object>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // An alias (`useExisting`) resolves to an instance wired under its own token.
      if (wrapper.isAlias) continue;
      const instance: unknown = wrapper.instance;
      if (instance === null || typeof instance !== 'object' || seen.has(instance)) continue;
      seen.add(instance);
      for (const observer of this.observersOf(wrapper, instance)) subject.subscribe(observer);
    }
    const emitter = this.findEventEmitter();
    if (emitter) subject.subscribe(new EventEmitterBridge(emitter));
  }

  private observersOf(wrapper: InstanceWrapper, instance: object): SessionObserver[] {
    const prototype = Object.getPrototypeOf(instance) as object | null;
    const observers: SessionObserver[] = [];
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method: unknown = (prototype as Record<string, unknown>)[methodName];
      const filter: SessionEventFilter | undefined = typeof method === 'function' ? Reflect.getMetadata(SESSION_EVENT_METADATA, method) : undefined;
      if (filter === undefined) continue;
      const className = instance.constructor.name;
      const scope = !wrapper.isDependencyTreeStatic() ? 'request-scoped (or depends on a request-scoped provider)' : wrapper.isTransient ? 'transient' : undefined;
      if (scope !== undefined) {
        this.logger.warn(
          `@OnSessionEvent() on ${className}.${methodName} is ignored: ${className} is ${scope}, and session events belong to no request or consumer. Move the handler to a singleton provider.`,
        );
        continue;
      }
      observers.push(new MethodObserver(instance, className, methodName, filter.includes(undefined) ? undefined : new Set(filter as SessionEventType[])));
    }
    return observers;
  }

  private findEventEmitter(): AsyncEventEmitter | undefined {
    for (const wrapper of this.discovery.getProviders()) {
      const { instance } = wrapper;
      if (wrapper.host?.metatype?.name === EVENT_EMITTER_MODULE_NAME && typeof (instance as Partial<AsyncEventEmitter> | undefined)?.emitAsync === 'function') {
        return instance as AsyncEventEmitter;
      }
    }
    return undefined;
  }
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

/** Re-emits every event as `session.created` / `session.destroyed`, so that `@OnEvent()` handlers hear it too. */
class EventEmitterBridge implements SessionObserver {
  constructor(private readonly emitter: AsyncEventEmitter) {}

  async update(event: SessionEvent): Promise<void> {
    await this.emitter.emitAsync(`session.${event.type}`, event);
  }

  toString(): string {
    return 'EventEmitter2 (session.* events)';
  }
}
