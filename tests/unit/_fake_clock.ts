/**
 * A clock the test moves by hand. While installed it stands in for
 * `performance.now()`, `setTimeout`/`clearTimeout` and
 * `setInterval`/`clearInterval`, which is how dagstream reads time and arms
 * its timers (task deadlines, keep-alive comments). Nothing fires and no time
 * passes until the test calls {@linkcode FakeClock.advance}: a timeout is
 * proved by moving the clock to the exact millisecond, never by waiting.
 *
 * ```ts
 * using clock = new FakeClock();
 * // ... start something that arms a timer ...
 * await clock.advance(19); // not yet
 * await clock.advance(1); // now it fires
 * ```
 *
 * Not a test file (no `_test` suffix). `Date` is left alone (timestamps
 * of events stay real).
 *
 * @module
 */

/** The real timer functions, captured before any test can replace them. */
const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
};

/**
 * Lets every pending microtask run, and one macrotask turn pass, on the
 * real event loop (works whether or not a {@linkcode FakeClock} is installed).
 */
export function realTurn(): Promise<void> {
  return new Promise((resolve) => real.setTimeout(resolve, 0));
}

interface FakeTimer {
  /** When it fires next, in the clock's milliseconds. */
  at: number;
  /** Arming order: timers due at the same time fire in this order. */
  order: number;
  callback: () => void;
  /** The period of an interval; undefined for a timeout. */
  every?: number;
  /** The delay the code asked for. */
  delay: number;
}

/** A manual clock; `using clock = new FakeClock()` installs it for the block. */
export class FakeClock implements Disposable {
  #now: number;
  /** Far above the real timers' ids, so that both never mix up. */
  #nextId = 2 ** 30;
  #order = 0;
  readonly #timers = new Map<number, FakeTimer>();
  readonly #restore: () => void;

  /** Installs the clock, reading `start` ms (default 0). */
  constructor(start = 0) {
    this.#now = start;
    const saved = {
      setTimeout: globalThis.setTimeout,
      clearTimeout: globalThis.clearTimeout,
      setInterval: globalThis.setInterval,
      clearInterval: globalThis.clearInterval,
    };
    const hadOwnNow = Object.hasOwn(performance, "now");
    const ownNow = performance.now;
    globalThis.setTimeout =
      ((callback: () => void, delay?: number, ...args: unknown[]) =>
        this.#arm(callback, delay, args, false)) as unknown as typeof setTimeout;
    globalThis.setInterval =
      ((callback: () => void, delay?: number, ...args: unknown[]) =>
        this.#arm(callback, delay, args, true)) as unknown as typeof setInterval;
    // A timer armed before the clock was installed is still a real one.
    globalThis.clearTimeout = ((id?: number) => {
      if (!this.#timers.delete(id!)) saved.clearTimeout(id);
    }) as typeof clearTimeout;
    globalThis.clearInterval = ((id?: number) => {
      if (!this.#timers.delete(id!)) saved.clearInterval(id);
    }) as typeof clearInterval;
    Object.defineProperty(performance, "now", {
      value: () => this.#now,
      configurable: true,
      writable: true,
    });
    this.#restore = () => {
      globalThis.setTimeout = saved.setTimeout;
      globalThis.clearTimeout = saved.clearTimeout;
      globalThis.setInterval = saved.setInterval;
      globalThis.clearInterval = saved.clearInterval;
      if (hadOwnNow) performance.now = ownNow;
      else delete (performance as { now?: unknown }).now;
    };
  }

  /** The clock's time, in ms (what `performance.now()` returns). */
  get now(): number {
    return this.#now;
  }

  /**
   * Moves the clock `ms` forward at once, as synchronous work would take
   * time: no timer fires, and none may fall due on the way.
   */
  spend(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`spend(${ms}): the clock only goes forward`);
    const due = this.#first(this.#now + ms);
    if (due !== undefined) throw new Error(`spend(${ms}) passes a timer: use advance()`);
    this.#now += ms;
  }

  /** Delays (ms) of the timers armed now, in the order they will fire. */
  get armed(): number[] {
    return this.#queue().map((timer) => timer.delay);
  }

  /** When the armed timers fire, in the clock's ms, in order. */
  get dueTimes(): number[] {
    return this.#queue().map((timer) => timer.at);
  }

  /**
   * Moves the clock `ms` forward. Every timer due on the way fires at its
   * own time, in order; after each one, pending microtasks (and one real
   * event-loop turn) run before the clock moves on, so work a timer starts
   * reads the time it fired at.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance(${ms}): the clock only goes forward`);
    const target = this.#now + ms;
    await realTurn();
    for (let timer = this.#first(target); timer !== undefined; timer = this.#first(target)) {
      const [id, due] = timer;
      this.#now = Math.max(this.#now, due.at);
      if (due.every === undefined) this.#timers.delete(id);
      else {
        due.at += due.every;
        due.order = this.#order++;
      }
      due.callback();
      await realTurn();
    }
    this.#now = target;
    await realTurn();
  }

  /** Restores the real timers and `performance.now`. Timers still armed are dropped. */
  [Symbol.dispose](): void {
    this.#timers.clear();
    this.#restore();
  }

  #arm(callback: () => void, delay: number | undefined, args: unknown[], repeat: boolean): number {
    if (typeof callback !== "function") throw new TypeError("FakeClock: a callback is required");
    const ms = Math.max(0, Number(delay) || 0);
    const id = this.#nextId++;
    this.#timers.set(id, {
      at: this.#now + ms,
      order: this.#order++,
      callback: args.length === 0
        ? callback
        : () => (callback as (...a: unknown[]) => void)(...args),
      every: repeat ? Math.max(1, ms) : undefined,
      delay: ms,
    });
    return id;
  }

  #queue(): FakeTimer[] {
    return [...this.#timers.values()].sort((a, b) => a.at - b.at || a.order - b.order);
  }

  #first(limit: number): [number, FakeTimer] | undefined {
    let best: [number, FakeTimer] | undefined;
    for (const entry of this.#timers) {
      const timer = entry[1];
      if (timer.at > limit) continue;
      if (
        best === undefined || timer.at < best[1].at ||
        (timer.at === best[1].at && timer.order < best[1].order)
      ) {
        best = entry;
      }
    }
    return best;
  }
}
