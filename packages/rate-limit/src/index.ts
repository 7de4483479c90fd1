// The public surface of @postern/rate-limit: every export is named here.
export { VERSION } from './version.js';
