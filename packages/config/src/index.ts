// The public surface of @postern/config: every export is named here.
export { loadConfig, MAX_FILE_BYTES, modeFromNodeEnv } from './load.js';
export type { Config, DeepReadonly, InferShape, LoadConfigOptions, Mode, Shape } from './load.js';
export {
  bool,
  duration,
  email,
  integer,
  list,
  number,
  parseDuration,
  port,
  url,
} from './coerce.js';
export type {
  DurationOptions,
  EnvSchema,
  ListOptions,
  PortOptions,
  RangeOptions,
  StringInputSchema,
  UrlOptions,
} from './coerce.js';
export { entropyBits, KNOWN_DEFAULT_SECRETS, Secret, secret } from './secret.js';
export type {
  SecretOptions,
  SecretPolicy,
  SecretSchema,
  SecretWithDefaultSchema,
} from './secret.js';
export { ConfigError } from './errors.js';
export type {
  ConfigErrorCode,
  ConfigIssue,
  ConfigIssueCode,
  ConfigWarning,
  ConfigWarningCode,
} from './errors.js';
export { devDefault, devOptional } from './dev-default.js';
export { toEnvName } from './env-name.js';
