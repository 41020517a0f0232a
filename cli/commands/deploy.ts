/**
 * `compozy deploy --server URL`: sends a bundle (default: the newest in `dist/`) to a running server,
 * which loads it without downtime (POST /api/admin/deployments).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { ApiClient } from "../api_client.ts";
import { BUNDLE_SUFFIX, readBundleFile } from "../bundle.ts";
import { CliError } from "../cli_error.ts";

export interface DeployOptions {
  cwd: string;
  server: string;
  apiKey?: string;
  bundle?: string;
}

export async function runDeploy(options: DeployOptions): Promise<number> {
  const cwd = resolve(options.cwd);
  const path = options.bundle ? resolve(cwd, options.bundle) : await newestBundle(join(cwd, "dist"));
  const bundle = await readBundleFile(path);
  const result = await new ApiClient(options.server, options.apiKey).request<
    { deployment: string; project: string; workflows: string[] }
  >("POST", "/api/admin/deployments", bundle);
  console.log(
    `deployed ${result.project} to ${options.server}: ${result.workflows.join(", ")} ` +
      `(deployment ${result.deployment.slice(0, 16)}…)`,
  );
  return 0;
}

async function newestBundle(dir: string): Promise<string> {
  let newest: { path: string; mtime: number } | undefined;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.endsWith(BUNDLE_SUFFIX)) continue;
      const path = join(dir, entry.name);
      const mtime = (await Deno.stat(path)).mtime?.getTime() ?? 0;
      if (!newest || mtime > newest.mtime) newest = { path, mtime };
    }
  } catch {
    // No dist directory: reported below.
  }
  if (!newest) {
    throw new CliError(`No bundle in ${dir}`, ["Run `compozy build` first, or pass --bundle FILE."]);
  }
  return newest.path;
}
