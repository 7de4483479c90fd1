// The public surface of @postern/logger: every export is named here.
export { VERSION } from './version.js';
