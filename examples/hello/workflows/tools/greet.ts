/** Builds a greeting for `input.name`. */
export default (input: { name: string }) => ({ greeting: `Hello, ${input.name}!` });
