/**
 * Lint rule `compozy/test-keeps-process-env`: a test file (`*_test.ts`) may not change the process's
 * environment or working directory. `deno test --parallel` runs every test file in one process, so such a
 * change reaches the files running beside it (path_write_grants' stand-in NATS_SERVER_BIN made another
 * file's nats-server exit 0 before it was ready). Cases that need it go in a `_<what>_cases.ts` file run by
 * test/support/own_process.ts. Tool sources inside strings are not calls, so they are not flagged.
 */
const CHANGERS: Record<string, string[]> = { env: ["set", "delete"], "": ["chdir", "umask"] };

function isDenoMember(node: Deno.lint.Node, name: string): boolean {
  return node.type === "MemberExpression" && node.object.type === "Identifier" &&
    node.object.name === "Deno" &&
    node.property.type === "Identifier" && node.property.name === name;
}

/** `Deno.env.set(...)` → "env.set"; `Deno.chdir(...)` → "chdir"; else undefined. */
function changerCalled(callee: Deno.lint.Node): string | undefined {
  if (callee.type !== "MemberExpression" || callee.property.type !== "Identifier") return undefined;
  const method = callee.property.name;
  if (isDenoMember(callee.object, "env") && CHANGERS.env.includes(method)) return `env.${method}`;
  if (callee.object.type === "Identifier" && callee.object.name === "Deno" && CHANGERS[""].includes(method)) {
    return method;
  }
  return undefined;
}

const plugin: Deno.lint.Plugin = {
  name: "compozy",
  rules: {
    "test-keeps-process-env": {
      create(context) {
        if (!/_test\.ts$/.test(context.filename)) return {};
        return {
          CallExpression(node) {
            const changer = changerCalled(node.callee);
            if (!changer) return;
            context.report({
              node,
              message:
                `Deno.${changer} in a test file changes every test file's process (deno test --parallel)`,
              hint: "Move the case to a _<what>_cases.ts file run by test/support/own_process.ts",
            });
          },
        };
      },
    },
  },
};

export default plugin;
