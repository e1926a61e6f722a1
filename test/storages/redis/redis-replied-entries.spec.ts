import { RepliedEntries } from '../../../src/storages/redis/redis-replied-entries.js';

describe('RepliedEntries (own entries announced from their replies, for the reader to pass over)', () => {
  it('passes over each in stream order, then is empty', () => {
    const replied = new RepliedEntries();
    replied.add('5-0', 3n);
    replied.add('5-1', 4n);
    expect(replied.isNext('5-0')).toBe(true);
    expect(replied.take('5-0')).toBe(3n);
    expect(replied.take('5-1')).toBe(4n);
    expect(replied.pending).toBe(false);
  });

  it('lets go of entries the reader went past unread (trimmed), and still passes over a later one', () => {
    const replied = new RepliedEntries();
    replied.add('9-0', 1n);
    replied.add('10-0', 2n);
    replied.add('100-0', 3n);
    // 9-0 and 10-0 were trimmed before the reader read them; ids compare as numbers, not strings ("100" < "9").
    expect(replied.take('100-0')).toBe(3n);
    expect(replied.pending).toBe(false);
  });

  it('leaves to the reader an entry never announced from a reply, before or between them', () => {
    const replied = new RepliedEntries();
    replied.add('20-0', 7n);
    // Redis lost history and another instance wrote this meanwhile: the reader announces it, and still passes over 20-0.
    expect(replied.take('15-0')).toBeUndefined();
    expect(replied.isNext('20-0')).toBe(true);
    expect(replied.take('20-3')).toBeUndefined();
    expect(replied.pending).toBe(false);
  });

  it('keeps its memory bounded as the reader keeps up', () => {
    const replied = new RepliedEntries();
    for (let i = 0; i < 5000; i++) {
      replied.add(`1-${i}`, BigInt(i + 1));
      if (i % 2 === 1) {
        expect(replied.take(`1-${i - 1}`)).toBe(BigInt(i));
        expect(replied.take(`1-${i}`)).toBe(BigInt(i + 1));
      }
    }
    expect(replied.pending).toBe(false);
  });
});
