// The public surface of @postern/sync-queue: every export is named here.
export { VERSION } from './version.js';
