/**
 * Runs shared between server instances through Redis (`--store redis://…`).
 *
 * Each instance still executes its own runs (those it accepted) and keeps
 * their logs in memory as in memory mode; it also copies every run to Redis
 * as it goes: the metadata into a hash, each event frame into a Redis Stream
 * whose entry ids are the SSE sequence ids (`<seq>-0`). Any instance can then
 * list the runs, show one, and stream its events (replayed with `XREAD` from
 * the start, then followed with `XREAD BLOCK`: one follower connection per
 * run per instance, shared by all of that instance's watchers of the run).
 * `DELETE` of a run executing elsewhere is published on a channel that every
 * instance listens to; the owner cancels it. Finished runs expire after
 * `--run-ttl-seconds`.
 *
 * Keys (prefix `dagstream:`): `run:<id>` (hash), `run:<id>:events`
 * (stream), `runs` (sorted set of run ids by creation time), channel
 * `cancel`.
 *
 * @module
 */

import { createClient } from "npm:@redis/client@6.3.1";
import type { DAGExecutionResult, Task } from "../dag/types.ts";
import { describeError } from "../dag/errors.ts";
import { type LogBudget, RunLog } from "../sse/run-log.ts";
import { encodeSSEEvent } from "../sse/frame.ts";
import { errorEvent, type SSEEvent } from "../dag/events.ts";
import type { LoggedRun } from "../sse/log-stream.ts";
import type { Run, RunStatus, RunView } from "./run.ts";
import { encodeCursor, listedBefore, type ListQuery, type RunPage } from "./run-listing.ts";

type Client = ReturnType<typeof createClient>;

const RUNS = "dagstream:runs";
const RUNNING = "dagstream:running";
const QUEUE = "dagstream:queue";
const GROUP = "dagstream";
const CANCEL = "dagstream:cancel";
const leaseKey = (instance: string) => `dagstream:instance:${instance}`;
/** The statuses of runs that are over. */
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const metaKey = (id: string) => `dagstream:run:${id}`;
const eventsKey = (id: string) => `dagstream:run:${id}:events`;

/** Bytes of frames on their way to Redis, all runs together; past it frames are not copied. */
const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** How long a follower's `XREAD` blocks before it looks at the run's status again. */
const FOLLOW_BLOCK_MS = 1000;
/** A message of the queue unacknowledged this long belongs to a lost instance: another takes it. */
const CLAIM_IDLE_MS = 10_000;
/** How often an instance looks for such messages. */
const CLAIM_EVERY_MS = 2000;

/**
 * Takes a queued run for an instance (the message is acknowledged and
 * removed whatever the run's state): when the run still waits, it becomes
 * `running` on that instance and its DAG and creation time come back.
 * KEYS: hash, running set, queue. ARGV: instance, startedAt, run id, message
 * id, group, this process's owner token.
 */
const TAKE = `
redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])
redis.call('XDEL', KEYS[3], ARGV[4])
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return false end
redis.call('HSET', KEYS[1], 'status', 'running', 'instance', ARGV[1], 'startedAt', ARGV[2],
  'owner', ARGV[6])
redis.call('SADD', KEYS[2], ARGV[3])
return redis.call('HMGET', KEYS[1], 'dag', 'createdAt')
`;

/**
 * Cancels a run still waiting in the queue (its message is skipped when
 * taken). KEYS: hash. ARGV: finishedAt, TTL in seconds. Returns the status
 * the run had.
 */
const CANCEL_QUEUED = `
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finishedAt', ARGV[1], 'lastSeq', '0',
    'error', 'cancelled by DELETE before it started')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return status
`;

/** A batch of frames is sent once it holds this many characters (or at the end of the turn). */
const BATCH_BYTES = 256 * 1024;

/**
 * Appends a batch of frames to a run's stream, then trims what gave way;
 * nothing, and 0, when the run is no longer this process's to write (another
 * instance ended it as lost). KEYS: the stream, the hash. ARGV: the owner
 * token, the first sequence id kept, the batch's size (added to the run's
 * `bytes`), then id/frame pairs.
 */
const APPEND = `
if redis.call('HGET', KEYS[2], 'status') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then return 0 end
for i = 4, #ARGV, 2 do redis.call('XADD', KEYS[1], ARGV[i], 'f', ARGV[i + 1]) end
if tonumber(ARGV[2]) > 1 then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2]) end
redis.call('HINCRBY', KEYS[2], 'bytes', ARGV[3])
return 1
`;

/** A followed run nobody watches is dropped after this long. */
const IDLE_FOLLOWER_MS = 5000;

/** How long a cancel that found no run is kept, and how many are. */
const RECENT_CANCEL_MS = 5000;
const MAX_RECENT_CANCELS = 1000;

/** Entries read per `XREAD`. */
const READ_COUNT = 1000;
/** An instance renews its lease this often... */
const LEASE_RENEW_MS = 2000;
/** ...and it lapses this long after the last renewal: its running runs are then lost. */
const LEASE_TTL_MS = 10_000;

/**
 * Records a run's end, unless another instance already ended it as lost
 * (this instance was away from Redis for too long). KEYS: hash, stream,
 * running set. ARGV: TTL in seconds, run id, then field/value pairs.
 */
const FINISH = `
if redis.call('HGET', KEYS[1], 'status') == 'running' then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
`;

/**
 * Ends a run whose instance was lost (its lease lapsed, or belongs to a new
 * process with the same id: the run's owner token is not the lease's),
 * unless it ended or its process came back meanwhile (atomically, so that one instance does it): the two frames
 * go in after the last event seen, the hash says `failed`, both keys expire.
 * KEYS: hash, stream, running set, the owner's lease. ARGV: the last id seen,
 * the error frame's and execution_complete's text after their `id:` lines,
 * the error, finishedAt, the TTL in seconds, the run id.
 */
const REAP = String.raw`
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and redis.call('GET', KEYS[4]) == owner then return 0 end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local seq = 0
if #last > 0 then seq = tonumber(string.match(last[1][1], '^(%d+)')) end
if seq ~= tonumber(ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], (seq + 1) .. '-0', 'f', 'id: ' .. (seq + 1) .. '\n' .. ARGV[2])
redis.call('XADD', KEYS[2], (seq + 2) .. '-0', 'f', 'id: ' .. (seq + 2) .. '\n' .. ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[4], 'finishedAt', ARGV[5],
  'lastSeq', tostring(seq + 2))
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('SREM', KEYS[3], ARGV[7])
return 1
`;

/** What a {@linkcode RedisRunStore} needs to know. */
export interface RedisStoreSettings {
  /** This instance's id. */
  instance: string;
  /** Seconds a finished run stays in Redis. */
  runTtlSeconds: number;
  /** Most bytes of events a followed run's copy keeps here. */
  maxRunLogBytes: number;
  /** Most finished runs kept (the newest); also most runs `list` returns. */
  maxRuns: number;
  /** Most bytes of events all runs' copies keep together (finished runs give way, oldest first). */
  maxLogBytesTotal: number;
  /** Most runs waiting in the shared queue. */
  maxQueuedRuns: number;
  /** Where problems are logged. */
  log: (record: Record<string, unknown>) => void;
}

/** A run of any instance as read from Redis, ready for a stream. */
export interface FollowedRun extends LoggedRun {
  /** The run's id. */
  readonly id: string;
  /** Whether the run may still get events. */
  readonly active: boolean;
  /** A stream of this copy opened. */
  watch(): void;
  /** A stream of this copy closed: with none left for a few seconds, the copy is dropped. */
  unwatch(): void;
}

/** A message of the shared queue. */
interface QueueMessage {
  id: string;
  message: Record<string, string>;
}

/**
 * Starts a run taken from the queue on this instance: `started`, `busy` (no
 * room after all: it goes back to the queue), or why it cannot run here (it
 * then fails with that error).
 */
export type StartQueued = (
  runId: string,
  dag: unknown,
  createdAt: string,
) => "started" | "busy" | { error: string };

/** The copy of one local run in Redis. */
export interface RunCopy {
  /** Copies a frame of the run's log. */
  frame(seq: number, frame: string): void;
  /** The run is over: its status, result and expiry go to Redis. */
  finish(): void;
}

/**
 * The Redis side of the shared run store. Create it with
 * {@linkcode RedisRunStore.open}; it connects in the background and
 * reconnects after losing Redis, and {@linkcode RedisRunStore.up} says
 * whether it can be used now.
 */
export class RedisRunStore {
  readonly #settings: RedisStoreSettings;
  readonly #commands: Client;
  readonly #subscriber: Client;
  readonly #followed = new Map<string, RemoteRun>();
  #inFlightBytes = 0;
  #closed = false;
  #onCancel: ((id: string) => boolean) | undefined;
  /**
   * Cancels that found no run here, kept a few seconds: the run may be one
   * this instance is taking from the queue right now (the take's answer and
   * the cancel come on different connections).
   */
  readonly #recentCancels = new Map<string, number>();
  #lastError = "";
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** This process's token: in its lease and on each run it executes, so that a new process with the same instance id does not pass for it. */
  readonly #token = crypto.randomUUID();
  /** When the connection last became ready (0: not ready). */
  #readySince = 0;
  /** Runs whose end is not in Redis yet: sent again until it is. */
  readonly #unfinished = new Map<string, () => Promise<unknown>>();
  #onLost: ((id: string) => void) | undefined;
  #onOutage: ((awayMs: number) => void) | undefined;
  /** When the connection was lost (0: it is not). */
  #downSince = 0;
  #consuming: Promise<void> | undefined;
  #queueReader: Client | undefined;
  #reaping = false;

  private constructor(url: string, settings: RedisStoreSettings) {
    this.#settings = settings;
    const options = {
      url,
      // Commands fail at once while Redis is away, instead of queueing without bound.
      disableOfflineQueue: true,
      // A Redis that stops answering is found out: a ping when idle, and a
      // socket without data for 15 s is closed (and reconnected).
      pingInterval: 5000,
      socket: {
        connectTimeout: 5000,
        socketTimeout: 15_000,
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2000),
      },
    };
    this.#commands = createClient(options);
    this.#subscriber = createClient(options);
    for (const client of [this.#commands, this.#subscriber]) {
      client.on("error", (error: unknown) => this.#problem(error));
    }
  }

  /**
   * Starts connecting to the Redis at `url` (`redis://[user:pass@]host:port[/db]`)
   * and returns at once: a server starts even while Redis is away.
   *
   * @throws {TypeError} for a URL that is not a redis:// one
   */
  static open(url: string, settings: RedisStoreSettings): RedisRunStore {
    if (!/^rediss?:\/\//.test(url)) throw new TypeError("the store URL must start with redis://");
    const store = new RedisRunStore(url, settings);
    store.#commands.connect().catch((error: unknown) => store.#problem(error));
    // The lease says this instance is alive; its runs are lost when it lapses.
    store.#ticker = setInterval(() => store.#tick(), LEASE_RENEW_MS);
    store.#commands.on("ready", () => {
      const away = store.#downSince === 0 ? 0 : Date.now() - store.#downSince;
      store.#downSince = 0;
      store.#readySince = Date.now();
      if (store.#lastError !== "") settings.log({ msg: "store", store: "redis", status: "up" });
      store.#lastError = "";
      // Away longer than a lease: the copies of this instance's runs miss
      // what happened meanwhile (others may have ended them as lost too).
      if (away > LEASE_TTL_MS) store.#onOutage?.(away);
      store.#tick();
    });
    const down = () => {
      store.#readySince = 0;
      if (store.#downSince === 0) store.#downSince = Date.now();
    };
    store.#commands.on("end", down);
    store.#commands.on("error", down);
    store.#subscriber.connect().then(
      () =>
        store.#subscriber.subscribe(CANCEL, (id: string) => store.#cancelHere(id)).catch((
          error: unknown,
        ) => store.#problem(error)),
      (error: unknown) => store.#problem(error),
    );
    return store;
  }

  /** Whether Redis answers now. */
  get up(): boolean {
    return this.#commands.isReady && this.#subscriber.isReady;
  }

  /**
   * What to do when Redis is back after being away for longer than a lease
   * (10 s): the runs executing here could not be copied meanwhile, so they
   * should fail (`store_unavailable`).
   */
  onOutage(handler: (awayMs: number) => void): void {
    this.#onOutage = handler;
  }

  /**
   * Where to send the ids of runs executing here that another instance ended
   * as lost (this one was away from Redis too long): they should stop.
   */
  onLost(handler: (id: string) => void): void {
    this.#onLost = handler;
  }

  /**
   * Where to send the ids of runs cancelled on other instances (one
   * handler): it says whether the run is here.
   */
  onCancel(handler: (id: string) => boolean): void {
    this.#onCancel = handler;
  }

  /** A cancel from the channel: the run here stops, or the id is kept a while for a run being taken. */
  #cancelHere(id: string): void {
    if (this.#onCancel?.(id)) return;
    const now = Date.now();
    for (const [kept, at] of this.#recentCancels) {
      if (now - at < RECENT_CANCEL_MS && this.#recentCancels.size < MAX_RECENT_CANCELS) break;
      this.#recentCancels.delete(kept);
    }
    this.#recentCancels.set(id, now);
  }

  /**
   * Starts copying a run this instance executes: its metadata now, each frame
   * as it is appended, its status and result when it ends.
   */
  copy(run: Run): RunCopy {
    const id = run.id;
    const key = eventsKey(id);
    const view = run.toJSON(false);
    this.#send(
      this.#commands.hSet(metaKey(id), {
        runId: id,
        status: view.status,
        instance: view.instance ?? "",
        createdAt: view.createdAt,
        startedAt: view.startedAt ?? new Date().toISOString(),
        dag: JSON.stringify({ tasks: run.tasks }),
        owner: this.#token,
      }),
      0,
    );
    this.#send(this.#commands.zAdd(RUNS, { score: Date.parse(view.createdAt), value: id }), 0);
    this.#send(this.#commands.sAdd(RUNNING, id), 0);
    let skipped = 0;
    let lost = false;
    // The frames of one event-loop turn go to Redis in one command.
    let batch: string[] = [];
    let batchBytes = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      clearTimeout(timer);
      timer = undefined;
      if (batch.length === 0) return;
      // Frames that gave way here give way there too.
      const args = [this.#token, String(run.log.firstSeq), String(batchBytes), ...batch];
      const bytes = batchBytes;
      batch = [];
      batchBytes = 0;
      this.#inFlightBytes += bytes;
      this.#commands.eval(APPEND, { keys: [key, metaKey(id)], arguments: args }).then(
        (written) => {
          this.#inFlightBytes -= bytes;
          if (written === 0 && !lost) {
            // Another instance ended the run as lost: it stops here too.
            lost = true;
            this.#onLost?.(id);
          }
        },
        (error) => {
          this.#inFlightBytes -= bytes;
          this.#problem(error);
        },
      );
    };
    return {
      frame: (seq, frame) => {
        if (lost) return;
        if (
          this.#inFlightBytes + batchBytes + frame.length > MAX_IN_FLIGHT_BYTES ||
          !this.#commands.isReady
        ) {
          if (skipped++ === 0) {
            this.#settings.log({ msg: "store", runId: id, warning: "events not copied to Redis" });
          }
          return;
        }
        batch.push(`${seq}-0`, frame);
        batchBytes += frame.length;
        if (batchBytes >= BATCH_BYTES) flush();
        else timer ??= setTimeout(flush, 0);
      },
      finish: () => {
        flush();
        const done = run.toJSON(false);
        const fields: Record<string, string> = {
          status: done.status,
          lastSeq: String(run.log.lastSeq),
          finishedAt: done.finishedAt ?? new Date().toISOString(),
        };
        if (done.result !== undefined) fields.result = JSON.stringify(done.result);
        if (done.error !== undefined) fields.error = done.error;
        const ttl = Math.max(1, this.#settings.runTtlSeconds);
        const record = () =>
          this.#commands.eval(FINISH, {
            keys: [metaKey(id), key, RUNNING],
            arguments: [String(ttl), id, ...Object.entries(fields).flat()],
          });
        // Kept until Redis has it: a blip at the end must not leave the run "running" there.
        this.#unfinished.set(id, record);
        record().then(() => this.#unfinished.delete(id), (error) => this.#problem(error));
      },
    };
  }

  /** A run as `GET /runs/<id>` shows it, from Redis; undefined when unknown (or expired). */
  async view(id: string, withDag = true): Promise<RunView | undefined> {
    const meta = await this.#commands.hGetAll(metaKey(id)) as Record<string, string>;
    return meta.runId === undefined ? undefined : viewOf(meta, withDag);
  }

  /**
   * A page of the runs of every instance, newest first, as `GET /runs`
   * lists them: the index gives the order (scored by creation time), and
   * only as many runs are read as the page needs.
   */
  async list(query: ListQuery): Promise<RunPage<RunView>> {
    const scored = await this.#commands.zRangeWithScores(RUNS, "+inf", "-inf", {
      BY: "SCORE",
      REV: true,
    }) as { value: string; score: number }[];
    const { after, status, limit } = query;
    // Same score: the index's own order is by member, which listedBefore follows.
    const candidates = scored
      .map(({ value, score }) => ({ createdMs: score, id: value }))
      .filter((position) => after === undefined || listedBefore(after, position))
      .sort((a, b) => listedBefore(a, b) ? -1 : 1);
    const fields = ["runId", "status", "instance", "createdAt", "startedAt", "finishedAt"];
    const views: RunView[] = [];
    const gone: string[] = [];
    let taken = 0;
    for (let from = 0; from < candidates.length && views.length <= limit; from += taken) {
      const batch = candidates.slice(from, from + limit + 1);
      taken = batch.length;
      const rows = await Promise.all(
        batch.map(({ id }) => this.#commands.hmGet(metaKey(id), fields)),
      ) as (string | null)[][];
      rows.forEach((row, k) => {
        if (row[0] === null) return void gone.push(batch[k].id);
        const meta: Record<string, string> = {};
        fields.forEach((field, f) => {
          if (row[f] !== null) meta[field] = row[f]!;
        });
        if (status === undefined || meta.status === status) views.push(viewOf(meta, false));
      });
    }
    // Runs that expired leave the index too.
    if (gone.length > 0) this.#send(this.#commands.zRem(RUNS, gone), 0);
    if (views.length <= limit) return { runs: views };
    const runs = views.slice(0, limit);
    const last = runs[limit - 1];
    return {
      runs,
      nextCursor: encodeCursor({ createdMs: Date.parse(last.createdAt), id: last.runId }),
    };
  }

  /**
   * Cancels a run executing on any instance: its owner gets the request
   * through the channel. Says whether it was running.
   */
  async cancel(id: string): Promise<"cancelled" | "over" | "unknown"> {
    const status = await this.#commands.eval(CANCEL_QUEUED, {
      keys: [metaKey(id)],
      arguments: [new Date().toISOString(), String(Math.max(1, this.#settings.runTtlSeconds))],
    }) as string | null;
    if (status === null) return "unknown";
    if (status === "queued") return "cancelled";
    if (status !== "running") return "over";
    await this.#commands.publish(CANCEL, id);
    return "cancelled";
  }

  /**
   * A run of any instance, to stream: its events are read from Redis into a
   * log here (shared by every watcher on this instance) until the run ends;
   * with where the run stands now (`over`, and its last sequence id: exact
   * when over, at least that while it runs). Undefined when Redis does not
   * know the run.
   */
  async follow(
    id: string,
    budget?: LogBudget,
  ): Promise<{ run: FollowedRun; over: boolean; lastSeq: number } | undefined> {
    const [status, lastSeq] = await this.#commands.hmGet(metaKey(id), [
      "status",
      "lastSeq",
    ]) as (string | null)[];
    if (status === null) return undefined;
    const over = FINISHED.has(status);
    let last = Number(lastSeq ?? 0);
    if (status === "running") {
      const entries = await this.#commands.xRevRange(eventsKey(id), "+", "-", { COUNT: 1 });
      last = !entries || entries.length === 0 ? 0 : Number.parseInt(entries[0]!.id, 10);
    }
    let run = this.#followed.get(id);
    if (run === undefined || !run.active) {
      run = new RemoteRun(id, new RunLog(this.#settings.maxRunLogBytes, undefined, budget), this);
      const followed = run;
      this.#followed.set(id, followed);
      this.#follow(followed).catch((error) => this.#problem(error)).finally(() => {
        followed.stop();
        if (this.#followed.get(id) === followed) this.#followed.delete(id);
      });
    }
    return { run, over, lastSeq: Math.max(last, run.log.lastSeq) };
  }

  /**
   * Stops following runs, gives up this instance's lease (its runs have
   * ended by now) and closes the connections.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#ticker);
    for (const run of this.#followed.values()) run.stop();
    if (this.#queueReader?.isOpen) this.#queueReader.destroy();
    await this.#consuming;
    if (this.#commands.isReady) {
      await this.#commands.del(leaseKey(this.#settings.instance)).catch(() => {});
    }
    await Promise.allSettled(
      [this.#commands, this.#subscriber].map((client) =>
        client.isOpen ? client.close() : Promise.resolve()
      ),
    );
  }

  /**
   * Reads run `run.id`'s events into its log until the run is over: its
   * status says so and a read finds nothing more (its end is written after
   * its last frames, on the same connection). A lost connection is waited
   * out, not taken for the end.
   */
  async #follow(run: RemoteRun): Promise<void> {
    const reader = this.#commands.duplicate();
    reader.on("error", (error: unknown) => this.#problem(error));
    run.onStop = () => {
      if (reader.isOpen) reader.destroy();
    };
    let last = "0-0";
    /** Reads the next entries into the run's log (waiting up to `block` ms); says how many. */
    const readMore = async (block: number | undefined): Promise<number> => {
      const reply = await reader.xRead(
        { key: eventsKey(run.id), id: last },
        block === undefined ? { COUNT: READ_COUNT } : { BLOCK: block, COUNT: READ_COUNT },
      ) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
      const messages = reply?.[0]?.messages ?? [];
      for (const { id, message } of messages) {
        run.log.appendFrame(Number.parseInt(id, 10), message.f);
        last = id;
      }
      return messages.length;
    };
    try {
      while (!this.#closed && run.active) {
        try {
          if (!reader.isOpen) await reader.connect();
          if (!reader.isReady) {
            await pause(200);
            continue;
          }
          // Drain what is there; then, caught up, look at the run's status.
          if (await readMore(undefined) > 0) continue;
          const status = await this.#commands.hGet(metaKey(run.id), "status") as string | null;
          if (status === null || FINISHED.has(status)) {
            // Over: one more read, since frames sent before the end are in by now.
            if (await readMore(undefined) === 0) break;
            continue;
          }
          await readMore(FOLLOW_BLOCK_MS); // still running: wait for its next events
        } catch (error) {
          if (this.#closed || !run.active) break;
          this.#problem(error);
          await pause(200);
        }
      }
    } finally {
      if (reader.isOpen) reader.destroy();
    }
  }

  /** Renews this instance's lease, then ends the runs of instances whose lease lapsed. */
  #tick(): void {
    if (this.#closed || !this.#commands.isReady) return;
    this.#send(
      this.#commands.set(leaseKey(this.#settings.instance), this.#token, {
        expiration: { type: "PX", value: LEASE_TTL_MS },
      }),
      0,
    );
    for (const [id, record] of this.#unfinished) {
      record().then(() => this.#unfinished.delete(id), (error) => this.#problem(error));
    }
    if (this.#reaping) return;
    this.#reaping = true;
    // After an outage every lease may have lapsed: others get a lease's time to come back.
    const mayReap = Date.now() - this.#readySince >= LEASE_TTL_MS;
    (mayReap ? this.#reapLost() : Promise.resolve())
      .then(() => this.#forgetBeyondBounds())
      .catch((error) => this.#problem(error))
      .finally(() => this.#reaping = false);
  }

  /**
   * Keeps the runs in Redis within the memory store's bounds: at most
   * `maxRuns` finished runs, and the events of all runs, every instance's,
   * within `maxLogBytesTotal` (counted as copied). The oldest finished runs
   * go first, deleted at once whatever their TTL; queued and running ones
   * stay. Runs that expired leave the index too, so it stays bounded.
   */
  async #forgetBeyondBounds(): Promise<void> {
    const ids = await this.#commands.zRange(RUNS, 0, -1) as string[];
    if (ids.length === 0) return;
    const rows = await Promise.all(
      ids.map((id) => this.#commands.hmGet(metaKey(id), ["status", "bytes"])),
    ) as (string | null)[][];
    let count = 0;
    let bytes = 0;
    for (const [status, size] of rows) {
      if (status === null) continue;
      count++;
      bytes += Number(size ?? 0);
    }
    const gone: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      const [status, size] = rows[k];
      if (status === null) gone.push(ids[k]); // expired
      else if (
        FINISHED.has(status) &&
        (count > this.#settings.maxRuns || bytes > this.#settings.maxLogBytesTotal)
      ) {
        gone.push(ids[k]);
        count--;
        bytes -= Number(size ?? 0);
      }
    }
    if (gone.length === 0) return;
    await this.#commands.del(gone.flatMap((id) => [metaKey(id), eventsKey(id)]));
    await this.#commands.zRem(RUNS, gone);
  }

  /** Fails, with an `instance_lost` error event, each running run whose instance's lease lapsed. */
  async #reapLost(): Promise<void> {
    const ids = await this.#commands.sMembers(RUNNING) as string[];
    // Small fields only: the DAG is read for the few runs that are reaped.
    const rows = await Promise.all(
      ids.map((id) => this.#commands.hmGet(metaKey(id), ["status", "instance", "owner"])),
    ) as (string | null)[][];
    const leases = new Map<string, string | null>();
    for (let k = 0; k < ids.length && !this.#closed; k++) {
      const [status, instance, owner] = rows[k];
      if (status === null) {
        await this.#commands.sRem(RUNNING, ids[k]); // expired
        continue;
      }
      if (status !== "running" || !instance) continue;
      if (!leases.has(instance)) {
        leases.set(instance, await this.#commands.get(leaseKey(instance)) as string | null);
      }
      // Alive: the process that runs it still holds its instance's lease.
      if (owner !== null && leases.get(instance) === owner) continue;
      const meta = await this.#commands.hGetAll(metaKey(ids[k])) as Record<string, string>;
      if (meta.runId !== undefined) await this.#reap(ids[k], meta);
    }
  }

  /** Ends run `id` of a lost instance: an error event, then `execution_complete`. */
  async #reap(id: string, meta: Record<string, string>): Promise<void> {
    const entries = await this.#commands.xRange(eventsKey(id), "-", "+") as {
      id: string;
      message: Record<string, string>;
    }[];
    const lastSeen = entries.length === 0 ? 0 : Number.parseInt(entries.at(-1)!.id, 10);
    let successes = 0;
    for (const { message } of entries) {
      if (
        message.f.includes("\nevent: task_complete\n") && message.f.includes('"status":"success"')
      ) {
        successes++;
      }
    }
    const totalTasks = meta.dag ? (JSON.parse(meta.dag) as { tasks: unknown[] }).tasks.length : 0;
    const now = new Date();
    const error = `instance ${meta.instance} was lost (no sign of life for ${
      LEASE_TTL_MS / 1000
    } s)`;
    // Without their `id:` lines: the script numbers them after the last event.
    const errorFrame = encodeSSEEvent(errorEvent(error, { code: "instance_lost" }));
    const completeEvent: SSEEvent = {
      type: "execution_complete",
      data: {
        totalTasks,
        successCount: successes,
        errorCount: totalTasks - successes,
        totalExecutionTimeMs: Math.max(0, now.getTime() - Date.parse(meta.startedAt)),
        speedup: 1,
        timestamp: now.toISOString(),
      },
    };
    const completeFrame = encodeSSEEvent(completeEvent);
    const reaped = await this.#commands.eval(REAP, {
      keys: [metaKey(id), eventsKey(id), RUNNING, leaseKey(meta.instance)],
      arguments: [
        String(lastSeen),
        errorFrame,
        completeFrame,
        error,
        now.toISOString(),
        String(Math.max(1, this.#settings.runTtlSeconds)),
        id,
      ],
    });
    if (reaped === 1) {
      this.#settings.log({
        msg: "store",
        runId: id,
        lostInstance: meta.instance,
        status: "failed",
      });
    }
  }

  /** Sends a command without waiting for it; a failure is logged, not thrown. */
  #send(command: Promise<unknown>, bytes: number): void {
    this.#inFlightBytes += bytes;
    command.then(
      () => this.#inFlightBytes -= bytes,
      (error) => {
        this.#inFlightBytes -= bytes;
        this.#problem(error);
      },
    );
  }

  /** Logs a Redis problem, once until a different one comes. */
  #problem(error: unknown): void {
    const message = describeError(error);
    if (message === this.#lastError || this.#closed) return;
    this.#lastError = message;
    this.#settings.log({ msg: "store", store: "redis", error: message });
  }

  /**
   * Puts a validated DAG on the shared queue as a new run, visible on every
   * instance (status `queued`) once this resolves; or says the queue is full.
   */
  async enqueue(tasks: readonly Task[]): Promise<{ runId: string } | "full"> {
    if (await this.#commands.xLen(QUEUE) >= this.#settings.maxQueuedRuns) return "full";
    const runId = crypto.randomUUID();
    const createdAt = new Date().toISOString();
    await Promise.all([
      this.#commands.hSet(metaKey(runId), {
        runId,
        status: "queued",
        createdAt,
        dag: JSON.stringify({ tasks }),
      }),
      this.#commands.zAdd(RUNS, { score: Date.parse(createdAt), value: runId }),
    ]);
    await this.#commands.xAdd(QUEUE, "*", { runId });
    return { runId };
  }

  /**
   * Takes runs from the shared queue while `hasRoom()` (a free slot here),
   * and starts each with `start`, which answers `started`, `busy` (put it
   * back) or a reason it cannot run here (it then fails). Runs until
   * {@linkcode close}; messages an instance took and never acknowledged
   * (it died) are taken over after 10 s.
   */
  consume(hasRoom: () => boolean, start: StartQueued): void {
    this.#consuming = this.#consume(hasRoom, start);
  }

  async #consume(hasRoom: () => boolean, start: StartQueued): Promise<void> {
    const reader = this.#commands.duplicate();
    reader.on("error", (error: unknown) => this.#problem(error));
    this.#queueReader = reader;
    let grouped = false;
    let lastClaim = 0;
    while (!this.#closed) {
      try {
        if (!reader.isOpen) await reader.connect();
        if (!reader.isReady || !hasRoom()) {
          await pause(50);
          continue;
        }
        if (!grouped) {
          await reader.xGroupCreate(QUEUE, GROUP, "0", { MKSTREAM: true }).catch(
            (error: unknown) => {
              if (!describeError(error).includes("BUSYGROUP")) throw error;
            },
          );
          grouped = true;
        }
        let messages: QueueMessage[] = [];
        if (Date.now() - lastClaim >= CLAIM_EVERY_MS) {
          lastClaim = Date.now();
          const claimed = await reader.xAutoClaim(
            QUEUE,
            GROUP,
            this.#settings.instance,
            CLAIM_IDLE_MS,
            "0-0",
            { COUNT: 1 },
          ) as { messages: (QueueMessage | null)[] };
          messages = claimed.messages.filter((m): m is QueueMessage => m !== null);
        }
        if (messages.length === 0) {
          const reply = await reader.xReadGroup(
            GROUP,
            this.#settings.instance,
            { key: QUEUE, id: ">" },
            { COUNT: 1, BLOCK: FOLLOW_BLOCK_MS },
          ) as { messages: QueueMessage[] }[] | null;
          messages = reply?.[0]?.messages ?? [];
        }
        for (const { id, message } of messages) await this.#take(id, message.runId, start);
      } catch (error) {
        if (this.#closed) return;
        this.#problem(error);
        grouped = false;
        await pause(500);
      }
    }
  }

  /** Takes run `runId` (queue message `messageId`) if it still waits, and starts it here. */
  async #take(messageId: string, runId: string, start: StartQueued): Promise<void> {
    const taken = await this.#commands.eval(TAKE, {
      keys: [metaKey(runId), RUNNING, QUEUE],
      arguments: [
        this.#settings.instance,
        new Date().toISOString(),
        runId,
        messageId,
        GROUP,
        this.#token,
      ],
    }) as (string | null)[] | null;
    if (!taken || taken[0] === null) return; // cancelled, or already taken
    const outcome = start(runId, JSON.parse(taken[0]), taken[1] ?? new Date().toISOString());
    if (outcome === "started") {
      // A DELETE that came while the take was on its way.
      if (this.#recentCancels.delete(runId)) this.#onCancel?.(runId);
      return;
    }
    if (outcome === "busy") {
      // Back to the queue, for any instance.
      await this.#commands.hSet(metaKey(runId), { status: "queued" });
      await this.#commands.hDel(metaKey(runId), ["instance", "startedAt"]);
      await this.#commands.sRem(RUNNING, runId);
      await this.#commands.xAdd(QUEUE, "*", { runId });
      await pause(100); // no room here after all: let the others take it
      return;
    }
    await this.#commands.eval(FINISH, {
      keys: [metaKey(runId), eventsKey(runId), RUNNING],
      arguments: [
        String(Math.max(1, this.#settings.runTtlSeconds)),
        runId,
        "status",
        "failed",
        "error",
        outcome.error,
        "finishedAt",
        new Date().toISOString(),
        "lastSeq",
        "0",
      ],
    });
  }

  /** Used by followed runs to cancel through the channel. */
  cancelQuietly(id: string): void {
    this.cancel(id).catch((error) => this.#problem(error));
  }
}

/** A run followed from Redis. */
class RemoteRun implements FollowedRun {
  readonly id: string;
  readonly log: RunLog;
  readonly #store: RedisRunStore;
  #active = true;
  onStop: (() => void) | undefined;

  constructor(id: string, log: RunLog, store: RedisRunStore) {
    this.id = id;
    this.log = log;
    this.#store = store;
  }

  get active(): boolean {
    return this.#active;
  }

  /** No more events come: the log ends. */
  stop(): void {
    if (!this.#active) return;
    this.#active = false;
    this.log.end();
    this.onStop?.();
  }

  #watchers = 0;
  #idle: ReturnType<typeof setTimeout> | undefined;

  watch(): void {
    this.#watchers++;
    clearTimeout(this.#idle);
    this.#idle = undefined;
  }

  unwatch(): void {
    if (--this.#watchers > 0) return;
    // Nobody watches: after a grace (a reconnecting client), the follower
    // stops and the copy's bytes go back to the budget.
    this.#idle = setTimeout(() => {
      if (this.#watchers > 0) return;
      this.stop();
      this.log.discard();
    }, IDLE_FOLLOWER_MS);
  }

  cancel(_reason: string): void {
    this.#store.cancelQuietly(this.id);
  }
}

/** A run's hash as the routes show it. */
function viewOf(meta: Record<string, string>, withDag: boolean): RunView {
  const view: RunView = {
    runId: meta.runId,
    status: meta.status as RunStatus,
    createdAt: meta.createdAt,
    startedAt: meta.startedAt,
  };
  if (meta.finishedAt) view.finishedAt = meta.finishedAt;
  if (meta.instance) view.instance = meta.instance;
  if (meta.result) view.result = JSON.parse(meta.result) as DAGExecutionResult;
  if (meta.error) view.error = meta.error;
  if (withDag && meta.dag) view.dag = JSON.parse(meta.dag) as { tasks: Task[] };
  return view;
}

/** Resolves after `ms` milliseconds. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
