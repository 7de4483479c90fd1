/**
 * The one list of test projects. Vitest 4 ignores a bare `vitest.workspace.ts`, so the root
 * `vitest.config.ts` imports this array under `test.projects`. Every folder matched here has
 * its own `vitest.config.ts` built with `defineProject`.
 */
const projects: string[] = ['packages/*', 'examples/*'];

export default projects;
