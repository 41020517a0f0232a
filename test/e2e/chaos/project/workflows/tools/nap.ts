/** Takes a little time, so that executions are mid-step when the chaos script kills NATS. */
export default async (input: { step: number | string }) => {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { step: Number(input.step) + 1 };
};
