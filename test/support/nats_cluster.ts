/**
 * A JetStream cluster of real nats-servers on loopback, configured by the same module as `compozy dev`
 * (pkg/nats/auth.ts: users per role, authenticated routes). `url` lists every node with the test
 * superuser's credentials; `nodes[i].kill()` crashes one node and `restartNode(i)` brings it back.
 */
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { generateNatsAuth, type NatsAuth } from "../../pkg/nats/auth.ts";
import { connectNats } from "../../pkg/nats/connection.ts";
import { ManagedNatsServer } from "../../pkg/nats/server.ts";

export interface TestCluster {
  readonly url: string;
  readonly plainUrl: string;
  readonly auth: NatsAuth;
  nodes: ManagedNatsServer[];
  restartNode(index: number): Promise<void>;
  stop(): Promise<void>;
}

interface NodePlan {
  name: string;
  storeDir: string;
  port: number;
  clusterPort: number;
}

/** How many times the nodes are started on new ports when a port was taken meanwhile (a shared machine). */
const START_TRIES = 3;

export async function startTestCluster(size = 3): Promise<TestCluster> {
  const auth = generateNatsAuth({ superuser: true });
  const root = await Deno.makeTempDir({ prefix: "compozy-cluster-" });
  const plans: NodePlan[] = [];
  const planPorts = () => {
    const ports = distinctFreePorts(2 * size);
    plans.length = 0;
    for (let i = 0; i < size; i++) {
      plans.push({
        name: `n${i + 1}`,
        storeDir: `${root}/n${i + 1}`,
        port: ports[2 * i],
        clusterPort: ports[2 * i + 1],
      });
    }
  };
  const start = (plan: NodePlan) =>
    ManagedNatsServer.start({
      storeDir: plan.storeDir,
      port: plan.port,
      auth,
      serverName: plan.name,
      cluster: {
        name: "compozy-test",
        host: "127.0.0.1",
        port: plan.clusterPort,
        routes: plans.filter((p) => p !== plan).map((p) => ({ host: "127.0.0.1", port: p.clusterPort })),
      },
    });
  // A free port is closed before the server binds it, so another process may take it first: the nodes that
  // did start are stopped (they would outlive the test) and all start again on new ports.
  let nodes: ManagedNatsServer[] | undefined;
  for (let attempt = 1; !nodes; attempt++) {
    planPorts();
    const started = await Promise.allSettled(plans.map(start));
    const failure = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (!failure) {
      nodes = started.map((r) => (r as PromiseFulfilledResult<ManagedNatsServer>).value);
      break;
    }
    await Promise.all(started.map((r) => r.status === "fulfilled" ? r.value.stop() : undefined));
    if (attempt >= START_TRIES || !/address already in use/i.test(String(failure.reason))) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      throw failure.reason;
    }
  }
  const plainUrl = nodes.map((n) => n.url).join(",");
  const su = auth.superuser!;
  const url = nodes.map((n) => n.url.replace("://", `://${su.user}:${su.pass}@`)).join(",");
  const cluster: TestCluster = {
    url,
    plainUrl,
    auth,
    nodes,
    async restartNode(index) {
      cluster.nodes[index] = await start(plans[index]);
    },
    async stop() {
      await Promise.all(cluster.nodes.map((n) => n.stop()));
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
  try {
    await waitForJetStream(url, size);
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

/**
 * A cluster is ready once its meta leader places a stream on every node: a leader elected before it has heard
 * from all peers refuses an R`size` stream with "no suitable peers for placement" (seen under load).
 */
async function waitForJetStream(url: string, size: number, timeoutMs = 30_000): Promise<void> {
  const nc = await connectNats(url, { name: "cluster-wait" });
  try {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        await jsm.streams.add({
          name: "CLUSTER_READY_PROBE",
          subjects: ["cluster-ready-probe"],
          num_replicas: size,
          storage: StorageType.Memory,
        });
        await jsm.streams.delete("CLUSTER_READY_PROBE");
        return;
      } catch (e) {
        lastError = e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new Error(`The NATS cluster could not place an R${size} stream in ${timeoutMs} ms`, {
      cause: lastError,
    });
  } finally {
    await nc.close();
  }
}

/** `count` different free ports (a port freed by one look-up may come back from the next). */
function distinctFreePorts(count: number): number[] {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(freePort());
  return [...ports];
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
