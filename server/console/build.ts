/**
 * Builds the console's assets into `server/console/assets.json`: the UI (`ui/main.js` with preact and htm)
 * bundled and minified by `deno bundle` (offline, from the npm packages in deno.lock), and the stylesheet.
 * The JSON is imported by the server, so that `deno compile` embeds it with no file to ship alongside.
 *
 * Usage: `deno task console` after changing anything in `server/console/ui/`; a test fails while the committed
 * assets differ from a fresh build.
 */
import { fileURLToPath } from "node:url";

const HERE = new URL("./", import.meta.url);
export const ASSETS_PATH = fileURLToPath(new URL("assets.json", HERE));

export interface ConsoleAssets {
  "app.js": string;
  "app.css": string;
}

export async function buildConsoleAssets(): Promise<ConsoleAssets> {
  const entry = fileURLToPath(new URL("ui/main.js", HERE));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "browser", "--format", "esm", "--minify", entry],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno bundle ${entry} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const css = await Deno.readTextFile(new URL("ui/style.css", HERE));
  return { "app.js": new TextDecoder().decode(out.stdout), "app.css": css };
}

/** The text written to assets.json (the same bytes `deno fmt` leaves alone). */
export function serializeAssets(assets: ConsoleAssets): string {
  return JSON.stringify(assets, null, 2) + "\n";
}

if (import.meta.main) {
  const assets = await buildConsoleAssets();
  await Deno.writeTextFile(ASSETS_PATH, serializeAssets(assets));
  console.log(
    `wrote ${ASSETS_PATH}: app.js ${assets["app.js"].length} B, app.css ${assets["app.css"].length} B`,
  );
}
