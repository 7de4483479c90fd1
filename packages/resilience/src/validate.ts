import { InvalidOptionError } from './errors.js';

/** Throws unless `value` is a finite number >= `min` (and an integer when asked). */
export function checkNumber(
  option: string,
  value: number,
  {
    min = 0,
    integer = false,
    max = Infinity,
    allowInfinity = false,
  }: { min?: number; integer?: boolean; max?: number; allowInfinity?: boolean } = {},
): number {
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    throw new InvalidOptionError(
      option,
      allowInfinity ? 'must be a number' : 'must be a finite number',
      value,
    );
  }
  if (integer && Number.isFinite(value) && !Number.isInteger(value)) {
    throw new InvalidOptionError(option, 'must be an integer', value);
  }
  if (value < min) throw new InvalidOptionError(option, `must be >= ${min}`, value);
  if (value > max) throw new InvalidOptionError(option, `must be <= ${max}`, value);
  return value;
}

/** Throws unless `value` is a function or undefined. */
export function checkFunction(option: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionError(option, 'must be a function', value);
  }
}
