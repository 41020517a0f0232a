/**
 * brk28: `/api/logs` pages (server/log_source.ts) read while the run logs, against a real nats-server:
 * records of many runs interleave, pages of 1 to 7, a cursor moving while records arrive.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { connectNats } from "../../pkg/nats/connection.ts";
import { encode } from "../../pkg/nats/codec.ts";
import { provisionJetStream } from "../../pkg/nats/provision.ts";
import { buildSubject } from "../../pkg/nats/subjects.ts";
import { LogEmittedSchema, LogLevel } from "../../pkg/pb/log_pb.ts";
import { jetStreamLogSource } from "../../server/log_source.ts";
import { startTestNats } from "../support/nats.ts";

const RUNS = [...Array(5).keys()].map((i) => `01a2461a-c26d-7000-b2e5-0152b337b0f${i}`);

Deno.test({
  name: "pages read while runs log hold every record of the run once, in order",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "log-source-attack" });
    try {
      await provisionJetStream(nc);
      const js = (await import("@nats-io/jetstream")).jetstream(nc);
      const published = new Map<string, number[]>(RUNS.map((r) => [r, []]));
      let writing = true;
      const writer = (async () => {
        for (let line = 1; line <= 600; line++) {
          for (const [i, run] of RUNS.entries()) {
            const subject = buildSubject({
              correlationId: run,
              component: "tool",
              kind: "logs",
              id: `c${line % (i + 2)}`,
              type: "info",
            });
            const ack = await js.publish(
              subject,
              encode(
                LogEmittedSchema,
                create(LogEmittedSchema, { level: LogLevel.INFO, message: `${line}` }),
              ),
            );
            published.get(run)!.push(ack.seq);
          }
        }
        writing = false;
      })();
      const source = jetStreamLogSource(nc);
      const readers = RUNS.slice(0, 3).map(async (run, i) => {
        const seqs: number[] = [];
        let from = 1;
        let pages = 0;
        while (true) {
          const wasWriting = writing;
          const page = await source.logs(run, i + 1 + (pages % 7), from);
          pages++;
          seqs.push(...page.records.map((r) => r.seq));
          if (page.next === null) {
            if (!wasWriting) break;
            from = (seqs.at(-1) ?? 0) + 1;
            continue;
          }
          assert.ok(page.next > (seqs.at(-1) ?? 0), `next ${page.next} after ${seqs.at(-1)}`);
          from = page.next;
        }
        return seqs;
      });
      await writer;
      const read = await Promise.all(readers);
      for (const [i, seqs] of read.entries()) assert.deepEqual(seqs, published.get(RUNS[i]), `run ${i}`);
    } finally {
      await nc.close();
      await nats.stop();
    }
  },
});
