/**
 * The methods a path answers, for a 405: a path that exists with another method was a 404 "No route for
 * DELETE /api/executions" (outside review api35), which reads as a mistyped path.
 *
 * @module
 */
import type { Hono } from "hono";

/**
 * The methods of `app`'s routes whose pattern matches `path`, sorted, with HEAD wherever GET is (Hono answers
 * HEAD with the GET handler); empty for a path no route has. Middleware (`use`, method ALL) is no route.
 */
export function allowedMethods(app: Hono, path: string): string[] {
  const methods = new Set(app.routes.map((r) => r.method).filter((m) => m !== "ALL"));
  const allowed = [...methods].filter((method) => {
    // Every router's result lists its handlers first, each as [[handler, route], params].
    const [handlers] = app.router.match(method, path) as unknown as [[[unknown, { method: string }]][]];
    return handlers.some(([[, route]]) => route.method === method);
  });
  if (allowed.includes("GET")) allowed.push("HEAD");
  return allowed.sort();
}
