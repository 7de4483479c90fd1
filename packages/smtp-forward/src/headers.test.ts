import { describe, expect, it } from 'vitest';
import {
  decodeWords,
  encodeDisplayName,
  fieldValue,
  foldLine,
  makeField,
  parseHeaders,
  parseMailbox,
  serialiseHeaders,
} from './headers.js';

describe('headers', () => {
  it('parses folded fields byte-for-byte and serialises them back', () => {
    const block = Buffer.from(
      'From: "A" <a@x.test>\r\nSubject: one\r\n two\r\nX-Bin: \xe9\r\n',
      'latin1',
    );
    const fields = parseHeaders(block);
    expect(fields.map((f) => f.key)).toEqual(['from', 'subject', 'x-bin']);
    expect(fieldValue(fields[1]!)).toBe('one two');
    expect(serialiseHeaders(fields).equals(Buffer.concat([block, Buffer.from('\r\n')]))).toBe(true);
  });

  it('reads mailboxes with and without display names', () => {
    expect(parseMailbox('"Alice \\"A\\"" <alice@x.test>')).toEqual({
      name: 'Alice "A"',
      address: 'alice@x.test',
    });
    expect(parseMailbox('bob@x.test (Bob)')).toEqual({ name: 'Bob', address: 'bob@x.test' });
    expect(parseMailbox('undisclosed')).toBeNull();
  });

  it('never takes an address inside a quoted display name or a comment for the mailbox', () => {
    expect(parseMailbox('"Support <help@relaxed.test>" <sender@origin.test>')).toEqual({
      name: 'Support <help@relaxed.test>',
      address: 'sender@origin.test',
    });
    expect(parseMailbox('sender@origin.test (was <help@relaxed.test>)')?.address).toBe(
      'sender@origin.test',
    );
    expect(parseMailbox('Team: a@one.test, b@two.test;')?.address).toBe('a@one.test');
  });

  it('reads display names as UTF-8 and decodes encoded-words', () => {
    const raw = Buffer.from('Jürgen 日本 <j@x.test>', 'utf8').toString('latin1');
    expect(parseMailbox(raw)).toEqual({ name: 'Jürgen 日本', address: 'j@x.test' });
    expect(parseMailbox('=?utf-8?q?J=C3=BCrgen?= =?UTF-8?B?IE3DvGxsZXI=?= <j@x.test>')?.name).toBe(
      'Jürgen Müller',
    );
    expect(decodeWords('=?iso-8859-1?q?Zo=EB_B?=')).toBe('Zoë B');
    expect(decodeWords('=?x-unknown?q?abc?= plain')).toBe('=?x-unknown?q?abc?= plain');
  });

  it('folds generated lines at spaces, and unfolding gives the line back', () => {
    const line = `Authentication-Results: ${'word '.repeat(60)}end`;
    const folded = foldLine(line);
    expect(folded.split('\r\n').every((part) => part.length <= 78)).toBe(true);
    expect(folded.replace(/\r\n/g, '')).toBe(line);
    expect(foldLine('Short: line')).toBe('Short: line');
  });

  it('encodes display names safely and strips line breaks from generated fields', () => {
    expect(encodeDisplayName('Alice via a')).toBe('"Alice via a"');
    expect(encodeDisplayName('Zoë')).toBe(`=?UTF-8?B?${Buffer.from('Zoë').toString('base64')}?=`);
    const long = encodeDisplayName('日本語の名前がとても長い場合 via alice');
    expect(long.split(' ').every((word) => /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/.test(word))).toBe(
      true,
    );
    expect(long.split(' ').every((word) => word.length <= 75)).toBe(true);
    expect(decodeWords(long)).toBe('日本語の名前がとても長い場合 via alice');
    expect(encodeDisplayName('a\r\nb')).toBe('"a b"');
    expect(makeField('X-Test', 'a\r\nBcc: evil@x.test').raw).toBe('X-Test: a Bcc: evil@x.test\r\n');
  });
});
