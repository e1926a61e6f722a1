import fc from 'fast-check';
import { compareEntryIds, ENTRY, ENTRY_TYPE, isLossEntry, parseLossEntry, parseTransitionEntry } from '../../../src/storages/redis/redis-stream-entry';
import { APPEND_FUNCTIONS } from '../../../src/storages/redis/scripts/append-event.lua';
import { createSessionScript } from '../../../src/storages/redis/scripts/create-session.script';
import { destroySessionScript } from '../../../src/storages/redis/scripts/destroy-session.script';
import { recordLossScript } from '../../../src/storages/redis/scripts/record-loss.script';

const origins = new Map<string, string | null>([['1', 'instance-a'], ['2', null]]);

describe('the stream entry codec', () => {
  it('parses a scoped created entry with its member, sequence and deadline', () => {
    const parsed = parseTransitionEntry({ t: 'c', s: '-9223372036854775808', a: '9223372036854775807', i: '1', n: '7', e: '1700000000000' }, origins);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.event).toMatchObject({ type: 'created', sessionId: -(2n ** 63n), authKeyId: 2n ** 63n - 1n, origin: 'instance-a' });
    expect(parsed.member).toBe('9223372036854775807:-9223372036854775808');
    expect(parsed.sequence).toBe(7n);
    expect(parsed.deadline).toBe(1_700_000_000_000);
  });

  it('reads expired entries as destroyed with reason expired, and entries of older versions that name their origin', () => {
    const parsed = parseTransitionEntry({ t: 'x', s: '5', o: 'instance-b', n: '1' }, origins);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.event).toMatchObject({ type: 'destroyed', reason: 'expired', origin: 'instance-b' });
    expect(parsed.deadline).toBeUndefined();
  });

  it('parses an entry whose origin was dropped from the origins hash (null) with no origin', () => {
    const parsed = parseTransitionEntry({ t: 'd', s: '5', i: '2', n: '3' }, origins);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.event).toMatchObject({ type: 'destroyed', reason: 'destroyed' });
    expect(parsed.event.origin).toBeUndefined();
    expect('origin' in parsed.event).toBe(false);
  });

  it.each([
    [{ t: 'z', s: '1', i: '1', n: '1' }, /unknown type "z"/],
    [{ t: 'c', s: '01', i: '1', n: '1' }, /bad session id "01"/],
    [{ t: 'c', s: '1', a: 'x', i: '1', n: '1' }, /bad auth key id "x"/],
    [{ t: 'c', s: '1', i: '9', n: '1' }, /unknown origin code "9"/],
    [{ t: 'c', s: '1', i: '1', n: '0' }, /bad sequence number "0"/],
  ])('says why %j is malformed', (message, why) => {
    expect(parseTransitionEntry(message, origins)).toMatch(why);
  });

  it('quotes at most a few hundred characters of a junk field', () => {
    const why = parseTransitionEntry({ t: 'x'.repeat(1_000_000) }, origins);
    expect(typeof why).toBe('string');
    expect((why as string).length).toBeLessThan(300);
  });

  it('parses loss entries', () => {
    expect(isLossEntry({ t: 'l' })).toBe(true);
    expect(parseLossEntry({ t: 'l', g: '2', o: 'instance-a', n: '9' })).toEqual({ epoch: 2n, origin: 'instance-a', sequence: 9n });
    expect(parseLossEntry({ t: 'l', g: 'x', o: 'a', n: '9' })).toMatch(/bad epoch/);
  });

  it('is the one place the field names come from: the scripts that write entries are built from it', () => {
    for (const field of [ENTRY.type, ENTRY.sessionId, ENTRY.authKeyId, ENTRY.originCode, ENTRY.sequence, ENTRY.deadline]) {
      for (const source of [APPEND_FUNCTIONS, createSessionScript.source, destroySessionScript.source]) expect(source).toContain(`'${field}'`);
    }
    expect(APPEND_FUNCTIONS).toContain(`append('${ENTRY_TYPE.expired}'`);
    expect(recordLossScript.source).toContain(`'${ENTRY.type}', '${ENTRY_TYPE.loss}', '${ENTRY.epoch}'`);
  });
});

describe('compareEntryIds', () => {
  const byNumbers = (a: string, b: string) => {
    const [aMs, aSeq = '0'] = a.split('-');
    const [bMs, bSeq = '0'] = b.split('-');
    const ms = BigInt(aMs!) - BigInt(bMs!);
    const seq = BigInt(aSeq) - BigInt(bSeq);
    return ms !== 0n ? (ms < 0n ? -1 : 1) : seq !== 0n ? (seq < 0n ? -1 : 1) : 0;
  };
  const part = fc.oneof(fc.constantFrom('0', '9', '10', '99', '100'), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String));

  it('orders ids by their numbers, not as strings, leading zeros and bare ms included', () => {
    const id = fc.oneof(
      fc.tuple(part, part).map(([ms, seq]) => `${ms}-${seq}`),
      fc.tuple(part, part).map(([ms, seq]) => `0${ms}-${seq}`),
      part,
    );
    fc.assert(fc.property(id, id, (a, b) => compareEntryIds(a, b) === byNumbers(a, b)), { numRuns: 5000 });
    expect(compareEntryIds('100-0', '99-5')).toBe(1);
    expect(compareEntryIds('5-10', '5-9')).toBe(1);
    expect(compareEntryIds('5-0', '5-0')).toBe(0);
    expect(compareEntryIds('0-0', '1-0')).toBe(-1);
  });
});
