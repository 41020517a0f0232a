/**
 * `/docs`: the OpenAPI document rendered as one self-contained HTML page (no script, no CDN), so that it
 * works on a machine without Internet access.
 *
 * @module
 */

type JsonObject = Record<string, unknown>;

/** Renders an OpenAPI 3.1 document as an HTML page. */
export function renderDocsPage(doc: JsonObject): string {
  const info = doc.info as { title: string; version: string; description?: string };
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, JsonObject>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = (op.tags as string[] | undefined)?.[0] ?? "other";
      const list = byTag.get(tag) ?? [];
      list.push(renderOperation(method, path, op));
      byTag.set(tag, list);
    }
  }
  const sections = [...byTag].map(([tag, ops]) =>
    `<section><h2 id="${escape(tag)}">${escape(tag)}</h2>${ops.join("")}</section>`
  ).join("");
  const toc = [...byTag.keys()].map((tag) => `<a href="#${escape(tag)}">${escape(tag)}</a>`).join(" · ");
  const schemas = Object.entries(((doc.components as JsonObject)?.schemas ?? {}) as JsonObject)
    .map(([name, schema]) =>
      `<details id="schema-${escape(name)}"><summary>${escape(name)}</summary>${json(schema)}</details>`
    ).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escape(info.title)} ${escape(info.version)}</title><style>${STYLE}</style></head>
<body><header><h1>${escape(info.title)} <small>${escape(info.version)}</small></h1>
<p>${escape(info.description ?? "")}</p><p>OpenAPI 3.1 document: <a href="/openapi.json">/openapi.json</a></p>
<nav>${toc} · <a href="#schemas">schemas</a></nav></header>
<main>${sections}<section><h2 id="schemas">schemas</h2>${schemas}</section></main></body></html>`;
}

function renderOperation(method: string, path: string, op: JsonObject): string {
  const params = (op.parameters as JsonObject[] | undefined) ?? [];
  const paramRows = params.map((p) =>
    `<tr><td><code>${escape(String(p.name))}</code></td><td>${escape(String(p.in))}</td>` +
    `<td>${p.required ? "yes" : ""}</td><td>${escape(String(p.description ?? ""))}</td></tr>`
  ).join("");
  const body = op.requestBody as JsonObject | undefined;
  const bodySchema = (body?.content as Record<string, JsonObject> | undefined)?.["application/json"]?.schema;
  const responses = Object.entries(op.responses as Record<string, JsonObject>).map(([status, r]) =>
    `<li><b>${escape(status)}</b> ${escape(String(r.description))}</li>`
  ).join("");
  const open = op.security && (op.security as unknown[]).length === 0
    ? " <span class=open>no auth</span>"
    : "";
  return `<article><h3><span class="m ${escape(method)}">${escape(method.toUpperCase())}</span> ` +
    `<code>${escape(path)}</code>${open}</h3><p>${escape(String(op.summary ?? ""))}</p>` +
    (op.description ? `<p>${escape(String(op.description))}</p>` : "") +
    (paramRows
      ? `<table><tr><th>parameter</th><th>in</th><th>required</th><th></th></tr>${paramRows}</table>`
      : "") +
    (body ? `<p>Body: ${escape(String(body.description ?? ""))}</p>${json(bodySchema)}` : "") +
    `<ul>${responses}</ul></article>`;
}

function json(value: unknown): string {
  return `<pre>${escape(JSON.stringify(value, null, 2))}</pre>`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222}
h1 small{color:#888;font-weight:normal}h2{border-bottom:1px solid #ddd;margin-top:2rem}
article{border:1px solid #e4e4e4;border-radius:6px;padding:.5rem 1rem;margin:.75rem 0}
h3{font-size:1rem;margin:.25rem 0}.m{display:inline-block;min-width:3.5rem;text-align:center;border-radius:4px;
color:#fff;padding:0 .4rem;font-size:.8rem}.get{background:#2b7de9}.post{background:#1f9d55}
.open{font-size:.75rem;color:#b35c00;margin-left:.5rem}table{border-collapse:collapse;font-size:.9rem}
td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left}pre{background:#f7f7f7;padding:.5rem;
overflow:auto;font-size:.8rem}details summary{cursor:pointer;font-family:monospace}`;
