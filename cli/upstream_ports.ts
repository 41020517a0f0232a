/**
 * The local addresses the stack itself talks to for a project: each model's `base_url` and each MCP `url`
 * server on this host. No sandbox may reach or listen on them, whatever its `net` grant: while such an
 * endpoint was down or restarting, a `net: true` tool listened on its port and received the provider key
 * (from `.env`) and other executions' prompts, and could answer in the model's place (red team 8 S7). They
 * join the stack's own ports in `COMPOZY_SANDBOX_DENY_NET`, which the runtime expands to every local spelling
 * of each port (pkg/runtime/net_deny.ts).
 *
 * A remote endpoint is left out: a sandbox cannot listen on another host's address, and denying its port
 * would keep tools from public services on the same port (443).
 *
 * @module
 */
import type { Project } from "../engine/domain/project/types.ts";

/** Ollama's API when a model names no `base_url`. */
const OLLAMA_DEFAULT = "http://127.0.0.1:11434";

/**
 * `host:port` of every local endpoint `project` declares. A URL written as a template is read when it is
 * `{{ .env.NAME }}` followed by the rest (from the project's env file, then the process's environment);
 * another template cannot be known before a call and is left out.
 */
export function localUpstreams(project: Project, env: (name: string) => string | undefined): string[] {
  const urls: string[] = [];
  for (const model of project.models.values()) {
    const base = (model as { base_url?: string }).base_url;
    if (base) urls.push(base);
    else if (model.provider === "ollama") urls.push(OLLAMA_DEFAULT);
  }
  for (const server of project.mcp.values()) if (server.url) urls.push(server.url);
  const out = new Set<string>();
  for (const written of urls) {
    const url = parse(rendered(written, project, env));
    if (!url || !isLocalHost(url.hostname)) continue;
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    // `URL` keeps an IPv6 host in brackets, as COMPOZY_SANDBOX_DENY_NET writes it.
    out.add(`${url.hostname}:${port}`);
  }
  return [...out].sort();
}

function rendered(url: string, project: Project, env: (name: string) => string | undefined): string {
  const match = /^\{\{\s*\.env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}(.*)$/s.exec(url.trim());
  if (!match) return url;
  return (project.envFile[match[1]] ?? env(match[1]) ?? "") + match[2];
}

function parse(url: string): URL | undefined {
  if (url.includes("{{")) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Loopback, the unspecified addresses, this host's name and the addresses of its interfaces. */
function isLocalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost") || /^127\./.test(host)) return true;
  if (host === "::1" || host === "0.0.0.0" || host === "::" || host === Deno.hostname().toLowerCase()) {
    return true;
  }
  return Deno.networkInterfaces().some((i) => i.address.replace(/%.*$/, "").toLowerCase() === host);
}
