/**
 * The `nats:` section of `compozy.yaml`: how JetStream keeps Compozy's streams and buckets (replicas, and
 * the limits of the streams whose old messages may go: events, logs, dead letters). The work-queue streams
 * and the state buckets have no limits here: dropping their messages would lose work or state.
 *
 * @module
 */
import { z } from "zod";
import { durationField } from "../config_fields.ts";

/** JSON Schema pattern of a size: bytes, or an integer and a unit (KB, MB, GB, TB are powers of 1024). */
export const SIZE_PATTERN = "^[0-9]+(B|KB|MB|GB|TB)?$";

const UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const SIZE_RE = new RegExp(SIZE_PATTERN);

const streamLimits = (what: string, defaultAge: string) =>
  z.strictObject({
    max_age: durationField(`Messages older than this are removed (default ${defaultAge})`).optional(),
    max_bytes: z.union([z.number().int().positive(), z.string().regex(SIZE_RE)]).describe(
      "Largest size of the stream; the oldest messages go first (default unlimited): bytes, or 512MB, 10GB",
    ).meta({ examples: ["10GB"] }).optional(),
  }).describe(`Limits of the ${what}`).optional();

export const NatsConfigSchema = z.strictObject({
  replicas: z.number().int().min(1).max(5).describe(
    "Copies of every stream and bucket on a JetStream cluster (1 to 5; default 1; 3 needs 3 servers); " +
      "COMPOZY_NATS_REPLICAS wins",
  ).meta({ examples: [3] }).optional(),
  streams: z.strictObject({
    events: streamLimits("state events (execution history)", "30d"),
    logs: streamLimits("log records", "3d"),
    dead_letters: streamLimits("dead letters", "30d"),
  }).describe("Limits of the streams whose old messages may be dropped").optional(),
  agent_memory: z.strictObject({
    max_age: durationField("A conversation not written for this long is forgotten (default 30d)").optional(),
  }).describe("The bucket of agents' memory").optional(),
}).describe("How JetStream stores Compozy's streams and buckets").optional();

export type NatsConfig = z.infer<typeof NatsConfigSchema>;

/**
 * Converts a size to bytes.
 *
 * @throws {RangeError} naming the value and the accepted forms.
 */
export function parseSize(size: number | string): number {
  const match = typeof size === "string" ? SIZE_RE.exec(size) : null;
  const bytes = typeof size === "number"
    ? size
    : match
    ? parseInt(size, 10) * UNIT_BYTES[match[1] ?? "B"]
    : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new RangeError(`Cannot parse size ${JSON.stringify(size)}: expected bytes or 512MB, 10GB, 1TB`);
  }
  return bytes;
}
