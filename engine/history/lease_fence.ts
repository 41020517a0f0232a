/**
 * The fence against a paused engine's late writes (a zombie). Every event a driver records carries the
 * revision at which its engine took the execution's lease (`metadata.leaseRevision`); KV revisions are
 * stream sequences, so a later holder always took it at a higher revision. An engine that takes a lease
 * appends `workflow.taken_over` with its revision (awaited) before it reads the history. An event stored
 * after a take-over of a higher revision than its own was written by an earlier holder that lost the lease
 * (bytes handed to its client before its process was paused, sent when it ran again): the replay and the
 * state fold ignore it. An engine that takes back a lease it parked, no one having written it since
 * (Leases.resumed), appends none and writes at the parked holding's revision: no other holder came between.
 *
 * A holder's own events also raise the fence: one stored before an event with a lower revision shows that
 * its holder took over (and appended its take-over) before that event was stored. So a document that sees
 * only some of an execution's events (a task's document) fences with what it saw.
 */
import type { StoredEvent } from "./read_history.ts";

/** The subject type (`<component>.<type>`) of a take-over. */
export const TAKEN_OVER = "workflow.taken_over";

/** The highest lease revision stored so far for an execution, and the first stream sequence it was seen at. */
export interface LeaseFence {
  revision: number;
  seq: number;
}

/** The lease revision an event was written under; 0 for one written without a lease (a start, a command). */
export function leaseRevisionOf(event: Pick<StoredEvent, "message">): number {
  const metadata = (event.message as { metadata?: { leaseRevision?: bigint } }).metadata;
  return Number(metadata?.leaseRevision ?? 0n);
}

/** True when `event` is a zombie write: stored after an event of a later lease holder that `fence` records. */
export function isFenced(
  fence: LeaseFence | undefined,
  event: Pick<StoredEvent, "message" | "seq">,
): boolean {
  const revision = leaseRevisionOf(event);
  return fence !== undefined && revision > 0 && revision < fence.revision && event.seq > fence.seq;
}

/**
 * The fence once `event` (not fenced) is applied. Events may be applied out of stream order (the state
 * fold): a revision seen again at an earlier sequence moves the fence back to it.
 */
export function raiseFence(fence: LeaseFence | undefined, event: Pick<StoredEvent, "message" | "seq">) {
  const revision = leaseRevisionOf(event);
  if (revision === 0 || (fence && revision < fence.revision)) return fence;
  if (fence && revision === fence.revision) {
    return event.seq < fence.seq ? { revision, seq: event.seq } : fence;
  }
  return { revision, seq: event.seq };
}

/**
 * The events of `events` (in stream order; one execution or a whole run) that no take-over fences out: what
 * the executions' histories are. Each execution has its own fence.
 *
 * @example
 * ```ts
 * import { withoutZombieWrites } from "./lease_fence.ts";
 * withoutZombieWrites([]); // []
 * ```
 */
export function withoutZombieWrites<E extends Pick<StoredEvent, "message" | "seq">>(events: E[]): E[] {
  const fences = new Map<string, LeaseFence | undefined>();
  return events.filter((event) => {
    const execId = (event.message as { workflow?: { execId?: string } }).workflow?.execId ?? "";
    const fence = fences.get(execId);
    if (isFenced(fence, event)) return false;
    fences.set(execId, raiseFence(fence, event));
    return true;
  });
}
