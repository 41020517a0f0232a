import assert from "node:assert/strict";
import { MessageTooLargeError } from "../../pkg/nats/errors.ts";
import { toApiError } from "../../server/api_error.ts";

Deno.test("a request too large for one bus message is a 413, not a 500 (COMPOZY_BODY_LIMIT raised past max_payload)", () => {
  const cause = new MessageTooLargeError("compozy.x.workflow.cmds.greet.trigger", 9_000_000, 8_388_608);
  const error = toApiError(cause);
  assert.equal(error.status, 413);
  assert.equal(error.code, "payload_too_large");
  assert.equal(error.message, cause.message);
  assert.deepEqual(error.details, [{ bytes: 9_000_000, max_bytes: 8_388_608 }]);
});
