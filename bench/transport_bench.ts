/**
 * `deno run -A bench/transport_bench.ts [node|deno]…`: CPU of this process per core NATS request/reply and
 * per published message, with the Deno-native transport (pkg/nats/transport/) or transport-node, against one
 * managed nats-server. Each transport runs in a fresh process (nats-core's transport factory is one per
 * process), the order alternating, so a busy machine's drift falls on both. CPU is this process's
 * utime + stime from /proc (nats-server's own CPU is not in it), which a loaded machine inflates far less
 * than wall time.
 */
import { connect as nodeConnect, type NatsConnection } from "@nats-io/transport-node";
import { connect as denoConnect } from "../pkg/nats/transport/connect.ts";
import { ManagedNatsServer } from "../pkg/nats/server.ts";

const REQUESTS = 40_000;
const IN_FLIGHT = 100;
const PUBLISHES = 200_000;
const PAYLOAD = new TextEncoder().encode(JSON.stringify({ city: "Lisbon", temperature_c: 21.5, ok: true }));

/** utime + stime of this process, in ms (clock ticks of 10 ms on Linux). */
function cpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function measure(transport: string, url: string): Promise<Record<string, number | string>> {
  const connect = transport === "deno" ? denoConnect : nodeConnect;
  const server = await connect({ servers: url, noAsyncTraces: true });
  const client = await connect({ servers: url, noAsyncTraces: true });
  try {
    server.subscribe("bench.echo", { callback: (_e, m) => void m.respond(m.data) });
    let count = 0;
    server.subscribe("bench.pub", { callback: () => void count++ });
    await server.flush();
    await requests(client, 2_000, IN_FLIGHT); // warm-up: JIT, buffers
    const row: Record<string, number | string> = { transport };
    for (const inFlight of [1, IN_FLIGHT]) {
      const cpu = cpuMs();
      const wall = performance.now();
      await requests(client, REQUESTS / 4, inFlight);
      row[`request/reply ×${inFlight} CPU µs`] = +((cpuMs() - cpu) * 4000 / REQUESTS).toFixed(1);
      row[`request/reply ×${inFlight} wall µs`] = +((performance.now() - wall) * 4000 / REQUESTS).toFixed(1);
    }
    const cpu = cpuMs();
    for (let i = 0; i < PUBLISHES; i++) {
      client.publish("bench.pub", PAYLOAD);
      if (i % 1_000 === 999) await client.flush();
    }
    await client.flush();
    await server.flush();
    const publishCpuUs = (cpuMs() - cpu) * 1000 / PUBLISHES;
    if (count !== PUBLISHES) throw new Error(`received ${count} of ${PUBLISHES}`);
    row["publish+deliver CPU µs"] = +publishCpuUs.toFixed(2);
    return row;
  } finally {
    await client.close();
    await server.close();
  }
}

async function requests(nc: NatsConnection, n: number, inFlight: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      await nc.request("bench.echo", PAYLOAD, { timeout: 30_000 });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

if (Deno.args[0] === "--child") {
  console.log(JSON.stringify(await measure(Deno.args[1], Deno.args[2])));
} else {
  const order = Deno.args.length ? Deno.args : ["node", "deno", "node", "deno", "node", "deno"];
  const storeDir = await Deno.makeTempDir({ prefix: "compozy-bench-transport-" });
  const nats = await ManagedNatsServer.start({ storeDir });
  try {
    for (const transport of order) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", import.meta.filename!, "--child", transport, nats.url],
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`the ${transport} run failed`);
      console.log(new TextDecoder().decode(out.stdout).trim());
    }
  } finally {
    await nats.stop();
    await Deno.remove(storeDir, { recursive: true });
  }
}
