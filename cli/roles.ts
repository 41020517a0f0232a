/**
 * The parts a `compozy start` process can run (`--role`): its own module, so the CLI reads the choices
 * without loading the stack that runs them.
 *
 * @module
 */

/** `--role`'s choices: every part in one process, or one of them. */
export const ROLES = ["all", "api", "engine", "runtime"] as const;
/** One of {@link ROLES}. */
export type Role = typeof ROLES[number];
