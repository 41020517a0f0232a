/** The fallback answer when the weather could not be fetched. */
export default (input: { reason?: string }) => ({
  message: `Sorry, no advice today${input.reason ? ` (${input.reason})` : ""}.`,
});
