import { describeError } from './to-error.js';

/**
 * Options objects are checked for names they do not know: a misspelt option
 * (`idleTimout`) left alone would run on its default without a word.
 */
export function assertKnownOptions(options: object, known: readonly string[], owner: string): void {
  const unknown = Object.keys(options).filter((key) => !known.includes(key));
  if (unknown.length === 0) return;
  throw new TypeError(`${owner} has unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; expected ${listOf(known)}`);
}

/** What a bad option value was, for an error message: a string quoted, so that `'5'` does not read as 5. Never throws. */
export function describeOptionValue(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  try {
    if (Array.isArray(value)) return 'an array';
    if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) return 'an object';
  } catch {
    // A revoked proxy: described below, which never throws.
  }
  const text = describeError(value);
  // A class instance without a text of its own says no more than this.
  return text === '[object Object]' ? 'an object' : text;
}

function listOf(names: readonly string[]): string {
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]!}`;
}
