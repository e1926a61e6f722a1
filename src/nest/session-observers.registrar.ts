import { Injectable } from '@nestjs/common';
import type { SessionObserver } from '../core/session-observer.js';
import type { SessionSubject } from '../core/session-subject.js';
import { EventEmitterBridge } from './event-emitter.bridge.js';
import { MethodEventsMissedObserver } from './method-events-missed.observer.js';
import { MethodSessionObserver } from './method-session.observer.js';
import { SessionObserverExplorer, type DecoratedMethod } from './session-observer.explorer.js';

/**
 * Subscribes what {@link SessionObserverExplorer} finds to the module's subject.
 * Each `SessionsModule` import has its own registrar, and so one subject.
 */
@Injectable()
export class SessionObserversRegistrar {
  private complete = false;

  constructor(private readonly explorer: SessionObserverExplorer) {}

  /**
   * Subscribes the application's observers that exist so far, each once
   * however often this is called. Returns `true` once every one of them has
   * been subscribed: while Nest is still constructing providers it returns
   * `false`, and a later call wires the rest. Once `constructed` (from an init
   * hook, when Nest has built every provider it will build), the wiring counts
   * as complete, so later notifications never look again.
   */
  subscribeObservers(subject: SessionSubject, constructed = false): boolean {
    if (this.complete) return true;
    const found = this.explorer.explore();
    for (const { instance, className, methods } of found.instances) {
      for (const method of methods) subject.subscribe(methodObserver(instance, className, method));
    }
    for (const emitter of found.eventEmitters) subject.subscribe(new EventEmitterBridge(emitter));
    this.complete = found.complete || constructed;
    return this.complete;
  }
}

function methodObserver(instance: object, className: string, { methodName, hears }: DecoratedMethod): SessionObserver {
  switch (hears.kind) {
    case 'every-event':
      return new MethodSessionObserver(instance, className, methodName, undefined);
    case 'some-events':
      return new MethodSessionObserver(instance, className, methodName, hears.types);
    case 'missed-events':
      return new MethodEventsMissedObserver(instance, className, methodName);
  }
}
