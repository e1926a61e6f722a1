import { Bounded, CoarseTimer } from '../../src/core/coarse-timer';

/** An item that records when it was watched and when it expired, on the (fake) clock. */
class Probe extends Bounded {
  readonly watchedAt = performance.now();
  expiredAt: number | undefined;
  expire(): void {
    this.expiredAt = performance.now();
  }
}

describe('CoarseTimer', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  it.each([40, 1000, 2000, 5000])('never expires an item before its bound, wherever in a tick it was watched (timeout %d ms)', (timeout) => {
    const timer = new CoarseTimer<Probe>(timeout);
    // One item watched first starts the ticks; the probes then land at every offset within a tick.
    timer.watch(new Probe());
    const tick = Math.ceil(timeout / 8);
    const step = Math.max(1, Math.floor(tick / 5));
    const probes: Probe[] = [];
    for (let offset = 0; offset <= 2 * tick; offset += step) {
      const probe = new Probe();
      timer.watch(probe);
      probes.push(probe);
      jest.advanceTimersByTime(step);
    }
    jest.advanceTimersByTime(2 * timeout);
    for (const probe of probes) {
      expect(probe.expiredAt).toBeDefined();
      const waited = probe.expiredAt! - probe.watchedAt;
      expect(waited).toBeGreaterThanOrEqual(timeout);
      expect(waited).toBeLessThanOrEqual(timeout + 2 * tick);
    }
  });

  it('an item watched just before a tick is still waiting one ms before its bound', () => {
    const timer = new CoarseTimer<Probe>(2000);
    timer.watch(new Probe());
    jest.advanceTimersByTime(249);
    const late = new Probe();
    timer.watch(late);
    jest.advanceTimersByTime(1999);
    expect(late.expiredAt).toBeUndefined();
    jest.advanceTimersByTime(500);
    expect(late.expiredAt).toBeDefined();
  });

  it('never expires an item that left, and keeps the places of the others right when one leaves from the middle', () => {
    const timer = new CoarseTimer<Probe>(100);
    const probes = Array.from({ length: 6 }, () => new Probe());
    for (const probe of probes) timer.watch(probe);
    timer.leave(probes[1]!);
    timer.leave(probes[0]!);
    timer.leave(probes[4]!);
    // Leaving twice, or leaving one never watched, changes nothing.
    timer.leave(probes[4]!);
    timer.leave(new Probe());
    jest.advanceTimersByTime(200);
    expect(probes.map((probe) => probe.expiredAt !== undefined)).toEqual([false, false, true, true, false, true]);
  });

  it('runs its interval only while something is watched', () => {
    const timer = new CoarseTimer<Probe>(100);
    expect(jest.getTimerCount()).toBe(0);
    const probe = new Probe();
    timer.watch(probe);
    timer.watch(new Probe());
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(200);
    expect(jest.getTimerCount()).toBe(0);

    timer.watch(probe);
    timer.leave(probe);
    jest.advanceTimersByTime(13);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('clear() hands back every item still watched, unexpired, and stops', () => {
    const timer = new CoarseTimer<Probe>(100);
    const early = new Probe();
    timer.watch(early);
    jest.advanceTimersByTime(50);
    const late = new Probe();
    const gone = new Probe();
    timer.watch(late);
    timer.watch(gone);
    timer.leave(gone);
    expect(timer.clear()).toEqual([early, late]);
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(500);
    expect([early.expiredAt, late.expiredAt]).toEqual([undefined, undefined]);
    // Nothing is left to leave.
    timer.leave(early);
    expect(timer.clear()).toEqual([]);
  });

  it('lets an expiring item watch another', () => {
    const timer = new CoarseTimer<Probe>(100);
    const second = new Probe();
    const first = new (class extends Probe {
      override expire(): void {
        super.expire();
        timer.watch(second);
      }
    })();
    timer.watch(first);
    jest.advanceTimersByTime(150);
    expect(first.expiredAt).toBeDefined();
    expect(second.expiredAt).toBeUndefined();
    jest.advanceTimersByTime(150);
    expect(second.expiredAt! - first.expiredAt!).toBeGreaterThanOrEqual(100);
  });
});

describe('CoarseTimer on real timers', () => {
  it('never keeps the process alive by itself', () => {
    const timer = new CoarseTimer<Probe>(60_000);
    const refTimers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = refTimers();
    timer.watch(new Probe());
    expect(refTimers()).toBe(before);
    timer.clear();
  });
});
