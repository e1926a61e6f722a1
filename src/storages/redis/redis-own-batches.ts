/**
 * This instance's batches to one stream, as its reader sees them: while
 * batches are in flight and the replies so far showed the stream ending at
 * the cursor's position (each batch's own entries announced from its reply,
 * nothing else between), the next replies tell the stream's end too, and a
 * read would only bring their entries back (a blocking read is woken by
 * each batch). So the reader waits for a reason to read rather than read.
 */
export class OwnBatches {
  /** Sent and not yet answered. */
  private inFlight = 0;
  /** The last reply showed the stream ending at the cursor's position. */
  private atEnd = false;
  /** Ends the reader's wait in {@link readNeeded}. */
  private wakeReader: (() => void) | undefined;

  /** A batch is about to be sent. */
  sent(): void {
    this.inFlight++;
  }

  /** A batch was answered; `atEnd`: its reply showed the stream ending at the cursor's position. */
  answered(atEnd: boolean): void {
    this.inFlight--;
    if (!atEnd) {
      this.mustRead();
      return;
    }
    this.atEnd = true;
    // The callers' next calls are sent in this turn: the reader waits for their batch, rather than for this reply, if any.
    if (this.inFlight === 0) setImmediate(() => this.inFlight === 0 && this.mustRead());
  }

  /** Entries are left for the reader to read (another instance's, or own ones it is to read back): it waits no more. */
  mustRead(): void {
    this.atEnd = false;
    const wake = this.wakeReader;
    this.wakeReader = undefined;
    wake?.();
  }

  /**
   * Before the reader reads: resolves once it is to read (a reply showed
   * other entries, or no batch is in flight any more, or after `boundMs` at
   * most: the reader's blocking time, so that it still hears from Redis as
   * often as its lease needs); undefined when at once.
   */
  readNeeded(boundMs: number): Promise<void> | undefined {
    if (!this.atEnd || this.inFlight === 0) return undefined;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.mustRead(), boundMs);
      this.wakeReader = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
