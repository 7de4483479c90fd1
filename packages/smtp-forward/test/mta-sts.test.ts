import { mkdtempSync, rmSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMtaStsLookup } from '../src/mta-sts.js';
import { selfSignedCertificate } from './helpers.js';

const DOMAINS = ['dest.test', 'a.test', 'b.test', 'c.test'];

/** What the policy host answers for one domain. */
type Answer = (res: ServerResponse) => void;

let dir: string;
let ca: string;
let server: Server;
let port: number;
const answers = new Map<string, Answer>();
const requests: string[] = [];

const policy =
  (text: string): Answer =>
  (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(text);
  };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-sts-'));
  const made = await selfSignedCertificate(
    dir,
    'mta-sts.dest.test',
    DOMAINS.map((domain) => `mta-sts.${domain}`),
  );
  ca = made.cert;
  server = createServer({ key: made.key, cert: ca }, (req, res) => {
    const host = String(req.headers.host).replace(/^mta-sts\./, '');
    requests.push(`${host} ${req.url}`);
    const answer = answers.get(host);
    if (answer === undefined) {
      res.writeHead(404);
      res.end();
    } else answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

/** A DNS whose `_mta-sts` TXT ids tests change at will; policy hosts are on 127.0.0.1. */
function dnsWith(ids: Map<string, string | Error>) {
  return (name: string, rrtype: string): Promise<unknown> => {
    if (rrtype === 'A' && name.startsWith('mta-sts.')) return Promise.resolve(['127.0.0.1']);
    const domain = name.replace(/^_mta-sts\./, '');
    const id = rrtype === 'TXT' ? ids.get(domain) : undefined;
    if (id instanceof Error) return Promise.reject(id);
    if (id === undefined)
      return Promise.reject(Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
    return Promise.resolve([[`v=STSv1; id=${id}`]]);
  };
}

const ENFORCE =
  'version: STSv1\r\nmode: enforce\r\nmx: mx1.dest.test\r\nmx: *.mail.dest.test\r\nmax_age: 86400\r\n';

describe('mtaStsPolicy', () => {
  it('fetches a policy once per id, with CRLF or LF lines, and refetches when the id changes', async () => {
    requests.length = 0;
    const ids = new Map<string, string | Error>([['dest.test', 'one']]);
    answers.set('dest.test', policy(ENFORCE));
    const lookup = createMtaStsLookup({
      resolver: dnsWith(ids),
      port,
      ca,
      allowAddress: () => true,
    });
    const expected = { mode: 'enforce', mx: ['mx1.dest.test', '*.mail.dest.test'] };
    expect(await lookup('Dest.Test')).toEqual(expected);
    expect(await lookup('dest.test')).toEqual(expected);
    expect(requests).toEqual(['dest.test /.well-known/mta-sts.txt']);
    ids.set('dest.test', 'two');
    answers.set(
      'dest.test',
      policy('version: STSv1\nmode: testing\nmx: mx2.dest.test\nmax_age: 600\n'),
    );
    expect(await lookup('dest.test')).toEqual({ mode: 'testing', mx: ['mx2.dest.test'] });
    expect(requests).toHaveLength(2);
  });

  it('keeps a cached policy in force when its TXT record vanishes or DNS fails (no downgrade)', async () => {
    const ids = new Map<string, string | Error>([['dest.test', 'one']]);
    answers.set('dest.test', policy(ENFORCE));
    const lookup = createMtaStsLookup({
      resolver: dnsWith(ids),
      port,
      ca,
      allowAddress: () => true,
    });
    expect((await lookup('dest.test'))?.mode).toBe('enforce');
    ids.delete('dest.test');
    expect((await lookup('dest.test'))?.mode).toBe('enforce');
    ids.set('dest.test', Object.assign(new Error('SERVFAIL'), { code: 'ESERVFAIL' }));
    expect((await lookup('dest.test'))?.mode).toBe('enforce');
    // A new id whose policy cannot be fetched: the cached policy stays too.
    ids.set('dest.test', 'three');
    answers.set('dest.test', (res) => {
      res.writeHead(500);
      res.end();
    });
    expect((await lookup('dest.test'))?.mode).toBe('enforce');
  });

  it('refuses redirects, policies over 64 KiB, invalid max_age and hosts that stall', async () => {
    requests.length = 0;
    const ids = new Map<string, string | Error>([
      ['a.test', '1'],
      ['b.test', '1'],
      ['c.test', '1'],
      ['dest.test', '1'],
    ]);
    const lookup = createMtaStsLookup({
      resolver: dnsWith(ids),
      port,
      ca,
      allowAddress: () => true,
      timeoutMs: 300,
    });
    answers.set('a.test', (res) => {
      res.writeHead(302, { location: `https://mta-sts.b.test:${port}/.well-known/mta-sts.txt` });
      res.end();
    });
    answers.set('b.test', policy(ENFORCE));
    expect(await lookup('a.test')).toBeNull();
    expect(requests).toEqual(['a.test /.well-known/mta-sts.txt']);
    // A policy host that streams without end: the fetch stops at 64 KiB instead of buffering it all.
    let streamed = 0;
    answers.set('c.test', (res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const line = `mx: ${'x'.repeat(60)}.c.test\r\n`;
      const more = (): void => {
        while (!res.destroyed && res.write(line)) streamed += line.length;
        if (!res.destroyed) res.once('drain', more);
      };
      res.write('version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n');
      more();
    });
    expect(await lookup('c.test')).toBeNull();
    answers.set('dest.test', policy(ENFORCE.replace('86400', '31557601')));
    expect(await lookup('dest.test')).toBeNull();
    answers.set('dest.test', () => undefined);
    ids.set('dest.test', '2');
    expect(await lookup('dest.test')).toBeNull();
    expect(streamed).toBeGreaterThan(0);
  });

  it('fetches nothing from a policy host at a loopback or private address unless allowed', async () => {
    requests.length = 0;
    const ids = new Map<string, string | Error>([['dest.test', 'one']]);
    answers.set('dest.test', policy(ENFORCE));
    const lookup = createMtaStsLookup({ resolver: dnsWith(ids), port, ca });
    expect(await lookup('dest.test')).toBeNull();
    expect(requests).toEqual([]);
    const trusting = createMtaStsLookup({
      resolver: dnsWith(ids),
      port,
      ca,
      allowAddress: (address) => address === '127.0.0.1',
    });
    expect((await trusting('dest.test'))?.mode).toBe('enforce');
    expect(requests).toEqual(['dest.test /.well-known/mta-sts.txt']);
  });

  it('evicts the least recently used policy when full, not every policy', async () => {
    requests.length = 0;
    const ids = new Map<string, string | Error>(DOMAINS.map((d) => [d, '1']));
    for (const domain of DOMAINS) answers.set(domain, policy(ENFORCE));
    const lookup = createMtaStsLookup({
      resolver: dnsWith(ids),
      port,
      ca,
      allowAddress: () => true,
      maxEntries: 2,
    });
    await lookup('a.test');
    await lookup('b.test');
    await lookup('a.test');
    await lookup('c.test'); // evicts b.test, the least recently used
    await lookup('a.test');
    expect(requests.map((r) => r.split(' ')[0])).toEqual(['a.test', 'b.test', 'c.test']);
  });
});
