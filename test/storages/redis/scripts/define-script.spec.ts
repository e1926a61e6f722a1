import { NO_DEADLINE } from '../../../../src/storages/redis/redis-keys';
import { RedisReplyError } from '../../../../src/storages/redis/redis-reply-error';
import { createSessionScript } from '../../../../src/storages/redis/scripts/create-session.script';
import { destroySessionScript } from '../../../../src/storages/redis/scripts/destroy-session.script';
import { releaseQuotaScript } from '../../../../src/storages/redis/scripts/release-quota.script';
import { sweepScript } from '../../../../src/storages/redis/scripts/sweep.script';
import { touchSessionsScript } from '../../../../src/storages/redis/scripts/touch-sessions.script';
import { ITEM_FAILED, transitionBatchScript } from '../../../../src/storages/redis/scripts/transition-batch.script';
import { TRANSITION } from '../../../../src/storages/redis/scripts/transition-status';

const common = { origin: 'instance-a', now: 1000, maxLength: 100, fence: 5000 };

describe('the scripts\' typed boundaries', () => {
  it('give every script that appends events the same leading arguments, in one order', () => {
    const lead = ['instance-a', '1000', '100', '5000'];
    expect(createSessionScript.args({ ...common, member: '5', deadline: 2000, limit: 0, grant: 0, grantId: '', incarnation: '' }).slice(0, 4)).toEqual(lead);
    expect(destroySessionScript.args({ ...common, member: '5' }).slice(0, 4)).toEqual(lead);
    expect(sweepScript.args({ ...common, batch: 10 }).slice(0, 4)).toEqual(lead);
    expect(releaseQuotaScript.args({ ...common, batch: 10, id: '1', incarnation: 'abc' }).slice(0, 4)).toEqual(lead);
  });

  it('send a create\'s deadline once, and neither deadline nor limit when it has none', () => {
    const create = { ...common, member: '5', grant: 0, grantId: '', incarnation: '' };
    expect(createSessionScript.args({ ...create, deadline: 2000, limit: 0 }).filter((arg) => arg === '2000')).toHaveLength(1);
    expect(createSessionScript.args({ ...create, deadline: NO_DEADLINE, limit: 3 })).toEqual([...createSessionScript.args({ ...create, deadline: NO_DEADLINE, limit: 0 }), String(NO_DEADLINE), '3']);
    expect(createSessionScript.args({ ...create, deadline: NO_DEADLINE, limit: 0 })).toEqual(['instance-a', '1000', '100', '5000', '5']);
  });

  it('open each Lua source with a header naming its KEYS, ARGV and output', () => {
    for (const script of [createSessionScript, destroySessionScript, sweepScript, releaseQuotaScript, touchSessionsScript]) {
      expect(script.source).toMatch(/^--\[\[[\s\S]*Input:[\s\S]*KEYS\[1\][\s\S]*ARGV\[1\][\s\S]*Output:[\s\S]*\]\]/);
    }
  });

  it('parse replies into named statuses, and refuse other shapes with RedisReplyError', () => {
    // Redis's clock comes as TIME's seconds and microseconds, made ms (rounded down) here.
    expect(createSessionScript.parse([TRANSITION.done, '1700000000', '999', 7, '1-0'])).toEqual({ status: TRANSITION.done, redisMs: 1_700_000_000_000, lastSequence: 7, eventIds: ['1-0'] });
    expect(createSessionScript.parse([TRANSITION.done, '1700000000', '12999', 8, '1-0', '1-1'])).toEqual({ status: TRANSITION.done, redisMs: 1_700_000_000_012, lastSequence: 8, eventIds: ['1-0', '1-1'] });
    expect(destroySessionScript.parse([TRANSITION.fenced, '1700000001', '0', 0])).toEqual({ status: TRANSITION.fenced, redisMs: 1_700_000_001_000, lastSequence: 0, eventIds: [] });
    expect(() => createSessionScript.parse([7])).toThrow(RedisReplyError);
    expect(() => createSessionScript.parse([TRANSITION.done, 1_700_000_000_000, 7, '1-0'])).toThrow(RedisReplyError);
    expect(() => createSessionScript.parse([TRANSITION.done, '17e8', '0', 7, '1-0'])).toThrow(RedisReplyError);
    expect(() => touchSessionsScript.parse('x'.repeat(10_000))).toThrow(/hasSession with "x{10,}… \(10002 characters\)/);
  });

  it('parse a batch\'s reply into one outcome per call, and refuse other shapes with RedisReplyError', () => {
    expect(transitionBatchScript.parse(['1700000000', '5000', '0-9', TRANSITION.done, 7, 1, '1-0', TRANSITION.unchanged, 0, 0, TRANSITION.limitReached, 9, 2, '1-1', '1-2', ITEM_FAILED, 0, 1, 'WRONGTYPE'])).toEqual({
      redisMs: 1_700_000_000_005,
      previousId: '0-9',
      outcomes: [
        { status: TRANSITION.done, lastSequence: 7, eventIds: ['1-0'] },
        { status: TRANSITION.unchanged, lastSequence: 0, eventIds: [] },
        { status: TRANSITION.limitReached, lastSequence: 9, eventIds: ['1-1', '1-2'] },
        { status: ITEM_FAILED, error: 'WRONGTYPE' },
      ],
    });
    for (const bad of [
      [1700000000, '0', ''],
      ['1700000000', '0', TRANSITION.done, 7, 1, '1-0'],
      ['1700000000', '0', '', TRANSITION.done, 7, 2, '1-0'],
      ['1700000000', '0', '', TRANSITION.done, 7, 1, 5],
      ['1700000000', '0', '', 9, 7, 1, '1-0'],
      ['1700000000', '0', '', ITEM_FAILED, 0, 0],
      ['1700000000', '0', '', TRANSITION.done, 7, -1],
    ]) {
      expect(() => transitionBatchScript.parse(bad)).toThrow(RedisReplyError);
    }
  });
});
