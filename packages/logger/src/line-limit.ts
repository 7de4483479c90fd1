import { BACKSLASH, CLOSE_BRACE, COMMA, OPEN_BRACE, QUOTE, jsonValueEnd } from './redaction.js';

/** Default of `maxStringLength`: longer strings (values and keys) are cut. */
export const DEFAULT_MAX_STRING_LENGTH = 16_384;
/** Default of `maxLineLength`: 256 KiB, the event limit of common log pipelines. */
export const DEFAULT_MAX_LINE_LENGTH = 262_144;
/** Smallest `maxStringLength` accepted: room for every key pino itself writes. */
export const MIN_MAX_STRING_LENGTH = 16;
/** Smallest `maxLineLength` accepted: room for `level`, `time`, `msg` and the drop marker. */
export const MIN_MAX_LINE_LENGTH = 1_024;

/** Options of {@link createLineLimiter}, in characters (UTF-16 code units, as `String.length` counts). */
export interface LineLimitOptions {
  /** Longest string (value or key) kept whole. */
  maxStringLength: number;
  /** Longest line written, its newline included. */
  maxLineLength: number;
}

const COLON = 0x3a;
/** Members never dropped when a line has too many fields: what makes a line a log line. */
const PROTECTED_KEYS: ReadonlySet<string> = new Set(['"level"', '"time"', '"msg"']);
/** Upper bound of the `,"logTruncated":"… fields (… chars) dropped"` member. */
const DROP_MARKER_RESERVE = 80;

/** Index just past the JSON string that opens at `start`; jumps from quote to quote. */
function stringEnd(line: string, start: number): number {
  let quote = line.indexOf('"', start + 1);
  while (quote !== -1) {
    let backslashes = 0;
    while (line.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return quote + 1;
    quote = line.indexOf('"', quote + 1);
  }
  return line.length;
}

function valueMarker(length: number): string {
  return `"[truncated ${String(length)} chars]"`;
}

/** The JSON string token `token` cut to `max` characters plus a marker, or undefined if it fits. */
function cutString(token: string, max: number): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(token);
  } catch {
    // Not a string pino wrote (it cannot happen): the whole token goes rather than half of it.
    return valueMarker(token.length);
  }
  if (typeof value !== 'string' || value.length <= max) return undefined;
  let keep = max;
  const last = value.charCodeAt(keep - 1);
  // A high surrogate without its pair would be written as a lone `\ud83d`: cut before it.
  if (last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return JSON.stringify(
    `${value.slice(0, keep)}...[truncated ${String(value.length - keep)} chars]`,
  );
}

/** Cuts every string token (key or value) longer than `max`; returns `line` itself when none is. */
function cutStrings(line: string, max: number): string {
  const parts: string[] = [];
  let from = 0;
  // Outside strings JSON has no quotes, so every quote found from here opens a string.
  let start = line.indexOf('"');
  while (start !== -1) {
    const end = stringEnd(line, start);
    // The escaped length is never below the real one: only a long token is decoded.
    if (end - start - 2 > max) {
      const replacement = cutString(line.slice(start, end), max);
      if (replacement !== undefined) {
        parts.push(line.slice(from, start), replacement);
        from = end;
      }
    }
    start = line.indexOf('"', end);
  }
  if (parts.length === 0) return line;
  parts.push(line.slice(from));
  return parts.join('');
}

interface Member {
  /** The `"key":` text. */
  readonly key: string;
  readonly value: string;
  readonly protected: boolean;
}

/** Splits a one-object JSON line into its top-level members and what follows `}`; null if it is not one. */
function topLevelMembers(line: string): { members: Member[]; tail: string } | null {
  if (line.charCodeAt(0) !== OPEN_BRACE) return null;
  const members: Member[] = [];
  let index = 1;
  if (line.charCodeAt(index) === CLOSE_BRACE) return { members, tail: line.slice(index + 1) };
  for (;;) {
    if (line.charCodeAt(index) !== QUOTE) return null;
    const keyEnd = stringEnd(line, index);
    if (line.charCodeAt(keyEnd) !== COLON) return null;
    const valueEnd = jsonValueEnd(line, keyEnd + 1);
    const keyText = line.slice(index, keyEnd);
    members.push({
      key: line.slice(index, keyEnd + 1),
      value: line.slice(keyEnd + 1, valueEnd),
      protected: PROTECTED_KEYS.has(keyText),
    });
    const next = line.charCodeAt(valueEnd);
    if (next === CLOSE_BRACE) return { members, tail: line.slice(valueEnd + 1) };
    if (next !== COMMA) return null;
    index = valueEnd + 1;
  }
}

function fallbackLine(line: string): string {
  return `${JSON.stringify({ logTruncated: `line of ${String(line.length)} chars dropped` })}\n`;
}

/**
 * Brings a line longer than `max` down to `max`: first the largest top-level values are replaced
 * by `"[truncated N chars]"`; when the members' keys alone are too many for that to be enough,
 * members are dropped from the end (never `level`, `time` or `msg`) and counted in `logTruncated`.
 */
function boundLine(line: string, max: number): string {
  const parsed = topLevelMembers(line);
  if (parsed === null) return fallbackLine(line);
  const { members, tail } = parsed;
  const values = members.map((member) => member.value);
  const markers = members.map((member) => valueMarker(member.value.length));
  const smallest = (index: number): number =>
    Math.min((values[index] as string).length, (markers[index] as string).length);
  const size = (index: number, value: number): number =>
    (members[index] as Member).key.length + value + 1;
  // Braces, newline, and one comma per member (one too many, which only errs on the safe side).
  let total = 2 + tail.length;
  let least = total;
  for (let index = 0; index < members.length; index += 1) {
    total += size(index, (values[index] as string).length);
    least += size(index, smallest(index));
  }
  const kept = members.map(() => true);
  let droppedFields = 0;
  let droppedChars = 0;
  if (least > max) {
    least += DROP_MARKER_RESERVE;
    total += DROP_MARKER_RESERVE;
    for (let index = members.length - 1; index >= 0 && least > max; index -= 1) {
      if ((members[index] as Member).protected) continue;
      kept[index] = false;
      least -= size(index, smallest(index));
      const full = size(index, (values[index] as string).length);
      total -= full;
      droppedFields += 1;
      droppedChars += full - 1;
    }
  }
  // The biggest savings first; level, time and msg only when nothing else is left.
  const order = members
    .map((member, index) => ({
      index,
      gain: (values[index] as string).length - (markers[index] as string).length,
      last: member.protected,
    }))
    .filter((entry) => kept[entry.index] === true && entry.gain > 0)
    .sort((a, b) => Number(a.last) - Number(b.last) || b.gain - a.gain);
  for (const { index, gain } of order) {
    if (total <= max) break;
    values[index] = markers[index] as string;
    total -= gain;
  }
  const body: string[] = [];
  members.forEach((member, index) => {
    if (kept[index] === true) body.push(member.key + (values[index] as string));
  });
  if (droppedFields > 0) {
    body.push(
      `"logTruncated":"${String(droppedFields)} fields (${String(droppedChars)} chars) dropped"`,
    );
  }
  const bounded = `{${body.join(',')}}${tail}`;
  return bounded.length <= max ? bounded : fallbackLine(line);
}

/**
 * Returns a function that bounds one serialized pino line: strings (values and keys) longer than
 * `maxStringLength` are cut and end with `...[truncated N chars]`, then a line still longer than
 * `maxLineLength` loses its largest top-level values (see `boundLine`). A line within both
 * bounds is returned as is, the same string, after one length check: nothing is copied.
 */
export function createLineLimiter(options: LineLimitOptions): (line: string) => string {
  const { maxStringLength, maxLineLength } = options;
  // No string in a line can be longer than the line without its two quotes.
  const untouched = Math.min(maxStringLength + 2, maxLineLength);
  return (line: string): string => {
    if (line.length <= untouched) return line;
    const cut = cutStrings(line, maxStringLength);
    return cut.length <= maxLineLength ? cut : boundLine(cut, maxLineLength);
  };
}
