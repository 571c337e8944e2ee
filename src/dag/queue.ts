/**
 * A first-in, first-out queue over an array and a head index: `shift` is
 * O(1) (no `Array#shift`, which moves every element), the slot it leaves is
 * cleared so the item can be collected, and the array is compacted once the
 * consumed part is both large and most of it. Used wherever dagstream keeps
 * items in arrival order and drops them from the front: buffered events and
 * their waiting writers, task deadlines, a run log's frames, finished runs.
 *
 * @module
 */

/** Consumed slots kept before the array is compacted (compaction also needs half the array). */
const COMPACT_AFTER = 1024;

/**
 * A FIFO queue with O(1) `push`, `shift` and indexed access from the front.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Queue } from "./queue.ts";
 *
 * const queue = new Queue<string>();
 * queue.push("a");
 * queue.push("b");
 * queue.push("c");
 * assert.equal(queue.length, 3);
 * assert.equal(queue.shift(), "a");
 * assert.equal(queue.peek(), "b");
 * assert.equal(queue.at(1), "c");
 * assert.deepEqual(queue.toArray(), ["b", "c"]);
 * assert.deepEqual([...queue.drain()], ["b", "c"]);
 * assert.equal(queue.length, 0);
 * assert.equal(queue.shift(), undefined);
 * ```
 */
export class Queue<T> {
  #items: T[] = [];
  #head = 0;

  /** Items in the queue. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Whether the queue holds no item. */
  get empty(): boolean {
    return this.#head === this.#items.length;
  }

  /** Adds `item` at the back. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** The item at the front, without removing it; `undefined` when empty. */
  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** The item `index` places from the front (0 is the front); `undefined` when out of range. */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.length) return undefined;
    return this.#items[this.#head + index];
  }

  /** Removes and returns the item at the front; `undefined` when empty. */
  shift(): T | undefined {
    const items = this.#items;
    if (this.#head === items.length) return undefined;
    const item = items[this.#head];
    items[this.#head++] = undefined as T;
    if (this.#head === items.length) this.clear();
    else if (this.#head > COMPACT_AFTER && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes every item. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  /** The items from the front, `from` onwards (0 by default), as a new array. */
  toArray(from = 0): T[] {
    return this.#items.slice(this.#head + Math.max(0, from));
  }

  /** Removes every item and returns them, front first, as a new array. */
  drain(): T[] {
    const items = this.toArray();
    this.clear();
    return items;
  }
}
