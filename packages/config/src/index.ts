// The public surface of @postern/config: every export is named here.
export { VERSION } from './version.js';
