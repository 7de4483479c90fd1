// The public surface of @postern/auth: every export is named here.
export { VERSION } from './version.js';
