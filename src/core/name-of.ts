/** How logs name an observer or a storage: its own `toString()` when it has one, else its class name. Never throws. */
export function nameOf(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  try {
    if (value.toString !== Object.prototype.toString) return String(value);
  } catch {
    // A throwing toString is no reason to lose the report; fall back to the class name.
  }
  const className = (value.constructor as { name?: unknown } | undefined)?.name;
  return typeof className === 'string' && className !== '' && className !== 'Object' ? className : 'an anonymous observer';
}
