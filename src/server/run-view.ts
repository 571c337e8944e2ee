/**
 * What an application built by `createApp` shows of its runs: enough to
 * watch, wait for and cancel them, without the registry's internals.
 *
 * @module
 */

import type { RunStatus } from "./run.ts";

/** One run of an application, as its owner sees it. */
export interface AppRun {
  /** The run's id (`X-Run-Id`, the `<id>` of `/runs/<id>`). */
  readonly id: string;
  /** When the run was created, ISO 8601. */
  readonly createdAt: string;
  /** Where the run is in its life. */
  readonly status: RunStatus;
  /** Whether the run is still executing. */
  readonly active: boolean;
  /** Resolves once the run is over. */
  readonly done: Promise<void>;
  /** About how many bytes of memory the run keeps (its event log, counted outputs). */
  readonly keptBytes: number;
  /**
   * Cancels the run: running tools see their signal abort, the rest fail
   * unrun. Returns false when the run was already over.
   */
  cancel(reason: string): boolean;
}

/** The runs of an application, active and recently finished. */
export interface AppRuns {
  /** Runs executing now. */
  readonly activeCount: number;
  /** The run with that id, while it is kept. */
  get(id: string): AppRun | undefined;
  /** Every kept run, oldest first. */
  list(): AppRun[];
}
