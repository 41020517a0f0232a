/**
 * What an e2e test with several processes prints when it fails, so that a failure seen once (in CI, under
 * load) can be understood without running it again: every process's output kept in files (in a directory
 * left in place), the tail of each printed, and the history and state of the executions that did not end
 * SUCCESS.
 */
import { join } from "node:path";
import type { ExecutionClient } from "../../../engine/mod.ts";
import type { CompozyProcess } from "./dev_server.ts";

export interface FailureReportOptions {
  /** The processes under test, by name (`engine-a`, `runtime-b`...). */
  processes: Map<string, CompozyProcess>;
  client?: ExecutionClient;
  /** The executions the test started: those not ended SUCCESS are shown (at most `maxShown`). */
  ids?: readonly string[];
  /**
   * Executions the test saw stuck (e.g. RUNNING at its liveness bound): shown whatever their state now, so
   * that their history tells a late end (a stall) from an end the test's wait missed.
   */
  stuck?: readonly string[];
  /** Times in the report are shown relative to this (ms since the epoch). */
  began?: number;
  tailLines?: number;
  maxShown?: number;
}

/** Prints the report; returns the directory holding each process's whole output. */
export async function reportFailure(options: FailureReportOptions): Promise<string> {
  const { processes, client, ids = [], stuck = [], began = 0, tailLines = 60, maxShown = 5 } = options;
  const keep = await Deno.makeTempDir({ prefix: "compozy-e2e-failure-" });
  for (const [name, process] of processes) {
    await Deno.writeTextFile(join(keep, `${name}.log`), process.lines.join("\n") + "\n");
    console.error(
      `--- ${name} (pid ${process.pid}): last ${tailLines} of ${process.lines.length} lines ` +
        `(all in ${join(keep, `${name}.log`)})\n${process.lines.slice(-tailLines).join("\n")}`,
    );
  }
  if (client && ids.length) await reportExecutions(client, ids, stuck, began, maxShown);
  return keep;
}

/** The executions not ended SUCCESS: their state, and their history with each event's lease revision. */
async function reportExecutions(
  client: ExecutionClient,
  ids: readonly string[],
  stuck: readonly string[],
  began: number,
  maxShown: number,
): Promise<void> {
  console.error(`--- report made ${Date.now() - began} ms after the run began`);
  const unfinished: Array<{ id: string; status: string }> = [];
  for (const id of ids) {
    const state = await client.get(id).catch((e) => ({ status: `unreadable: ${e}` }));
    if (state?.status !== "SUCCESS") unfinished.push({ id, status: state?.status ?? "no state" });
  }
  console.error(
    `--- ${unfinished.length} of ${ids.length} executions not ended SUCCESS: ${
      unfinished.map((u) => `${u.id} ${u.status}`).slice(0, 50).join(", ")
    }`,
  );
  const shown = [...new Set([...stuck, ...unfinished.map((u) => u.id)])].slice(0, maxShown);
  for (const id of shown) {
    const state = await client.get(id).catch((e) => `unreadable: ${e}`);
    const history = await client.events(id).then(
      (events) =>
        events.map((e) => {
          const data = e.data as {
            task?: { id?: string };
            attempt?: number;
            metadata?: { leaseRevision?: string; source?: string };
          };
          const task = data.task?.id ? ` ${data.task.id}${data.attempt ? `#${data.attempt}` : ""}` : "";
          const lease = data.metadata?.leaseRevision ? ` lease ${data.metadata.leaseRevision}` : "";
          return `  ${e.seq} +${Date.parse(e.time) - began} ms ${e.type}${task}${lease}`;
        }).join("\n"),
      (e) => `  unreadable: ${e}`,
    );
    console.error(`--- execution ${id}\nstate: ${JSON.stringify(state)}\nhistory:\n${history}`);
  }
}
