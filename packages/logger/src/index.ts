// The public surface of @postern/logger: every export is named here.
export { createLogger } from './create-logger.js';
export type { CreateLoggerOptions, RedactOptions } from './create-logger.js';
export { maskEmail } from './mask.js';
export { withCorrelation, sanitizeCorrelationId } from './correlation.js';
export type { ChildLogger, CorrelationOptions } from './correlation.js';
export { DEFAULT_REDACT_KEYS, DEFAULT_REDACT_SUFFIXES, redactPaths } from './redaction.js';
export { LoggerError } from './errors.js';
export type { LoggerErrorCode } from './errors.js';
export type { RequireFunction } from './pretty.js';
export type { Logger, LevelWithSilent, DestinationStream } from 'pino';
export { VERSION } from './version.js';
