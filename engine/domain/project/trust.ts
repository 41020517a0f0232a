/**
 * Which parts of a definition with schema errors the checks can rely on. The definition is rebuilt without the
 * values that have an error, at the depth the error names, so that one bad sub-field (`config.temperature:
 * hot`) leaves its siblings (`config.$model`) checked.
 *
 * @module
 */

import type { PathSegment } from "../diagnostics.ts";
import { formatPath } from "./yaml_source.ts";

/** Whether the value at a path (relative to the definition) is as the file wrote it, and of its schema's shape. */
export type Trust = (path: readonly PathSegment[]) => boolean;

/** A definition's valid part, and what of it can be trusted. */
export interface Pruned {
  value: Record<string, unknown>;
  /** Undefined when nothing was left out: every path is trusted. */
  trust?: Trust;
}

/**
 * `item` (declared at `base`) without the values that have schema errors. An error names a path: a mapping
 * there is kept with its fields that have no error of their own, but a field it lacks cannot be trusted (the
 * error may be that a required one is missing); any other value there is left out. A list loses no single
 * item, which would shift the indexes every other message names: a list with an item left out is left out
 * whole.
 */
export function pruneErrors(
  item: Record<string, unknown>,
  base: readonly PathSegment[],
  errors: readonly { path: string }[],
): Pruned {
  const at = new Set(errors.map((e) => e.path));
  const under = (path: readonly PathSegment[]): boolean => {
    if (path.length === 0) return errors.length > 0; // a definition in its own file: every error is its own
    const prefix = formatPath(path);
    return errors.some((e) =>
      e.path === prefix || e.path.startsWith(`${prefix}.`) || e.path.startsWith(`${prefix}[`)
    );
  };
  const dropped: PathSegment[][] = [];
  const incomplete: PathSegment[][] = [];
  const DROP = Symbol("drop");
  const prune = (value: unknown, rel: PathSegment[]): unknown => {
    const path = [...base, ...rel];
    if (!under(path)) return value;
    if (isMapping(value)) {
      if (at.has(formatPath(path))) incomplete.push(rel);
      const kept: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value)) {
        const pruned = prune(child, [...rel, key]);
        if (pruned !== DROP) kept[key] = pruned;
      }
      return kept;
    }
    if (Array.isArray(value) && !at.has(formatPath(path))) {
      const items = value.map((child, i) => prune(child, [...rel, i]));
      if (!items.includes(DROP)) return items;
    }
    dropped.push(rel);
    return DROP;
  };
  const value = prune(item, []) as Record<string, unknown>;
  if (dropped.length === 0 && incomplete.length === 0) return { value };
  return { value, trust: trustOf(item, dropped, incomplete) };
}

function trustOf(item: unknown, dropped: PathSegment[][], incomplete: PathSegment[][]): Trust {
  const startsWith = (path: readonly PathSegment[], prefix: readonly PathSegment[]) =>
    prefix.length <= path.length && prefix.every((seg, i) => path[i] === seg);
  return (path) => {
    // Left out, or something inside it left out.
    if (dropped.some((d) => startsWith(path, d) || startsWith(d, path))) return false;
    // Absent beside a mapping with an error of its own: maybe the missing required field.
    return !incomplete.some((m) =>
      startsWith(path, m) && path.length > m.length && !has(item, path, m.length + 1)
    );
  };
}

/** Whether `value` has something at the first `depth` segments of `path`. */
function has(value: unknown, path: readonly PathSegment[], depth: number): boolean {
  let node = value;
  for (const seg of path.slice(0, depth)) {
    if (typeof node !== "object" || node === null) return false;
    node = (node as Record<PathSegment, unknown>)[seg];
  }
  return node !== undefined;
}

/** Whether a parsed YAML value is a mapping (what a definition or a task must be). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
