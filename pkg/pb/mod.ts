// The generated Protobuf-ES code for the messages of proto/ (regenerate with `deno task protos`).
export * from "./agent_pb.ts";
export * from "./common_pb.ts";
export * from "./log_pb.ts";
export * from "./task_pb.ts";
export * from "./tool_pb.ts";
export * from "./workflow_pb.ts";
