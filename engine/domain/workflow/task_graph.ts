/**
 * The control-flow graph of a workflow: which step may run after which (CONFIG.md, "Control flow").
 *
 * Nodes are the workflow's steps: the tasks of its `tasks:` list and the tasks declared inline as router
 * routes. Children of parallel, collection and composite tasks run inside their parent and are not nodes.
 *
 * @module
 */

import type { PathSegment } from "../diagnostics.ts";
import type { TaskConfig } from "../task/schema.ts";
import type { TaskSite } from "../task/walk.ts";

/**
 * An edge; `path` is the field that creates it, and `list` marks the implicit move to the next task of the
 * list (which has no field of its own: its `path` is the source task's).
 */
export interface FlowEdge {
  from: string;
  to: string;
  path: PathSegment[];
  list: boolean;
}

export interface TaskGraph {
  /** The first task of the list, where every execution starts. */
  entry: string | undefined;
  /** Step ids in file order. */
  steps: string[];
  successors: Map<string, FlowEdge[]>;
}

/** Builds the graph of a workflow's task sites; edges to unknown tasks or to children are left out. */
export function buildTaskGraph(sites: readonly TaskSite[]): TaskGraph {
  const stepSites = sites.filter((s) => s.role !== "child");
  const stepIds = new Set(stepSites.map((s) => s.task.id));
  const flow = stepSites.filter((s) => s.role === "flow");
  const successors = new Map<string, FlowEdge[]>();
  for (const site of stepSites) {
    const listNext = site.role === "flow" ? flow[flow.indexOf(site) + 1]?.task.id : undefined;
    const edges = stepEdges(site, listNext).filter((e) => stepIds.has(e.to));
    // Two fields may name the same target (`on_success` and `on_error`); one edge is enough.
    successors.set(site.task.id, edges.filter((e, i) => edges.findIndex((o) => o.to === e.to) === i));
  }
  return { entry: flow[0]?.task.id, steps: stepSites.map((s) => s.task.id), successors };
}

function stepEdges(site: TaskSite, listNext: string | undefined): FlowEdge[] {
  const { task, path } = site;
  const edge = (to: string, field: PathSegment[], list = false): FlowEdge => ({
    from: task.id,
    to,
    path: [...path, ...field],
    list,
  });
  const out: FlowEdge[] = [];
  if (task.final) {
    // Success ends the workflow; only the failure edges below remain.
  } else if (task.type === "router") {
    // The route replaces the list-order next.
    for (const [value, target] of Object.entries(task.routes)) {
      out.push(edge(targetId(target), ["routes", value]));
    }
    if (task.default !== undefined) out.push(edge(targetId(task.default), ["default"]));
  } else if (task.on_success) {
    out.push(edge(task.on_success.next, ["on_success", "next"]));
  } else if (listNext) {
    out.push(edge(listNext, [], true));
  }
  if (task.on_error) out.push(edge(task.on_error.next, ["on_error", "next"]));
  if (task.type === "wait" && task.on_timeout) out.push(edge(task.on_timeout, ["on_timeout"]));
  return out;
}

function targetId(target: string | TaskConfig): string {
  return typeof target === "string" ? target : target.id;
}

/** Steps reachable from the entry, the entry included. */
export function reachableSteps(graph: TaskGraph): Set<string> {
  const seen = new Set<string>();
  const stack = graph.entry === undefined ? [] : [graph.entry];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of graph.successors.get(id) ?? []) stack.push(e.to);
  }
  return seen;
}

/**
 * Every cycle found by a depth-first search, once each, as the list of its edges. The search keeps its own
 * stack: recursing once per step overflowed the call stack on a workflow of some 8,000 tasks in a row, and
 * `compozy validate` ended with "internal error: Maximum call stack size exceeded".
 */
export function findCycles(graph: TaskGraph): FlowEdge[][] {
  const state = new Map<string, "open" | "done">();
  const path: FlowEdge[] = [];
  const cycles: FlowEdge[][] = [];
  const seen = new Set<string>();
  for (const root of graph.steps) {
    if (state.has(root)) continue;
    state.set(root, "open");
    // One frame per open step: its edges and the next one to follow.
    const frames = [{ id: root, edges: graph.successors.get(root) ?? [], next: 0 }];
    while (frames.length > 0) {
      const frame = frames[frames.length - 1];
      if (frame.next === frame.edges.length) {
        state.set(frame.id, "done");
        frames.pop();
        path.pop();
        continue;
      }
      const e = frame.edges[frame.next++];
      if (state.get(e.to) === "open") {
        const start = path.findIndex((s) => s.from === e.to);
        const cycle = [...(start < 0 ? [] : path.slice(start)), e];
        const key = cycle.map((c) => c.from).sort().join("\u0000");
        if (!seen.has(key)) cycles.push(cycle);
        seen.add(key);
      } else if (!state.has(e.to)) {
        path.push(e);
        state.set(e.to, "open");
        frames.push({ id: e.to, edges: graph.successors.get(e.to) ?? [], next: 0 });
      }
    }
  }
  return cycles;
}

/** Which steps may have run before which, in some execution. */
export interface StepAncestry {
  /** Whether `maybe` is on some path to `step` (`step` itself when a loop leads back to it). */
  has(step: string, maybe: string): boolean;
}

/**
 * For each step, the steps that may have run before it in some execution: one bit per step, so that a long
 * workflow costs n²/8 bytes. A set of ids per step took n² entries: 8,000 tasks in a row held 1.1 GB during
 * `compozy validate`, and 20,000 (a 1.3 MB file) more than the heap.
 */
export function stepAncestors(graph: TaskGraph): StepAncestry {
  const index = new Map(graph.steps.map((id, i) => [id, i]));
  const words = Math.ceil(graph.steps.length / 32);
  const bits = graph.steps.map(() => new Uint32Array(words));
  const predecessors: number[][] = graph.steps.map(() => []);
  const successors: number[][] = graph.steps.map(() => []);
  for (const [from, edges] of graph.successors) {
    for (const e of edges) {
      const [f, t] = [index.get(from), index.get(e.to)];
      if (f === undefined || t === undefined) continue;
      predecessors[t].push(f);
      successors[f].push(t);
    }
  }
  // Until nothing changes: a step's ancestors are its predecessors and theirs. File order first, which is
  // mostly the order of the flow; a loop puts its steps back in the queue until they settle.
  const queue = graph.steps.map((_, i) => i);
  const queued = new Uint8Array(graph.steps.length).fill(1);
  const next = new Uint32Array(words);
  for (let head = 0; head < queue.length; head++) {
    const step = queue[head];
    queued[step] = 0;
    next.fill(0);
    for (const p of predecessors[step]) {
      const from = bits[p];
      for (let w = 0; w < words; w++) next[w] |= from[w];
      next[p >>> 5] |= 1 << (p & 31);
    }
    const own = bits[step];
    let changed = false;
    for (let w = 0; w < words && !changed; w++) changed = next[w] !== own[w];
    if (!changed) continue;
    own.set(next);
    for (const s of successors[step]) {
      if (queued[s]) continue;
      queued[s] = 1;
      queue.push(s);
    }
  }
  return {
    has(step, maybe) {
      const [s, m] = [index.get(step), index.get(maybe)];
      if (s === undefined || m === undefined) return false;
      return (bits[s][m >>> 5] & (1 << (m & 31))) !== 0;
    },
  };
}
