/** Encoding and decoding of bus messages: the only place that turns messages into bytes and back. */
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { DecodeError, errorMessage } from "./errors.ts";
import { schemaFor } from "./catalogue.ts";
import { parseSubject } from "./subjects.ts";

export function encode<S extends DescMessage>(schema: S, message: MessageShape<S>): Uint8Array {
  return toBinary(schema, message);
}

/** Decodes bytes as the given schema; a DecodeError names the subject and the expected message type. */
export function decodeAs<S extends DescMessage>(
  schema: S,
  subject: string,
  data: Uint8Array,
): MessageShape<S> {
  try {
    return fromBinary(schema, data);
  } catch (cause) {
    throw new DecodeError(
      `Cannot decode ${data.byteLength} bytes on '${subject}' as ${schema.typeName}: ${errorMessage(cause)}`,
      subject,
      { cause },
    );
  }
}

/** Decodes a message whose type is given by its subject (`compozy.<corr>.<component>.<kind>.<id>.<type>`). */
export function decodeBySubject(subject: string, data: Uint8Array): MessageShape<DescMessage> {
  let parts;
  try {
    parts = parseSubject(subject);
  } catch (cause) {
    throw new DecodeError(`Cannot decode a message on '${subject}': ${errorMessage(cause)}`, subject, {
      cause,
    });
  }
  const schema = schemaFor(parts.component, parts.kind, parts.type);
  if (!schema) {
    throw new DecodeError(
      `Cannot decode a message on '${subject}': no message type is defined for ${parts.component} ${parts.kind} '${parts.type}'`,
      subject,
    );
  }
  return decodeAs(schema, subject, data);
}
