/** Sums up the greeting and its shouted form. */
export default (input: { greeting: string; shouted: string }) => ({
  summary: `Said "${input.greeting}", then shouted "${input.shouted}".`,
  length: input.greeting.length,
});
