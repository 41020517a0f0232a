/**
 * `/api/logs` pages (server/log_source.ts) against a real nats-server: every record of a run once, in order,
 * however the run's subjects interleave. nats-server 2.9 counts a wildcard consumer's pending from a start
 * past some subject's last record in the order of a Go map; a page that trusted the count ended with
 * records left (6 parallel `compozy dev` runs: 3600 of 5400 tool lines, next_cursor null).
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

const RUN = "01a2461a-c26d-7000-b2e5-0152b337b0f9";
const OTHER = "01a2461a-c26d-7000-b2e5-0152b337b0fa";
const LINES = 900;

Deno.test({
  name: "log pages hold every record of a run once, in order, whatever the server counts as pending",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "log-source-test" });
    try {
      await provisionJetStream(nc);
      const publish = (correlationId: string, call: string, message: string) => {
        const subject = buildSubject({
          correlationId,
          component: "tool",
          kind: "logs",
          id: call,
          type: "info",
        });
        nc.publish(
          subject,
          encode(LogEmittedSchema, create(LogEmittedSchema, { level: LogLevel.INFO, message })),
        );
      };
      // Six calls two at a time, as a collection runs them on two cores: each pair's lines interleave, and
      // every subject ends before the next pair's begin. Another run logs after them.
      for (const pair of [["c0", "c1"], ["c2", "c3"], ["c4", "c5"]]) {
        for (let line = 1; line <= LINES; line++) {
          for (const call of pair) publish(RUN, call, `${call} ${line}`);
        }
      }
      for (let line = 1; line <= 100; line++) publish(OTHER, "o0", `other ${line}`);
      await nc.flush();
      const source = jetStreamLogSource(nc);

      await t.step("pages of 2000, read again and again, hold all 5400 records", async () => {
        // The server's count depends on a map's order: one read can be right by chance, twelve cannot.
        for (let read = 0; read < 12; read++) {
          const seqs: number[] = [];
          let from: number | null = 1;
          for (let pages = 0; from !== null && pages < 10; pages++) {
            const page = await source.logs(RUN, 2000, from);
            seqs.push(...page.records.map((r) => r.seq));
            from = page.next;
          }
          assert.equal(from, null, "the last page has no next");
          assert.deepEqual(seqs, [...Array(6 * LINES).keys()].map((i) => i + 1), `read ${read}`);
        }
      });

      await t.step("a page from past the run's last record is empty and last", async () => {
        assert.deepEqual(await source.logs(RUN, 2000, 6 * LINES + 1), { records: [], next: null });
        assert.deepEqual(await source.logs("01a2461a-c26d-7000-b2e5-0152b337b0fb", 10), {
          records: [],
          next: null,
        });
      });

      await t.step("a page cut at its limit goes on after its last record", async () => {
        const page = await source.logs(RUN, 7, 2001);
        assert.deepEqual(page.records.map((r) => r.seq), [2001, 2002, 2003, 2004, 2005, 2006, 2007]);
        assert.equal(page.next, 2008);
        assert.deepEqual(page.records.map((r) => r.message).slice(0, 2), ["c2 101", "c3 101"]);
      });
    } finally {
      await nc.close();
      await nats.stop();
    }
  },
});
