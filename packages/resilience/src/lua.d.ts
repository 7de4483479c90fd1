// Lua scripts are inlined as text: tsup's `text` loader at build time, a vite plugin in tests.
declare module '*.lua' {
  const text: string;
  export default text;
}
