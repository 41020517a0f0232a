/**
 * What of a dead-lettered command is kept. `ToolExecute` and `AgentExecute` carry secrets: the env values
 * a tool or agent may read and, for an agent, its definition with the model's credentials rendered in. The
 * dead-letter stream keeps messages for people to inspect, so those fields never reach it: env values are
 * replaced by {@linkcode REDACTED} (the names stay, to debug with), an agent's definition is dropped, and a
 * payload that cannot even be walked field by field is withheld whole. A header says what was withheld.
 *
 * This works on the wire format, not the decoded message, because a message is dead-lettered precisely
 * when it failed to decode (a bad UTF-8 string deep inside still leaves its top-level fields readable).
 *
 * @module
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** Header naming what was withheld from a dead-lettered payload. */
export const DLQ_REDACTED_HEADER = "Compozy-Dlq-Redacted";

/** What an env value becomes in a dead letter. */
export const REDACTED = "[redacted]";

interface SecretFields {
  /** `map<string, string>` fields whose values are secrets. */
  envMaps: readonly number[];
  /** Fields dropped whole, with their names for the header. */
  dropped: Readonly<Record<number, string>>;
}

/** By `<component>.<kind>.<type>` of the subject (proto/tool.proto, proto/agent.proto). */
const SECRET_FIELDS: Readonly<Record<string, SecretFields>> = {
  "tool.cmds.execute": { envMaps: [8], dropped: {} },
  "agent.cmds.execute": { envMaps: [8], dropped: { 7: "definition_json" } },
};

export interface DeadLetterPayload {
  data: Uint8Array;
  /** What was withheld, for {@linkcode DLQ_REDACTED_HEADER}; absent when nothing was. */
  redacted?: string;
}

/** The payload to dead-letter for a message that arrived on `subject`. */
export function redactDeadLetter(subject: string, data: Uint8Array): DeadLetterPayload {
  const [, , component, kind, , type] = subject.split(".");
  const fields = SECRET_FIELDS[`${component}.${kind}.${type}`];
  if (!fields) return { data };
  try {
    return rewrite(data, fields);
  } catch {
    return {
      data: new Uint8Array(0),
      redacted: `the whole payload (${data.length} bytes): it may carry secrets and is not valid Protobuf`,
    };
  }
}

function rewrite(data: Uint8Array, fields: SecretFields): DeadLetterPayload {
  const reader = new BinaryReader(data);
  const writer = new BinaryWriter();
  const withheld = new Set<string>();
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    const raw = reader.skip(wireType, no);
    if (reader.pos > reader.len) throw new RangeError("a field runs past the end of the payload");
    if (fields.dropped[no] !== undefined) {
      withheld.add(fields.dropped[no]);
    } else if (fields.envMaps.includes(no) && wireType === WireType.LengthDelimited) {
      writer.tag(no, WireType.LengthDelimited).bytes(redactEntry(new BinaryReader(raw).bytes()));
      withheld.add("env values");
    } else {
      writer.tag(no, wireType).raw(raw);
    }
  }
  const redacted = withheld.size > 0 ? [...withheld].join(", ") : undefined;
  return { data: writer.finish(), ...(redacted ? { redacted } : {}) };
}

/** A map entry (`key = 1`, `value = 2`) with its key kept and its value replaced. */
function redactEntry(entry: Uint8Array): Uint8Array {
  const reader = new BinaryReader(entry);
  const writer = new BinaryWriter();
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    const raw = reader.skip(wireType, no);
    if (reader.pos > reader.len) throw new RangeError("a map entry runs past its end");
    if (no === 1) writer.tag(1, wireType).raw(raw);
  }
  writer.tag(2, WireType.LengthDelimited).string(REDACTED);
  return writer.finish();
}
