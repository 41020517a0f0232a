/**
 * Identifier rules shared by every config kind.
 *
 * Ids written in YAML become tokens of NATS subjects (`compozy.<cid>.task.cmds.<id>.execute`), so they are
 * checked at load time against a pattern that can never produce an empty token, a `.`, `*`, `>` or white space.
 *
 * @module
 */

/** Pattern of workflow, task, tool, agent, action, model and signal ids. */
export const ID_PATTERN = "^[a-z0-9][a-z0-9_-]*$";

/**
 * Longest id or project name. Ids go into every subject, key and event of an execution, and into messages;
 * 64 characters leave room for any name a person would type while keeping them bounded.
 */
export const MAX_ID_LENGTH = 64;

/** Pattern of a project name (no underscore: it also names files and directories). */
export const PROJECT_NAME_PATTERN = "^[a-z0-9][a-z0-9-]*$";
