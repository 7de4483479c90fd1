// Redis scripts are plain .lua files, inlined as text by tsup at build time and by a vite
// plugin in tests.
declare module '*.lua' {
  const text: string;
  export default text;
}
