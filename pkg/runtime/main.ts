/**
 * The runtime process: `deno run -A pkg/runtime/main.ts --nats-url URL [--exit-with-parent]`, or
 * `compozy __runtime …` from the compiled binary.
 * `compozy dev` and `compozy start --role runtime` start it. With `--exit-with-parent` it exits when its
 * stdin closes, so a parent killed with SIGKILL leaves no runtime (or sandbox process) behind.
 */
import { parseArgs } from "node:util";
import { Bus, connectNats, NatsUnavailableError } from "../nats/mod.ts";
import { configureLogging, getLogger } from "../logger/mod.ts";
import { delimiter } from "node:path";
import { configureProtectedFiles, configureProtectedRoots, PROTECTED_ROOTS_ENV } from "./grant_paths.ts";
import { natsTargets, parseNetTargets } from "./net_deny.ts";
import { denyNatsServers } from "./bus_deny_watch.ts";
import { startRuntime } from "./service.ts";
import { runtimeSettingsFromEnv } from "./settings_env.ts";
import { dropRelativeEntries, relativeEntriesWarning } from "../utils/search_path.ts";

/**
 * Runs the runtime until a signal (or, with `--exit-with-parent`, the end of stdin) stops it. The compiled
 * `compozy` binary calls this through its hidden `__runtime` command, since it cannot `deno run` this file.
 */
export async function runtimeMain(args: string[]): Promise<never> {
  // Before any look-up or sandbox: a relative PATH entry names whatever folder the runtime runs in. Started
  // by the compozy command, the parent has dropped them (and said so) already.
  const relative = dropRelativeEntries();
  if (relative.length > 0) console.error(`compozy runtime: warning: ${relativeEntriesWarning(relative)}`);
  const { values } = parseArgs({
    args,
    options: {
      "nats-url": { type: "string" },
      "exit-with-parent": { type: "boolean", default: false },
      "instance-id": { type: "string" },
    },
  });
  const url = values["nats-url"] ?? Deno.env.get("NATS_URL");
  if (!url) {
    console.error("compozy runtime: --nats-url (or NATS_URL) is required");
    Deno.exit(1);
  }
  // Before any tool runs, and whenever the cluster announces a server: the NATS servers of the URL, those the
  // cluster announces, and the ports the stack owns besides (cluster routes, monitoring) in
  // COMPOZY_SANDBOX_DENY_NET.
  let nc: Awaited<ReturnType<typeof connectNats>>;
  try {
    nc = await connectNats(url, { name: "compozy-runtime", role: "runtime" });
  } catch (e) {
    // NATS gone (e.g. dev stopping while this runtime started): one line, which says what to do; not an
    // uncaught error's stack trace printed into dev's terminal after it exited. The supervisor restarts it.
    if (!(e instanceof NatsUnavailableError)) throw e;
    console.error(`compozy runtime: ${e.message}`);
    Deno.exit(1);
  }
  await denyNatsServers(nc, [
    ...natsTargets(url),
    ...parseNetTargets(Deno.env.get("COMPOZY_SANDBOX_DENY_NET") ?? ""),
  ]);
  configureProtectedRoots((Deno.env.get(PROTECTED_ROOTS_ENV) ?? "").split(delimiter));
  configureProtectedFiles([Deno.env.get("NATS_CREDS")]);
  const bus = new Bus(nc, { source: "runtime" });
  configureLogging({ component: "runtime", bus, instanceId: values["instance-id"] });
  const log = getLogger(["runtime"]);
  const runtime = startRuntime({
    nc,
    bus,
    ...runtimeSettingsFromEnv(),
  });
  log.info("runtime consuming tool and agent commands on {url}", { url });
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    bus.beginStop();
    // SIGINT is Ctrl-C, which reaches the parent too, and the parent says it is stopping.
    if (reason === "SIGINT" || reason === "drained") log.debug("runtime stopping: {reason}", { reason });
    else log.info("runtime stopping: {reason}", { reason });
    await runtime.stop();
    await nc.drain().catch(() => {});
    Deno.exit(0);
  };
  // SIGHUP is the supervisor's restart (dev --watch after a tool module changed), a routine not worth a line:
  // no new calls, and the process exits once the calls it runs have ended on the code they started with
  // (a new runtime takes the new calls meanwhile). SIGTERM, SIGINT or the parent's end stop it at once.
  let draining = false;
  const drain = async () => {
    if (draining || stopping) return;
    draining = true;
    log.debug("runtime draining for a restart");
    await runtime.drain();
    await stop("drained");
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGHUP", () => drain());
  if (values["exit-with-parent"]) {
    (async () => {
      for await (const _ of Deno.stdin.readable) { /* the parent writes nothing: we wait for EOF */ }
      await stop("parent exited");
    })();
  }
  // Never returns: `stop` ends the process once the runtime has drained.
  return await new Promise<never>(() => {});
}

if (import.meta.main) await runtimeMain(Deno.args);
