/** The package version, for diagnostics. */
export const VERSION: string = '0.0.0';
