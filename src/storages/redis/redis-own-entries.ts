/** Own deliveries that nobody claimed (their call failed) are forgotten after this long. */
const UNCLAIMED_TTL_MS = 5 * 60_000;
/** Unclaimed own deliveries tolerated before the old ones are forgotten. */
const UNCLAIMED_TIDY_AT = 1000;

/** An own entry handed to the observers: what settles once they all have (nothing when they were synchronous). */
export interface Announced {
  readonly settling: Promise<unknown> | undefined;
}

export const NOTHING_TO_WAIT_FOR: Announced = Object.freeze({ settling: undefined });

interface OwnDelivery {
  readonly since: number;
  announced?: Announced;
  resolve?: (announced: Announced) => void;
}

/**
 * The entries this instance wrote to one stream, by id, so that the call
 * that wrote each learns when it has been announced here, whichever comes
 * first: the call asking, or the reader handing it over.
 */
export class OwnEntries {
  private readonly own = new Map<string, OwnDelivery>();

  /** Resolves once the entry `id` has been announced, with what settles once its observers have. */
  announced(id: string): Promise<Announced> {
    const known = this.own.get(id);
    if (known?.announced !== undefined) {
      this.own.delete(id);
      return Promise.resolve(known.announced);
    }
    return new Promise<Announced>((resolve) => {
      this.own.set(id, { since: Date.now(), resolve });
    });
  }

  /** The reader announced the entry `id`. */
  handOver(id: string, announced: Announced): void {
    const waiting = this.own.get(id);
    if (waiting?.resolve !== undefined) {
      this.own.delete(id);
      waiting.resolve(announced);
    } else {
      this.own.set(id, { since: Date.now(), announced });
    }
  }

  /** Forgets own deliveries nobody claimed for long (their call failed), once many have piled up. */
  tidy(): void {
    if (this.own.size <= UNCLAIMED_TIDY_AT) return;
    const horizon = Date.now() - UNCLAIMED_TTL_MS;
    for (const [id, delivery] of this.own) {
      if (delivery.since >= horizon) continue;
      this.own.delete(id);
      delivery.resolve?.(NOTHING_TO_WAIT_FOR);
    }
  }

  /** Releases every call still waiting. */
  close(): void {
    for (const waiting of this.own.values()) waiting.resolve?.(NOTHING_TO_WAIT_FOR);
    this.own.clear();
  }
}
