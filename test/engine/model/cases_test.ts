/** Which reference results crash runs leave out (cases.ts `unusable`), on hand-made results. */
import assert from "node:assert/strict";
import type { ReferenceResult, ToolCallRecord } from "../reference/types.ts";
import { unusable } from "./cases.ts";
import { differences } from "./compare.ts";
import { decidedAfterNap, lateControl, timersReorderedByOutage, unsentControl } from "./check.ts";
import { endOf, type Observed } from "./engine_run.ts";
import type { ExecutionState } from "../../../engine/mod.ts";
import type { Case } from "./generator.ts";

const plainCase: Case = {
  seed: 1,
  id: "main",
  workflows: { main: { id: "main", tasks: [] } },
  input: {},
  plan: {},
};

function result(calls: ToolCallRecord[], decisions: ReferenceResult["decisions"] = []): ReferenceResult {
  return {
    status: "SUCCESS",
    output: null,
    error: null,
    tasks: {},
    calls,
    checkpoints: [],
    waitStarts: {},
    bounds: [],
    decisions,
    parallelFailures: [],
    children: [],
    elapsedMs: 100,
  };
}

const flaky = (k: string, attempt: number, n = 1) => ({ tool: "t", input: { k, do: "flaky", n }, attempt });

Deno.test("crash runs leave out a flaky tool that fails for good, and a race decided while others ran", () => {
  // Attempt 1 fails and nothing follows (no retry): a crash re-run as attempt 2 would succeed (seed 30329).
  assert.match(unusable(plainCase, result([flaky("a", 1)]), true) ?? "", /flaky a fails on its last/);
  // Retried to success: the same whatever the kills.
  assert.equal(unusable(plainCase, result([flaky("a", 1), flaky("a", 2)]), true), undefined);
  // A retried container calls it again from attempt 1, and that run fails for good.
  assert.match(
    unusable(plainCase, result([flaky("a", 1), flaky("a", 2), flaky("a", 1)]), true) ?? "",
    /flaky a/,
  );
  // Plain runs keep them all.
  assert.equal(unusable(plainCase, result([flaky("a", 1)]), false), undefined);

  const race = [{ key: "fan", branch: "quick", atMs: 10, stopped: 1 }];
  assert.match(unusable(plainCase, result([], race), true) ?? "", /fan was decided by quick/);
  assert.equal(unusable(plainCase, result([], [{ ...race[0], stopped: 0 }]), true), undefined);
  assert.equal(unusable(plainCase, result([], race), false), undefined);
});

Deno.test("the check compares each task's sub-workflows and how they ended (outside review D1, D2)", () => {
  const expected = {
    ...result([]),
    children: [
      { key: "p/x", workflow: "child", status: "CANCELED" as const },
      { key: "p/y", workflow: "child", status: "SUCCESS" as const },
    ],
  };
  const observed = (y: string, late = 0): Observed => ({
    execId: "e",
    state: { status: "SUCCESS", output: null, error: null, tasks: [] } as unknown as Observed["state"],
    calls: [],
    late: [],
    problems: late > 1 ? [`sub-workflow of p/x: ${late} tool calls started after it was canceled`] : [],
    unsent: [],
    controlLagMs: [],
    timedOut: [],
    children: [
      { key: "p/x", workflow: "child", status: "CANCELED", execId: "c1" },
      { key: "p/y", workflow: "child", status: y, execId: "c2" },
    ],
    history: () => Promise.resolve([]),
  });
  assert.deepEqual(differences(expected, observed("SUCCESS"), false), []);
  // D1: the given-up sibling's clean-up canceled y's child too.
  assert.deepEqual(differences(expected, observed("CANCELED"), false), [
    "sub-workflows of p/y: expected [SUCCESS], got [CANCELED]",
  ]);
  // A retried task starts one child per attempt: compared as a multiset.
  const retried = { ...expected, children: [expected.children[0], { ...expected.children[0] }] };
  const once = observed("SUCCESS");
  const x = once.children[0];
  assert.deepEqual(differences(retried, { ...once, children: [x, x] }, false), []);
  assert.deepEqual(differences(retried, { ...once, children: [x, { ...x, status: "SUCCESS" }] }, false), [
    "sub-workflows of p/x: expected [CANCELED, CANCELED], got [CANCELED, SUCCESS]",
  ]);
  // A canceled child may never have started (its parent ended first, on the real clock); a success may not.
  assert.deepEqual(differences(retried, { ...once, children: [] }, false), []);
  assert.deepEqual(differences(expected, { ...once, children: [once.children[0]] }, false), [
    "sub-workflows of p/y: expected [SUCCESS], got []",
  ]);
});

Deno.test("a checkpoint's actions sent over 2 s after its waits started make a differing case inconclusive", () => {
  const observed = (controlLagMs: number[]) => ({ controlLagMs }) as unknown as Observed;
  assert.equal(lateControl(observed([])), undefined);
  assert.equal(lateControl(observed([120, 1_900])), undefined);
  assert.equal(
    lateControl(observed([120, 3_700])),
    "the harness sent a checkpoint's actions 3.7 s after its waits started",
  );
});

Deno.test("a race decided after a slow branch's nap ended makes a differing case inconclusive", () => {
  // Seed 21 of the plain set at load ~20: tool3 ended after slow5/nap6, and slow5 ran on.
  const at = (ms: number) => new Date(Date.UTC(2026, 11, 7, 22, 0, 0, ms)).toISOString();
  const observed = (toolEndMs: number) =>
    ({
      state: {
        tasks: [
          { task_id: "par1/par2/slow5/nap6", ended_at: at(1_500) },
          { task_id: "par1/par2/slow5/tool4", ended_at: at(1_600) },
          { task_id: "par1/par2/tool3", ended_at: at(toolEndMs) },
          { task_id: "par1/tool9", ended_at: at(9_000) },
        ],
      },
    }) as unknown as Observed;
  assert.equal(decidedAfterNap(observed(300)), undefined);
  assert.equal(
    decidedAfterNap(observed(1_720)),
    "par1/par2/tool3 (a tool that returns at once) ended 220 ms after par1/par2/slow5/nap6's 1.5 s nap (a starved machine)",
  );
});

Deno.test("a parallel whose error a real clock could take from another branch is left out", () => {
  // Seed 180336: a tool failing at once, and a wait's 300 ms time-out beside it.
  const failures = (waitMs: number, code = "wait_timeout") => ({
    ...result([]),
    parallelFailures: [{
      key: "par1",
      failures: [{ branch: "tool3", code: "tool_threw", atMs: 0 }, { branch: "wait4", code, atMs: waitMs }],
    }],
  });
  assert.equal(
    unusable(plainCase, failures(300)),
    "par1 fails with tool3's tool_threw, 300 ms before wait4's wait_timeout",
  );
  assert.equal(unusable(plainCase, failures(5_000)), undefined);
  // Of the same code, either order gives the same error code.
  assert.equal(unusable(plainCase, failures(300, "tool_threw")), undefined);
});

Deno.test("a control the harness could not send (NATS timed out for 30 s) makes a differing case inconclusive", () => {
  // Seed 161991: the signal came while nats-server restarted; its wait then timed out, as nothing reached it.
  const observed = (unsent: string[]) => ({ unsent }) as unknown as Observed;
  assert.equal(unsentControl(observed([])), undefined);
  assert.equal(
    unsentControl(observed(["signal: timeout"])),
    "the harness could not send a checkpoint's control (signal: timeout)",
  );
});

Deno.test("a case still running at the harness's limit is waited for longer: a slow end is compared, not its middle", async () => {
  // Seed 90030 at load 36: the state at 120 s (an item WAITING for a child that had started) was compared as
  // the execution's end. A fake end watch: RUNNING for the first wait, then the end if it comes in the grace.
  const state = (status: string) => ({ status, tasks: [] }) as unknown as ExecutionState;
  const watch = (...answers: string[]) => {
    const waits: number[] = [];
    const waitForEnd = (_id: string, ms: number) => {
      waits.push(ms);
      return Promise.resolve(state(answers[waits.length - 1]));
    };
    return { waits, waitForEnd };
  };
  const quick = watch("SUCCESS");
  assert.deepEqual(await endOf(quick.waitForEnd, "e", 100, 50), { state: state("SUCCESS") });
  assert.deepEqual(quick.waits, [100]);
  const slow = watch("RUNNING", "SUCCESS");
  const late = await endOf(slow.waitForEnd, "e", 100, 50);
  assert.equal(late.state.status, "SUCCESS");
  assert.equal(typeof late.lateMs, "number");
  assert.deepEqual(slow.waits, [100, 50]);
  // Not ended in the grace either: returned as it is, with no lateMs (runCase then says it is still running).
  const stuck = await endOf(watch("RUNNING", "RUNNING").waitForEnd, "e", 100, 50);
  assert.deepEqual(stuck, { state: state("RUNNING") });
});

Deno.test("overdue timers of different executions fired out of due order after an outage make a differing case inconclusive", () => {
  // Seed 140061 (crash run of 2026-12-06): the root's nap18 was due at 00.852, the child's nap14 at 03.716, the
  // engine was down from 00.813 to 03.850, and the child's timer fired first.
  const day = Date.UTC(2026, 11, 6);
  const at = (time: string) => day + Date.parse(`1970-01-01T${time}Z`);
  const history = [
    `338 01:25:00.655Z task.waiting_started par7/steps17/nap18 {"deadlineUnixMs":"${at("01:25:00.852")}"}`,
    `370 01:25:00.725Z [149b9d] task.waiting_started nap14 {"deadlineUnixMs":"${at("01:25:03.716")}"}`,
    `390 01:25:03.891Z [149b9d] workflow.taken_over  {"engine":"model-engine"}`,
    `391 01:25:03.900Z [149b9d] task.waiting_ended nap14 {"payload":{"attempt":1}}`,
    `400 01:25:03.943Z task.waiting_ended par7/steps17/nap18 {"payload":{"attempt":1}}`,
  ];
  const outage = { from: at("01:25:00.813"), to: at("01:25:03.850") };
  assert.equal(
    timersReorderedByOutage(history, [outage]),
    "par7/steps17/nap18 came due around an engine's 3.0 s outage, and [149b9d] nap14, due 2864 ms later in " +
      "another execution, fired first (overdue timers come back in no due order)",
  );
  // Due just before the kill (seed 140925: 0.1 s), it had not fired yet: the same artefact.
  assert.ok(timersReorderedByOutage(history, [{ ...outage, from: at("01:25:00.950") }]));
  // Due over a second before the kill, or after the restart: the engine had it in time, so the order says
  // something about the engine.
  assert.equal(timersReorderedByOutage(history, [{ ...outage, from: at("01:25:01.900") }]), undefined);
  assert.equal(timersReorderedByOutage(history, [{ ...outage, to: at("01:25:00.800") }]), undefined);
  // In due order, or in one execution (where the engine keeps due order): nothing to excuse.
  const inOrder = history.map((l) => l.replace("391 01:25:03.900Z", "401 01:25:03.950Z"));
  assert.equal(timersReorderedByOutage(inOrder, [outage]), undefined);
  const oneExecution = history.map((l) => l.replace("[149b9d] ", ""));
  assert.equal(timersReorderedByOutage(oneExecution, [outage]), undefined);
  // A wait ended by its signal before its deadline is no timer that fired.
  const signaled = history.map((l) =>
    l.replace("03.900Z [149b9d] task.waiting_ended", "00.800Z [149b9d] task.waiting_ended")
  );
  assert.equal(timersReorderedByOutage(signaled, [outage]), undefined);
});

Deno.test("a timer whose wake-up was recorded just before the outage goes on at its task's end: later than an overdue timer of another execution", () => {
  // Seed 1038314 (two engines, freezes, 2026-12-07): the root's nap30 (due 38.499) woke at 39.275, both
  // engines were killed (38.606, 39.725), a child's nap26 (due 41.371) ran on at 52.324 after a take-over,
  // and the root's nap30 ended (its task.success, where the root goes on) only at 53.165, on the replay.
  const day = Date.UTC(2026, 11, 7);
  const at = (time: string) => day + Date.parse(`1970-01-01T${time}Z`);
  const history = [
    `503 06:34:38.302Z task.waiting_started par19/steps29/nap30 {"deadlineUnixMs":"${at("06:34:38.499")}"}`,
    `514 06:34:38.374Z [f5243b] task.waiting_started nap26 {"deadlineUnixMs":"${at("06:34:41.371")}"}`,
    `551 06:34:39.275Z task.waiting_ended par19/steps29/nap30 {"payload":{"attempt":1}}`,
    `554 06:34:52.324Z [f5243b] task.waiting_ended nap26 {"payload":{"attempt":1}}`,
    `555 06:34:52.356Z [f5243b] task.success nap26 {"output":null,"attempt":1}`,
    `596 06:34:53.159Z workflow.taken_over  {"engine":"model-engine-2"}`,
    `597 06:34:53.165Z task.success par19/steps29/nap30 {"output":null,"attempt":1}`,
  ];
  const outage = { from: at("06:34:38.606"), to: at("06:34:52.100") };
  assert.match(timersReorderedByOutage(history, [outage]) ?? "", /par19\/steps29\/nap30 came due around/);
  // Its task ended before the other timer fired: the root went on first, nothing to excuse.
  const wentOn = history.map((l) => l.replace("597 06:34:53.165Z", "552 06:34:39.280Z"));
  assert.equal(timersReorderedByOutage(wentOn, [outage]), undefined);
});
