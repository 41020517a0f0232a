/** Trims a text and collapses runs of white space. */
export default (input: { text: string; position: number }) => ({
  text: input.text.trim().replace(/\s+/g, " "),
  position: input.position,
});
