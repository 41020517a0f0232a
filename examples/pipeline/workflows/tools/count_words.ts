/** Counts the words of the cleaned texts (the outputs of `normalize`). */
export default (input: { texts: { text: string }[] }) => ({
  count: input.texts.reduce((sum, t) => sum + (t.text ? t.text.split(" ").length : 0), 0),
});
