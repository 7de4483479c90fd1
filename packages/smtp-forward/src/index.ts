// The public surface of @postern/smtp-forward: every export is named here.
export { VERSION } from './version.js';
