/**
 * A tool is a TypeScript module whose default export takes the task's input (checked against the tool's
 * `input` schema) and returns its output. It runs in a sandboxed worker with no permissions unless the
 * tool's `permissions` grant some.
 */
export default function formatGreeting(input: { name: string }): { greeting: string } {
  return { greeting: `Hello, ${input.name}!` };
}
