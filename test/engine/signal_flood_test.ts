/**
 * Signals that no wait takes do not grow the history (issue 9's rest): each one that activated a parked
 * execution appended a `workflow.taken_over` (the activation's fence) though nothing else was recorded, so a
 * client sending many such signals grew the history without bound. Sent one after another (an activation
 * each) and all at once (most come back while another activation of the execution is under way), for a
 * signal no wait listens for and for one whose wait's condition refuses the payload; the wait still takes
 * the next signal that matches. Real engine, real nats-server.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { STREAMS } from "../../pkg/nats/mod.ts";
import { waitForStatus, withEngine } from "../support/flows.ts";
import { until } from "../support/until.ts";

const N = 50;

const WAIT = `tasks:
  - id: w
    type: wait
    signal: go
    condition: "{{ .signal.payload.ok == true }}"
  - { id: after, type: aggregate, outputs: { got: "{{ .tasks.w.output.n }}" } }
`;

/**
 * Sends `N` signals, at once or one after the other (each once the one before was handled and the execution
 * let go: an activation each), and returns what the history gained.
 */
async function growthOf(
  h: Parameters<Parameters<typeof withEngine>[1]>[0],
  execId: string,
  signal: string,
  payload: (i: number) => unknown,
  burst: boolean,
): Promise<string[]> {
  const { client } = h.engine;
  const jsm = await jetstreamManager(h.nc);
  // Every signal handled (acknowledged: none left in the command stream) and the execution let go.
  const handled = async () => {
    await until(async () => (await jsm.streams.info(STREAMS.workflowCommands)).state.messages === 0, 20_000);
    await until(() => Promise.resolve(h.engine.activeExecutions() === 0), 10_000);
  };
  const before = (await client.events(execId)).length;
  if (burst) {
    await Promise.all(Array.from({ length: N }, (_, i) => client.signal(execId, signal, payload(i))));
  } else {
    for (let i = 0; i < N; i++) {
      await client.signal(execId, signal, payload(i));
      await handled();
    }
  }
  await handled();
  return (await client.events(execId)).slice(before).map((e) => e.type);
}

/** The two kinds of signal no wait takes, with what each wrote before the fix. */
const KINDS = [
  {
    what: "no wait listens for",
    signal: "other",
    payload: (n: number) => ({ n }),
    // Dropped before the take-over on its first delivery; one that came back (sent while another activation
    // of the execution was under way) was replayed and appended one.
    before: "a take-over for each one that came back",
  },
  {
    what: "a wait's condition refuses",
    signal: "go",
    payload: (n: number) => ({ ok: false, n }),
    // The wait listens for it, so each activated the execution.
    before: "a take-over for each",
  },
];

for (const kind of KINDS) {
  for (const burst of [true, false]) {
    Deno.test({
      name: `${N} signals ${kind.what} (${burst ? "at once" : "one after another"}) record nothing; ` +
        "the wait takes a later match",
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        await withEngine(WAIT, async (h) => {
          const { client } = h.engine;
          const { execId } = await client.trigger("main", {});
          await waitForStatus(h, execId, "WAITING");
          const added = await growthOf(h, execId, kind.signal, kind.payload, burst);
          assert.deepEqual(added, [], `before the fix, ${kind.before}: ${added.join(", ")}`);
          assert.equal((await client.get(execId))?.status, "WAITING");
          await client.signal(execId, "go", { ok: true, n: 7 });
          const state = await client.waitForEnd(execId, 15_000);
          assert.deepEqual(state.output, { got: 7 });
        });
      },
    });
  }
}
