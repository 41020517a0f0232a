/**
 * An engine process: `deno run -A engine/main.ts --cwd DIR --nats-url URL [--instance-id ID] [--ack-wait-ms N]`.
 * `compozy start --role engine` does the same; this entry is what tests SIGKILL and restart.
 */
import { parseArgs } from "node:util";
import { runEngineProcess } from "./process.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      cwd: { type: "string", default: "." },
      "nats-url": { type: "string" },
      "instance-id": { type: "string" },
      "ack-wait-ms": { type: "string" },
    },
  });
  await runEngineProcess({
    cwd: values.cwd!,
    natsUrl: values["nats-url"] ?? Deno.env.get("NATS_URL") ?? "",
    instanceId: values["instance-id"],
    ackWaitMs: values["ack-wait-ms"] ? Number(values["ack-wait-ms"]) : undefined,
  });
}
