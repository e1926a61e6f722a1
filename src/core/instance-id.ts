import { randomUUID } from 'node:crypto';

/**
 * A storage's `instanceId` option, checked: the `origin` of the events the
 * instance announces. A random UUID when omitted, so that instances sharing a
 * store still tell their own events apart.
 *
 * @throws TypeError naming `owner`'s option unless it is a non-empty string.
 */
export function resolveInstanceId(instanceId: unknown, owner: string): string {
  if (instanceId === undefined) return randomUUID();
  if (typeof instanceId !== 'string' || instanceId === '') {
    const got = typeof instanceId === 'string' ? '""' : instanceId === null ? 'null' : typeof instanceId;
    throw new TypeError(`${owner} instanceId must be a non-empty string; got ${got}`);
  }
  return instanceId;
}
