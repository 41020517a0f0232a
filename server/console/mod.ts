/**
 * The web console, served by the API process: `GET /` is its page and `/console/app.js`, `/console/app.css`
 * its assets (built into assets.json by build.ts). The page and its code hold no data, so they are served
 * without the API key; every read and action the page makes goes through the API's routes, with the key the
 * user enters (see docs/console.md). Assets carry a strong ETag (answered 304 when it matches) and are
 * gzipped for clients that accept it. Nothing is loaded from another host.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import assets from "./assets.json" with { type: "json" };

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  gzip: Uint8Array<ArrayBuffer>;
  etag: string;
  type: string;
}

async function prepare(text: string, type: string): Promise<Asset> {
  const body = new TextEncoder().encode(text);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  const etag = `"${Array.from(digest.slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
  const gzip = new Uint8Array(
    await new Response(new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  return { body, gzip, etag, type };
}

function page(js: Asset, css: Asset): string {
  // The ETags version the asset URLs, so a new build is never mixed with a cached old one.
  const v = (a: Asset) => a.etag.slice(1, 9);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Compozy console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css?v=${v(css)}">
</head>
<body>
<div id="app"><noscript>The Compozy console needs JavaScript.</noscript></div>
<script type="module" src="/console/app.js?v=${v(js)}"></script>
</body>
</html>
`;
}

let prepared: Promise<Record<string, Asset>> | undefined;

/** The three responses, built once per process (hashing and compressing ~60 KB). */
function consoleAssets(): Promise<Record<string, Asset>> {
  return prepared ??= (async () => {
    const js = await prepare(assets["app.js"], "text/javascript; charset=utf-8");
    const css = await prepare(assets["app.css"], "text/css; charset=utf-8");
    const html = await prepare(page(js, css), "text/html; charset=utf-8");
    return { "/": html, "/console/app.js": js, "/console/app.css": css };
  })();
}

function serve(c: Context, asset: Asset): Response {
  const headers: Record<string, string> = {
    "content-type": asset.type,
    etag: asset.etag,
    // Revalidate every time: the ETag makes that a 304 without a body.
    "cache-control": "no-cache",
    vary: "accept-encoding",
    "x-content-type-options": "nosniff",
    // No other page may frame the console: its buttons cancel, pause and re-run executions (clickjacking).
    // X-Frame-Options is for browsers that do not know frame-ancestors.
    "x-frame-options": "DENY",
    "content-security-policy":
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  };
  const match = c.req.header("if-none-match");
  if (match && match.split(",").some((tag) => tag.trim().replace(/^W\//, "") === asset.etag)) {
    return new Response(null, { status: 304, headers });
  }
  const gzip = /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
  if (gzip) headers["content-encoding"] = "gzip";
  return new Response(gzip ? asset.gzip : asset.body, { status: 200, headers });
}

/** Registers the console's routes on the API app. */
export function mountConsole(app: Hono): void {
  for (const path of ["/", "/console/app.js", "/console/app.css"]) {
    app.get(path, async (c) => serve(c, (await consoleAssets())[path]));
  }
}

/** The compressed size of the page and its assets, in bytes (the page-weight budget is 200 KB). */
export async function consolePageWeight(): Promise<number> {
  const all = await consoleAssets();
  return Object.values(all).reduce((sum, a) => sum + a.gzip.length, 0);
}
