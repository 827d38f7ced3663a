// drizzle-kit generate writes migrations into drizzle/ from schema.mjs
// (no database needed); `push` is configured by the tests.
export default { dialect: 'postgresql', schema: './schema.mjs', out: './drizzle' };
