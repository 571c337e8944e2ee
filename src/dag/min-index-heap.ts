/**
 * A binary min-heap of task indices, so that ready tasks start in
 * declaration order whatever order they became ready in.
 *
 * @module
 */

/** Min-heap of non-negative integers. */
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
