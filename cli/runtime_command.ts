/**
 * The hidden command of `compozy` that runs the runtime in this process (for the compiled binary): its own
 * module, so the CLI tells it apart without loading the runtime's supervisor (cli/runtime_process.ts) and the
 * logger and NATS client that comes with.
 *
 * @module
 */

/** `compozy __runtime --nats-url …`: how the compiled binary starts its runtime child. */
export const RUNTIME_COMMAND = "__runtime";
