/** Runs a batch of cases on one stack, a few at a time, and reports each one's differences. */
import type { ReferenceResult } from "../reference/types.ts";
import { differences } from "./compare.ts";
import { startStack } from "./engine_run.ts";
import type { Case } from "./generator.ts";

export interface Checked {
  case: Case;
  expected: ReferenceResult;
  diffs: string[];
  ms: number;
}

export interface BatchOptions {
  crashes?: boolean;
  /** Cases in flight at once. */
  concurrency?: number;
  random?: () => number;
}

export async function checkBatch(
  batch: Array<{ case: Case; expected: ReferenceResult }>,
  options: BatchOptions = {},
): Promise<{ results: Checked[]; kills: number; natsKills: number }> {
  const stack = await startStack(batch.map((b) => b.case), options);
  const results: Checked[] = [];
  try {
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const { case: c, expected } = batch[next++];
        const started = Date.now();
        let diffs: string[];
        try {
          diffs = differences(expected, await stack.run(c, expected), !!options.crashes);
        } catch (e) {
          diffs = [`run failed: ${(e as Error).stack ?? e}`];
        }
        results.push({ case: c, expected, diffs, ms: Date.now() - started });
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 3 }, worker));
  } finally {
    await stack.close();
  }
  results.sort((a, b) => a.case.seed - b.case.seed);
  return { results, kills: stack.kills, natsKills: stack.natsKills };
}
