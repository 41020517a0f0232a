import assert from "node:assert/strict";
import type { TaskConfig } from "../task/schema.ts";
import { collectTaskSites } from "../task/walk.ts";
import { buildTaskGraph, findCycles, reachableSteps, stepAncestors } from "./task_graph.ts";

const sleep = (id: string, extra: Record<string, unknown> = {}) =>
  ({ id, type: "sleep", duration: "1s", ...extra }) as TaskConfig;

function graphOf(tasks: TaskConfig[]) {
  return buildTaskGraph(collectTaskSites(tasks));
}

function edges(tasks: TaskConfig[]): string[] {
  return [...graphOf(tasks).successors].flatMap(([from, es]) => es.map((e) => `${from}->${e.to}`));
}

Deno.test("buildTaskGraph follows CONFIG.md's control flow", async (t) => {
  await t.step("list order, final, on_success and on_error", () => {
    assert.deepEqual(
      edges([
        sleep("a"),
        sleep("b", { final: true, on_error: { next: "d" } }),
        sleep("c"),
        sleep("d", { on_success: { next: "c" } }),
      ]),
      ["a->b", "b->d", "c->d", "d->c"],
    );
  });

  await t.step(
    "a router's routes replace the list order; inline routes are steps that end the workflow",
    () => {
      const router = {
        id: "r",
        type: "router",
        condition: "x",
        routes: { a: "b", c: sleep("inline") },
        default: "b",
      } as TaskConfig;
      assert.deepEqual(edges([router, sleep("b")]), ["r->b", "r->inline"]);
    },
  );

  await t.step("a wait's on_timeout is an edge; children are not steps", () => {
    const wait = { id: "w", type: "wait", signal: "s", on_timeout: "late" } as TaskConfig;
    const parallel = { id: "p", type: "parallel", tasks: [sleep("c1")] } as TaskConfig;
    const graph = graphOf([wait, parallel, sleep("late")]);
    assert.deepEqual(graph.steps, ["w", "p", "late"]);
    assert.deepEqual(graph.successors.get("w")!.map((e) => e.to), ["p", "late"]);
  });
});

Deno.test("findCycles, reachableSteps, stepAncestors", async (t) => {
  const tasks = [sleep("a"), sleep("b"), sleep("c", { on_success: { next: "a" } }), sleep("d")];
  const graph = graphOf(tasks);

  await t.step("a loop back up the list is one cycle", () => {
    const cycles = findCycles(graph);
    assert.equal(cycles.length, 1);
    assert.deepEqual(cycles[0].map((e) => e.from), ["a", "b", "c"]);
  });

  await t.step("steps no path reaches", () => {
    assert.deepEqual([...reachableSteps(graph)].sort(), ["a", "b", "c"]);
  });

  await t.step("ancestors are every step on some path before", () => {
    const ancestors = stepAncestors(
      graphOf([sleep("a", { on_error: { next: "c" } }), sleep("b", { final: true }), sleep("c")]),
    );
    const before = (step: string) => ["a", "b", "c"].filter((id) => ancestors.has(step, id));
    assert.deepEqual(before("c"), ["a"]);
    assert.deepEqual(before("b"), ["a"]);
    assert.deepEqual(before("a"), []);
  });

  await t.step("a step on a loop is its own ancestor, with every step of the loop", () => {
    const ancestors = stepAncestors(graph);
    const before = (step: string) => ["a", "b", "c", "d"].filter((id) => ancestors.has(step, id));
    assert.deepEqual(before("a"), ["a", "b", "c"]);
    assert.deepEqual(before("c"), ["a", "b", "c"]);
    assert.deepEqual(before("d"), []);
  });
});

Deno.test("findCycles follows a long chain without recursing per step", () => {
  // 20,000 steps in a row, the last going back to the first: a recursion per step overflowed the call stack at
  // some 8,000 (`compozy validate` ended with "internal error: Maximum call stack size exceeded").
  const count = 20_000;
  const tasks = Array.from({ length: count }, (_, i) => sleep(`t${i}`));
  tasks[count - 1] = sleep(`t${count - 1}`, { on_success: { next: "t0" } });
  const cycles = findCycles(graphOf(tasks));
  assert.equal(cycles.length, 1);
  assert.equal(cycles[0].length, count);
  assert.deepEqual([cycles[0][0].from, cycles[0][count - 1].from, cycles[0][count - 1].to], [
    "t0",
    `t${count - 1}`,
    "t0",
  ]);
});

Deno.test("stepAncestors of 20,000 steps in a row fits in bits", () => {
  // A set of ids per step held n² entries: 8,000 tasks in a row took 1.1 GB in `compozy validate`, 20,000 more
  // than the heap. One bit per pair is 50 MB here.
  const count = 20_000;
  const ancestors = stepAncestors(graphOf(Array.from({ length: count }, (_, i) => sleep(`t${i}`))));
  assert.ok(ancestors.has(`t${count - 1}`, "t0"));
  assert.ok(ancestors.has(`t${count - 1}`, `t${count - 2}`));
  assert.ok(!ancestors.has("t0", `t${count - 1}`));
  assert.ok(!ancestors.has("t5", "t5"));
});
