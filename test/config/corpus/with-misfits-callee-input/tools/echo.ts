export default (input: unknown) => ({ got: input });
