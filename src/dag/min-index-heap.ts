/**
 * A binary min-heap of task indices, so that ready tasks start in
 * declaration order whatever order they became ready in.
 *
 * @module
 */

/**
 * Min-heap of non-negative integers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MinIndexHeap } from "./min-index-heap.ts";
 * const ready = new MinIndexHeap();
 * for (const index of [5, 1, 4, 1, 3]) ready.push(index);
 * assert.equal(ready.size, 5);
 * const order: number[] = [];
 * while (ready.size > 0) order.push(ready.pop());
 * assert.deepEqual(order, [1, 1, 3, 4, 5]);
 * ```
 */
export class MinIndexHeap {
  #items: number[] = [];

  /** Number of indices held. */
  get size(): number {
    return this.#items.length;
  }

  /** Adds an index. */
  push(value: number): void {
    const items = this.#items;
    let i = items.length;
    items.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent] <= value) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = value;
  }

  /** Removes and returns the smallest index; the heap must not be empty. */
  pop(): number {
    const items = this.#items;
    const top = items[0];
    const last = items.pop()!;
    const n = items.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && items[right] < items[left] ? right : left;
        if (items[child] >= last) break;
        items[i] = items[child];
        i = child;
      }
      items[i] = last;
    }
    return top;
  }

  /** Removes every index. */
  clear(): void {
    this.#items = [];
  }
}
