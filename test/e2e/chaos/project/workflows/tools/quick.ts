/** Returns at once: a step as short as a tool call can be. */
export default (input: { step: number | string }) => ({ step: Number(input.step) + 1 });
