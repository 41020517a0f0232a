/**
 * Waiting for Ctrl-C or a termination request. The first signal asks for a graceful stop; a second one
 * while stopping exits at once (130), as terminals users expect.
 *
 * @module
 */

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Resolves with the first SIGINT or SIGTERM. */
export function untilShutdownSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    let received = false;
    for (const signal of SIGNALS) {
      Deno.addSignalListener(signal, () => {
        if (received) Deno.exit(130);
        received = true;
        resolve(signal);
      });
    }
  });
}
