import type { SessionLogger } from '../../core/session-logger.js';
import { ORIGIN_TTL_MS } from './redis-origins.js';
import { streamMessages } from './redis-storage.messages.js';

/** Codes of dropped origins remembered as warned of, at most. */
const WARNED_ORIGINS_KEPT = 1000;

/**
 * Instance ids by origin code, as one key group's origins hash gave them to
 * its reader; forgotten with the connection or a loss of history (a Redis
 * that lost its data gives codes anew). A code the hash no longer names (its
 * origin dropped, silent for ORIGIN_TTL_MS: see RedisVerifier) is known as
 * null, so that it is not asked again, and warned of once; its entries are
 * delivered without an origin. Codes are never given twice, so a code never
 * comes to name another instance.
 */
export class OriginNames {
  private readonly names = new Map<string, string | null>();
  /** Codes the hash did not name that were already warned of, once each. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly streamKey: string,
    private readonly logger: SessionLogger,
  ) {}

  has(code: string): boolean {
    return this.names.has(code);
  }

  /** The instance id of `code`: null when the hash no longer names it, undefined when not asked yet. */
  get(code: string): string | null | undefined {
    return this.names.get(code);
  }

  /** What the origins hash answered for `codes`, in order (null where it names none). */
  learn(codes: readonly string[], names: readonly (string | null)[]): void {
    codes.forEach((code, i) => {
      const name = names[i];
      if (typeof name === 'string' && name !== '') {
        this.names.set(code, name);
        return;
      }
      this.names.set(code, null);
      if (this.warned.has(code)) return;
      // Bounded: past this many, a code may be warned of again.
      if (this.warned.size >= WARNED_ORIGINS_KEPT) this.warned.clear();
      this.warned.add(code);
      this.logger.warn(streamMessages.originDropped(code, this.streamKey, ORIGIN_TTL_MS));
    });
  }

  /** Forgets every code: the connection broke, or Redis lost its data. */
  forget(): void {
    this.names.clear();
    this.warned.clear();
  }
}
