/**
 * `createSession` refused a new session because `maxSessions` live sessions
 * exist already. Nothing changed.
 */
export class SessionLimitError extends Error {
  override readonly name = 'SessionLimitError';

  constructor(
    /** The configured bound on live sessions. */
    readonly limit: number,
    /**
     * How many live sessions there were when the create was refused, where
     * the storage could count them. Below `limit` only where the storage says
     * when that can happen (a limit shared by several Redis key groups).
     */
    readonly live?: number,
    /** Why a create was refused below the limit, when it was. */
    detail?: string,
  ) {
    super(live === undefined
      ? `Session limit reached: ${limit} live sessions already exist`
      : `Session limit reached: ${live} live sessions exist, maxSessions is ${limit}${detail === undefined ? '' : ` (${detail})`}`);
  }
}

/**
 * The storage could not be reached (connection refused, lost or timed out).
 * `cause` names the underlying failure. Whether a create or destroy that fails
 * this way took effect is unknown: if it did, its event is still delivered.
 */
export class SessionStorageUnavailableError extends Error {
  override readonly name: string = 'SessionStorageUnavailableError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A storage call did not settle within the configured `commandTimeout`. */
export class SessionStorageTimeoutError extends SessionStorageUnavailableError {
  override readonly name: string = 'SessionStorageTimeoutError';

  /** `detail` says what the storage was waiting for, when it knows. */
  constructor(
    readonly operation: string,
    readonly timeout: number,
    detail?: string,
  ) {
    super(`Session storage ${operation} did not settle within ${timeout} ms${detail === undefined ? '' : ` (${detail})`}`);
  }
}
