/**
 * Ids are checked before they go into a URL path: the browser resolves `.` and `..` segments, so an id of `..`
 * asked for another route (`/api/executions/..` is `/api/`). The patterns are the API's (server/schemas.ts):
 * an execution id is a NATS subject token (a UUIDv7 in practice); workflow and signal ids are CONFIG.md's.
 */
import { ui } from "./common.js";

const EXEC_ID = /^[A-Za-z0-9_-]{1,128}$/;
const DEFINITION_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export const isExecId = (id) => EXEC_ID.test(id);
export const isDefinitionId = (id) => DEFINITION_ID.test(id);

const RULES = {
  execution: "letters, digits, _ and -, at most 128",
  workflow: "[a-z0-9][a-z0-9_-]*, at most 64 characters",
  signal: "[a-z0-9][a-z0-9_-]*, at most 64 characters",
};

/** Why an id was not asked for, in one sentence. */
export function invalidIdText(kind, id) {
  return ui`<code>${id}</code> is not a valid ${kind} id (${RULES[kind]}).`;
}

/** A page's whole answer to an id that cannot exist: nothing was requested. */
export function InvalidId({ kind, id }) {
  return ui`<div class="error-box" role="alert" id="invalid-id">
    <strong>Not a valid ${kind} id</strong>
    <div>${invalidIdText(kind, id)}</div>
  </div>`;
}
