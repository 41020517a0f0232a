/** Upper-cases `input.text`. */
export default (input: { text: string }) => ({ text: input.text.toUpperCase() });
