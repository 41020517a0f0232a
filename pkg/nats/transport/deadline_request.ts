/**
 * Requests on the muxed inbox without a timer each. nats-core 3.4 arms a Node-compat `setTimeout` per request
 * (every JetStream publish, KV write and get), wraps it in a promise, races it against the answer and clears it
 * when the answer comes: in Deno 2.9 each is a Node `Timeout` object and a runtime timer. Under W2 of the peer
 * benchmark that was ~5% of the engine's CPU (V8 profile, 2026-12-03: `setTimeout` 3.2%, `clearTimeout` 0.5%,
 * plus their garbage). Here all requests in flight share one timer, armed for the earliest deadline: a request
 * is an entry in a min-heap by deadline, an answer marks it done, and the timer's turn rejects the expired ones
 * with nats-core's `TimeoutError` and drops the done ones. The timer is cleared whenever no request is pending,
 * so an idle connection holds none (as before, when each answer cleared its own).
 *
 * An answer resolves the request and builds no `Error` (nats-core's `RequestOne` rejected every answered
 * request's settled promise with a fresh `RequestError("cancelled")`, another 5% of the engine's CPU). Errors
 * come out as nats-core's without async traces (all our connections set `noAsyncTraces`, connection.ts): a
 * time-out is a `TimeoutError`, anything else a `RequestError` with the cause. `noMux` requests stay stock.
 *
 * @module
 */
import type { Msg, Payload, RequestOptions } from "@nats-io/nats-core";
import { errors, NatsConnectionImpl, TimeoutError } from "@nats-io/nats-core/internal";
import type { MuxSubscription } from "@nats-io/nats-core/internal";

/** A muxed request: the `Request` nats-core's `MuxSubscription` dispatches to, with a deadline instead of a timer. */
class DeadlineRequest {
  readonly token = (nextToken++).toString(36);
  received = 0;
  done = false;
  /**
   * The caller's promise's settlers, dropped once it is settled: an answered request may stay in the heap
   * until its deadline, and must not keep its reply (and the socket read buffer the reply is a view of).
   */
  private settle: { resolve: (msg: Msg) => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly mux: MuxSubscription,
    readonly requestSubject: string,
    readonly deadline: number,
  ) {}

  /** The caller's promise; called once, right after construction. */
  start(): Promise<Msg> {
    return new Promise<Msg>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  /** Called by the mux with the answer, or an error (no responders, permissions, connection closed). */
  resolver(err: Error | null, msg: Msg): void {
    const settle = this.finish();
    if (!settle) return;
    if (err) {
      // As nats-core's RequestOne without async traces: any error but a time-out comes wrapped.
      settle.reject(err instanceof TimeoutError ? err : new errors.RequestError(err.message, { cause: err }));
    } else {
      settle.resolve(msg);
    }
  }

  cancel(err?: Error): void {
    this.finish()?.reject(err ?? new errors.RequestError("cancelled"));
  }

  expire(): void {
    this.finish()?.reject(new TimeoutError());
  }

  /** Leaves the mux and the pending count once; undefined when it was finished already. */
  private finish(): { resolve: (msg: Msg) => void; reject: (err: Error) => void } | undefined {
    if (this.done) return undefined;
    this.done = true;
    const settle = this.settle;
    this.settle = undefined;
    this.mux.cancel(this);
    settled();
    return settle;
  }
}

let nextToken = 0;
/**
 * Requests in flight and answered ones whose deadline has not come yet, a binary min-heap by deadline. An
 * answered entry is dropped when it reaches the top, or by a compaction once answered entries outnumber the
 * pending ones (settled()): under steady load some request is always pending, and without it the heap held
 * every request of the last time-out window (8,500 at W2's 200 workflows in flight).
 */
let heap: DeadlineRequest[] = [];
let pending = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
let timerAt = Infinity;

function push(r: DeadlineRequest): void {
  pending++;
  let i = heap.push(r) - 1;
  while (i > 0) {
    const up = (i - 1) >> 1;
    if (heap[up].deadline <= r.deadline) break;
    heap[i] = heap[up];
    i = up;
  }
  heap[i] = r;
  if (r.deadline < timerAt) arm(r.deadline);
}

function pop(): void {
  const last = heap.pop()!;
  if (heap.length === 0) return;
  let i = 0;
  const n = heap.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const c = l + 1 < n && heap[l + 1].deadline < heap[l].deadline ? l + 1 : l;
    if (heap[c].deadline >= last.deadline) break;
    heap[i] = heap[c];
    i = c;
  }
  heap[i] = last;
}

function arm(at: number): void {
  if (timer !== undefined) clearTimeout(timer);
  timerAt = at;
  timer = setTimeout(expireDue, Math.max(0, at - performance.now()));
}

function disarm(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  timerAt = Infinity;
}

/** Answered entries the heap may hold beyond twice the pending ones before it is compacted. */
const COMPACT_SLACK = 64;

/**
 * One request fewer pending; with none left, the heap (answered entries only) and the timer go. With more
 * than half of a large heap answered, the heap is rebuilt from its pending entries (a sorted array is a
 * min-heap): each rebuild follows at least `pending + COMPACT_SLACK` answers, so its cost per answer is
 * constant on average. The timer stays armed: at worst for an answered entry's deadline, where its turn drops
 * it and arms for the next.
 */
function settled(): void {
  if (--pending === 0) {
    heap = [];
    disarm();
  } else if (heap.length > 2 * pending + COMPACT_SLACK) {
    heap = heap.filter((r) => !r.done).sort((a, b) => a.deadline - b.deadline);
  }
}

function expireDue(): void {
  timer = undefined;
  timerAt = Infinity;
  const now = performance.now();
  while (heap.length > 0 && (heap[0].done || heap[0].deadline <= now)) {
    const r = heap[0];
    pop();
    // expire() may empty the heap (settled), which pop() above already left consistent.
    if (!r.done) r.expire();
  }
  if (pending > 0 && heap.length > 0 && timer === undefined) arm(heap[0].deadline);
}

const stockRequest = NatsConnectionImpl.prototype.request;

/** Applied once per process, before the first connection (connect.ts imports this module). */
NatsConnectionImpl.prototype.request = function (
  this: NatsConnectionImpl,
  subject: string,
  data?: Payload,
  opts: RequestOptions = { timeout: 1000, noMux: false },
): Promise<Msg> {
  const timeout = opts.timeout || 1000;
  if (opts.noMux || opts.reply || timeout < 1) {
    return stockRequest.call(this, subject, data, opts);
  }
  try {
    this._check(subject, true, true);
  } catch (err) {
    return Promise.reject(err);
  }
  const r = new DeadlineRequest(this.protocol.muxSubscriptions, subject, performance.now() + timeout);
  const promise = r.start();
  this.protocol.request(r);
  push(r);
  const { headers, traceDestination, traceOnly } = opts;
  try {
    this.publish(subject, data, {
      reply: `${this.protocol.muxSubscriptions.baseInbox}${r.token}`,
      headers,
      traceDestination,
      traceOnly,
    });
  } catch (err) {
    r.cancel(err as Error);
  }
  return promise;
};

/** For the tests: requests pending, whether the shared timer is armed, and the entries the heap holds. */
export function deadlineRequestsForTest(): { pending: number; armed: boolean; held: number } {
  return { pending, armed: timer !== undefined, held: heap.length };
}
