/**
 * Shrinks a failing case: drops tasks, replaces containers by a child, drops optional fields and planned
 * actions, keeping each change while the case still loads, still ends in the reference, and still differs
 * on the engine. Candidates run a few at a time on one stack, renamed so that their ids do not meet.
 */
import { ConfigError } from "../../../engine/domain/project/mod.ts";
import { expectedOf, unusable } from "./cases.ts";
import { checkBatch, type Checked } from "./check.ts";
import type { Case } from "./generator.ts";

const OPTIONAL = [
  "retry",
  "outputs",
  "if",
  "timeout",
  "on_error",
  "on_success",
  "final",
  "filter",
  "mode",
  "max_workers",
  "batch",
  "condition",
  "strategy",
  "default",
];

export interface ShrinkOptions {
  crashes: boolean;
  /** Engines sharing the nats-server, as in the run that found the case. */
  engines?: number;
  freezes?: boolean;
  log(line: string): void;
  /** Engine runs at most; each is a few seconds. */
  maxRuns?: number;
}

export async function shrink(failed: Checked, options: ShrinkOptions): Promise<Checked> {
  let best = failed;
  let runs = 0;
  let renames = 0;
  const maxRuns = options.maxRuns ?? 80;
  let progress = true;
  while (progress && runs < maxRuns) {
    progress = false;
    const candidates = [...candidatesOf(best.case)];
    for (let i = 0; i < candidates.length && runs < maxRuns && !progress;) {
      const batch = [];
      while (batch.length < 4 && i < candidates.length) {
        const c = renamed(candidates[i++], `c${failed.case.seed}v${++renames}`);
        try {
          const expected = await expectedOf(c);
          if (!unusable(c, expected, options.crashes)) batch.push({ case: c, expected });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
        }
      }
      if (!batch.length) continue;
      runs += batch.length;
      const { results } = await checkBatch(batch, {
        crashes: options.crashes,
        engines: options.engines,
        concurrency: 4,
      });
      const smaller = results.find((r) => r.diffs.length);
      if (smaller) {
        best = smaller;
        progress = true;
        options.log(`shrunk to ${size(best.case)} tasks: ${best.diffs[0]}`);
      }
    }
  }
  return best;
}

function size(c: Case): number {
  return (JSON.stringify(c.workflows).match(/"id":/g) ?? []).length;
}

/** `c` with its workflow and signal ids moved to `id`, so that several candidates can share a project. */
function renamed(c: Case, id: string): Case {
  const re = new RegExp(`\\b${c.id}(?=\\b|-)`, "g");
  const json = JSON.stringify({ workflows: c.workflows, plan: c.plan }).replace(re, id);
  const { workflows, plan } = JSON.parse(json);
  return { ...c, id, workflows, plan };
}

type Task = Record<string, unknown> & { id: string };

/** Every one-step simplification of `c`. */
function* candidatesOf(c: Case): Generator<Case> {
  // Each list of tasks, addressed by a path that works on a deep copy.
  const paths: Array<Array<string | number>> = [];
  const visit = (value: unknown, path: Array<string | number>) => {
    if (Array.isArray(value)) {
      if (path.at(-1) === "tasks") paths.push(path);
      value.forEach((v, i) => visit(v, [...path, i]));
    } else if (value && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
    }
  };
  visit(c.workflows, []);
  for (const path of paths) {
    const list = at(c.workflows, path) as Task[];
    for (let i = 0; i < list.length; i++) {
      if (list.length > 1) {
        yield edit(c, (w) => (at(w, path) as Task[]).splice(i, 1));
      }
      const task = list[i];
      for (const childPath of [["tasks", 0], ["tasks", 1], ["task"]]) {
        if (at(task, childPath) === undefined) continue;
        yield edit(c, (w) => {
          const tasks = at(w, path) as Task[];
          const child = at(tasks[i], childPath) as Task;
          tasks[i] = { ...child, id: tasks[i].id };
        });
      }
      for (const field of OPTIONAL) {
        if (task[field] !== undefined) yield edit(c, (w) => delete (at(w, path) as Task[])[i][field]);
      }
    }
  }
  for (const [id, actions] of Object.entries(c.plan)) {
    for (let i = 0; i < actions.length; i++) {
      const plan = structuredClone(c.plan);
      plan[id].splice(i, 1);
      if (!plan[id].length) delete plan[id];
      yield { ...c, workflows: structuredClone(c.workflows), plan };
    }
  }
  if (c.workflows[c.id].outputs) yield edit(c, (w) => delete w[c.id].outputs);
  const text = JSON.stringify(c.workflows);
  for (const id of Object.keys(c.workflows)) {
    if (id !== c.id && !text.includes(`workflow(id=${id})`)) yield edit(c, (w) => delete w[id]);
  }
}

function edit(c: Case, change: (workflows: Case["workflows"]) => void): Case {
  const workflows = structuredClone(c.workflows);
  change(workflows);
  return { ...c, workflows, plan: structuredClone(c.plan) };
}

function at(root: unknown, path: Array<string | number>): unknown {
  let value = root as Record<string | number, unknown> | undefined;
  for (const key of path) value = value?.[key] as Record<string | number, unknown> | undefined;
  return value;
}
