/** The HTTP API over an in-process engine harness: for route tests that need a real engine behind real HTTP. */
import { createApp } from "../../server/app.ts";
import { type EngineHarness, startEngineHarness } from "./engine.ts";

/** Starts an engine on `files`, serves the API over it on a free loopback port, and stops both after `fn`. */
export async function withEngineApi(
  files: Record<string, string>,
  fn: (base: string, h: EngineHarness) => Promise<void>,
): Promise<void> {
  const h = await startEngineHarness(files);
  const app = createApp({
    client: h.engine.client,
    project: h.project,
    version: { version: "test", commit: "test" },
    health: { check: () => Promise.resolve({ status: "ok", components: {} }) },
    natsConnected: () => true,
    logs: { logs: () => Promise.resolve({ records: [], next: null }) },
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, h);
  } finally {
    await server.shutdown();
    await h.close();
  }
}

/** A request to the API with an optional JSON body; its status, text and parsed JSON body. */
export async function callApi(url: string, method = "GET", body?: string) {
  const response = await fetch(url, {
    method,
    body,
    headers: body === undefined ? {} : { "content-type": "application/json" },
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}
