// deno-lint-ignore-file compozy/test-keeps-process-env -- COMPOZY_TEST_ENV_NUMBER_MS is read by no other code
import assert from "node:assert/strict";
import { EnvSettingError, integerFromEnv, positiveMsFromEnv } from "./env_number.ts";

const NAME = "COMPOZY_TEST_ENV_NUMBER_MS";

function withEnv(value: string | undefined, body: () => void): void {
  if (value === undefined) Deno.env.delete(NAME);
  else Deno.env.set(NAME, value);
  try {
    body();
  } finally {
    Deno.env.delete(NAME);
  }
}

Deno.test("positiveMsFromEnv: unset or empty keeps the default, a whole positive number is read", () => {
  withEnv(undefined, () => assert.equal(positiveMsFromEnv(NAME), undefined));
  withEnv("", () => assert.equal(positiveMsFromEnv(NAME), undefined));
  withEnv("2500", () => assert.equal(positiveMsFromEnv(NAME), 2_500));
  withEnv(" 2147483647 ", () => assert.equal(positiveMsFromEnv(NAME), 2_147_483_647));
});

Deno.test("positiveMsFromEnv: any other value stops with the variable's name and value", () => {
  for (const bad of ["0", "-5", "1.5", "10s", "abc", "1e400", "1e21", "0x10", "100.0", "2147483648"]) {
    withEnv(bad, () => {
      assert.throws(() => positiveMsFromEnv(NAME), (e: unknown) => {
        assert.ok(e instanceof EnvSettingError);
        assert.equal(
          e.message,
          `${NAME} must be a positive whole number of milliseconds up to 2147483647, got '${bad}'`,
        );
        return true;
      });
    });
  }
});

Deno.test("integerFromEnv: unset or empty keeps the default, a whole number at the minimum or above is read", () => {
  withEnv(undefined, () => assert.equal(integerFromEnv(NAME, 64), undefined));
  withEnv(" ", () => assert.equal(integerFromEnv(NAME, 64), undefined));
  withEnv("64", () => assert.equal(integerFromEnv(NAME, 64), 64));
  withEnv("1024", () => assert.equal(integerFromEnv(NAME, 64), 1_024));
});

Deno.test("integerFromEnv: any other value stops with the variable's name, the minimum and the value", () => {
  for (const bad of ["63", "0", "-5", "100.5", "1k", "abc", "1e400", "1e3", "0x100", "100.0"]) {
    withEnv(bad, () => {
      assert.throws(() => integerFromEnv(NAME, 64), (e: unknown) => {
        assert.ok(e instanceof EnvSettingError);
        assert.equal(e.message, `${NAME} must be a whole number of at least 64, got '${bad}'`);
        return true;
      });
    });
  }
});
