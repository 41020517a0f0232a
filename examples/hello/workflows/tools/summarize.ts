/** Sums up the greeting and its shouted form; `ctx` carries the execution ids. */
export default (
  input: { greeting: string; shouted: string },
  ctx: { workflowExecId?: string },
) => ({
  summary: `Said "${input.greeting}", then shouted "${input.shouted}".`,
  length: input.greeting.length,
  execution: ctx?.workflowExecId ?? null,
});
