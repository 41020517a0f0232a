/**
 * The NATS backbone: a managed server, subjects, the typed message bus and JetStream provisioning.
 *
 * @example
 * ```ts
 * const server = await ManagedNatsServer.start({ storeDir: ".compozy/nats" });
 * const nc = await connectNats(server.url, { name: "engine" });
 * await provisionJetStream(nc);
 * const bus = new Bus(nc, { source: "orchestrator" });
 * ```
 */
export * from "./auth.ts";
export * from "./bus.ts";
export * from "./catalogue.ts";
export * from "./codec.ts";
export * from "./connection.ts";
export * from "./errors.ts";
export * from "./provision.ts";
export * from "./read_stream.ts";
export * from "./read_cache.ts";
export * from "./server.ts";
export * from "./subjects.ts";
