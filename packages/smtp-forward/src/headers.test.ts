import { describe, expect, it } from 'vitest';
import {
  encodeDisplayName,
  fieldValue,
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
    expect(parseMailbox('bob@x.test (Bob)')).toEqual({ name: '', address: 'bob@x.test' });
    expect(parseMailbox('undisclosed')).toBeNull();
  });

  it('encodes display names safely and strips line breaks from generated fields', () => {
    expect(encodeDisplayName('Alice via a')).toBe('"Alice via a"');
    expect(encodeDisplayName('Zoë')).toBe(`=?UTF-8?B?${Buffer.from('Zoë').toString('base64')}?=`);
    expect(makeField('X-Test', 'a\r\nBcc: evil@x.test').raw).toBe('X-Test: a Bcc: evil@x.test\r\n');
  });
});
