/** Stable codes of {@link ConfigError}: what went wrong, for programs to branch on. */
export type ConfigErrorCode =
  /** One or more variables are missing or invalid; `issues` lists every one. */
  | 'CONFIG_INVALID'
  /** The shape itself is wrong (a reserved key, two fields on one variable): a programming error. */
  | 'SHAPE_INVALID';

/** Why one variable was refused. Codes are stable; messages are for people. */
export type ConfigIssueCode =
  | 'MISSING'
  | 'INVALID'
  | 'FILE_CONFLICT'
  | 'FILE_MISSING'
  | 'FILE_UNREADABLE'
  | 'ENV_FILE_UNREADABLE'
  | 'SECRET_DEFAULT'
  | 'SECRET_KNOWN_DEFAULT'
  | 'SECRET_REPEATED'
  | 'SECRET_TOO_SHORT'
  | 'SECRET_LOW_ENTROPY';

/** One problem with one variable. Never carries the variable's value. */
export interface ConfigIssue {
  /** Stable machine-readable reason. */
  readonly code: ConfigIssueCode;
  /** Where the value sits in the returned object, e.g. `['smtp', 'port']`; list items add an index. */
  readonly path: readonly (string | number)[];
  /** The environment variable that was read, e.g. `SMTP_PORT` (or the `.env` file for `ENV_FILE_UNREADABLE`). */
  readonly env: string;
  /** What is wrong, without the value. */
  readonly message: string;
}

/** Codes of {@link ConfigWarning}: secret weaknesses tolerated outside production, and unknown variables. */
export type ConfigWarningCode =
  | 'SECRET_DEFAULT'
  | 'SECRET_KNOWN_DEFAULT'
  | 'SECRET_REPEATED'
  | 'SECRET_TOO_SHORT'
  | 'SECRET_LOW_ENTROPY'
  | 'UNKNOWN_VARIABLE';

/** Something tolerated in development that production would refuse. Never carries the value. */
export interface ConfigWarning {
  readonly code: ConfigWarningCode;
  readonly path: readonly (string | number)[];
  readonly env: string;
  readonly message: string;
}

const POSTERN_ERROR = Symbol.for('postern.error');
const CONFIG_ERROR = Symbol.for('postern.config.error');

function describeIssue(issue: ConfigIssue): string {
  const where = issue.path.length > 0 ? ` (${issue.path.join('.')})` : '';
  return `  - ${issue.env}${where}: ${issue.message}`;
}

/**
 * The one error class of @postern/config. `code` says what kind of failure it is; for
 * `CONFIG_INVALID`, `issues` lists every problem at once. No value of any variable appears in
 * the message or the issues.
 */
export class ConfigError extends Error {
  /** Marks every Postern error, across duplicate copies of a package. */
  readonly [POSTERN_ERROR] = true as const;
  /** Marks errors of this package, across duplicate copies of it. */
  readonly [CONFIG_ERROR] = true as const;
  override readonly name = 'ConfigError' as const;
  /** Stable machine-readable kind of failure. */
  readonly code: ConfigErrorCode;
  /** Every problem found, in shape order. Empty for `SHAPE_INVALID`. */
  readonly issues: readonly ConfigIssue[];
  /** Warnings gathered before the failure (development-mode secret weaknesses, unknown variables). */
  readonly warnings: readonly ConfigWarning[];

  constructor(
    code: ConfigErrorCode,
    message: string,
    details: { issues?: readonly ConfigIssue[]; warnings?: readonly ConfigWarning[] } = {},
  ) {
    super(message);
    this.code = code;
    this.issues = Object.freeze([...(details.issues ?? [])]);
    this.warnings = Object.freeze([...(details.warnings ?? [])]);
  }

  /** Builds the `CONFIG_INVALID` error with a readable multi-line message listing every issue. */
  static fromIssues(
    issues: readonly ConfigIssue[],
    warnings: readonly ConfigWarning[] = [],
  ): ConfigError {
    const count = issues.length === 1 ? '1 problem' : `${String(issues.length)} problems`;
    const message = [`Invalid configuration (${count}):`, ...issues.map(describeIssue)].join('\n');
    return new ConfigError('CONFIG_INVALID', message, { issues, warnings });
  }

  /** True for a ConfigError from any copy of this package (where `instanceof` fails across copies). */
  static isInstance(value: unknown): value is ConfigError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[POSTERN_ERROR] === true &&
      (value as Record<symbol, unknown>)[CONFIG_ERROR] === true
    );
  }
}
