// The public surface of @postern/resilience: every export is named here.
export { VERSION } from './version.js';
