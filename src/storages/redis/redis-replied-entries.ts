import { compareEntryIds } from './redis-stream-entry.js';

/** Ids kept before the array is compacted: the reader reads them back within a read or two. */
const COMPACT_AT = 1024;

/**
 * Own entries announced from their script's reply, ahead of the reader, in
 * stream order: the reader, reaching each, passes over it rather than
 * announce it twice. Their ids and sequence numbers, as a queue.
 */
export class RepliedEntries {
  private ids: string[] = [];
  private sequences: bigint[] = [];
  private head = 0;

  get pending(): boolean {
    return this.head < this.ids.length;
  }

  /** Whether the reader's next entry, `id`, is the first announced from its reply (the common case, checked with no parsing). */
  isNext(id: string): boolean {
    return this.ids[this.head] === id;
  }

  add(id: string, sequence: bigint): void {
    this.ids.push(id);
    this.sequences.push(sequence);
  }

  /**
   * The reader reached entry `id`: its sequence number if it was announced
   * from its reply (the reader passes over it), else undefined. Entries
   * announced from replies that the reader went past without reading were
   * trimmed or lost before it read them: they are let go.
   */
  take(id: string): bigint | undefined {
    if (this.ids[this.head] !== id) {
      // Rare: the reader skipped entries (trimmed), or reads one that was never announced (Redis lost history).
      while (this.pending && compareEntryIds(this.ids[this.head]!, id) < 0) this.head++;
      if (this.ids[this.head] !== id) {
        this.compact();
        return undefined;
      }
    }
    const sequence = this.sequences[this.head++]!;
    this.compact();
    return sequence;
  }

  clear(): void {
    this.ids.length = 0;
    this.sequences.length = 0;
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.ids.length) {
      if (this.head > 0) this.clear();
    } else if (this.head >= COMPACT_AT) {
      this.ids = this.ids.slice(this.head);
      this.sequences = this.sequences.slice(this.head);
      this.head = 0;
    }
  }
}
