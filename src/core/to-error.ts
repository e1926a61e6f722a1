/**
 * What was thrown or rejected with, made fit for a log. Anything can be
 * thrown: a string, an object with a null prototype, one whose `toString`
 * throws, an Error whose `message` is a throwing getter. These run on failure
 * paths, where a second failure would hide the first, so they never throw.
 */

/** Longest JSON shown for a value that has no text of its own. */
const SHOWN_JSON_CHARS = 200;

/** `value` itself when it is an Error with a readable message, else an Error that describes it, with `value` as its `cause`. Never throws. */
export function toError(value: unknown): Error {
  try {
    if (value instanceof Error && typeof value.message === 'string') return value;
  } catch {
    // A throwing prototype lookup or message getter: describe it instead.
  }
  return new Error(describeError(value), { cause: value });
}

/** The most characters of an error's text that {@link describeError} keeps. */
const DESCRIBE_LIMIT = 500;

/** One line for a log: `name: message` of an Error (as `String(error)` gives it), the text of anything else. Never throws. */
export function describeError(value: unknown): string {
  let text: string;
  try {
    if (value instanceof Error) {
      const name = String(value.name);
      const message = String(value.message);
      text = message === '' ? name : `${name}: ${message}`;
    } else {
      text = String(value);
    }
  } catch {
    text = describeUnprintable(value);
  }
  // An error's text is often foreign (an observer's, a server's reply): one must not flood a log line.
  return text.length <= DESCRIBE_LIMIT ? text : `${text.slice(0, DESCRIBE_LIMIT)}… (${text.length} characters)`;
}

/** A value that `String()` refused (a null prototype, a throwing `toString`): its kind, and its JSON when it has any. */
function describeUnprintable(value: unknown): string {
  let kind = typeof value === 'function' ? 'a function' : 'an object';
  try {
    const prototype: unknown = Object.getPrototypeOf(value);
    const className = prototype === null ? 'null prototype' : (prototype as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof className === 'string' && className !== '') kind = `${kind} (${className})`;
  } catch {
    // A proxy that refuses even this: the kind alone will do.
  }
  try {
    const json = JSON.stringify(value);
    if (typeof json === 'string' && json !== '{}') {
      return `${kind} ${json.length > SHOWN_JSON_CHARS ? `${json.slice(0, SHOWN_JSON_CHARS)}…` : json}`;
    }
  } catch {
    // Cycles, bigints, throwing getters: nothing more to show.
  }
  return `${kind} that cannot be shown as text`;
}

/** Foreign data (read from a store, sent by a peer) quoted in a message is cut to this many characters. */
const QUOTE_LIMIT = 200;

/** Foreign data for a log line or an error message: as JSON, cut to a few hundred characters, so one junk value cannot flood a log. */
export function quoteForeign(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? `${item}` : item)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length <= QUOTE_LIMIT ? text : `${text.slice(0, QUOTE_LIMIT)}… (${text.length} characters)`;
}
