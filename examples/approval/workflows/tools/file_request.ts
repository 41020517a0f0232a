/**
 * Records a request. The ticket is derived from the task execution id, the idempotency key of this step:
 * a retried step files the same ticket again instead of a second one.
 */
export default (input: { title: string; amount: number }, ctx: { taskExecId?: string }) => ({
  ticket: `REQ-${(ctx?.taskExecId ?? crypto.randomUUID()).slice(-8)}`,
  title: input.title,
  amount: input.amount,
});
