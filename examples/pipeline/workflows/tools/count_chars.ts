/** Counts the characters of the cleaned texts (the outputs of `normalize`). */
export default (input: { texts: { text: string }[] }) => ({
  count: input.texts.reduce((sum, t) => sum + t.text.length, 0),
});
