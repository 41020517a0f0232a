/**
 * The version this build reports (`compozy --version`, `GET /api/version`): the package version, and the
 * commit and build time when the build set them (COMPOZY_BUILD_COMMIT, COMPOZY_BUILD_TIME).
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import type { VersionInfo } from "../server/mod.ts";
import { envValue } from "./settings.ts";

export function versionInfo(): VersionInfo {
  return {
    version: denoJson.version,
    commit: envValue("COMPOZY_BUILD_COMMIT"),
    builtAt: envValue("COMPOZY_BUILD_TIME"),
  };
}
