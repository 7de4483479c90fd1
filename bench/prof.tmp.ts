import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
const run = promisify(execFile);
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { SmtpForwarder, staticResolver } from '@postern/smtp-forward';
const full = process.argv[2] === 'full';
const N = Number(process.argv[3] ?? 3000);
function key() { const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}` }; }
const dkim = key(), arc = key();
const records: Record<string, string> = { 'sel._domainkey.fwd.test': dkim.record, 'arc._domainkey.fwd.test': arc.record, 'origin.test': 'v=spf1 ip4:127.0.0.1 -all', 'fwd.test': 'v=spf1 ip4:127.0.0.1 -all', '_dmarc.origin.test': 'v=DMARC1; p=reject' };
const testDns = (name: string, rrtype: string) => { const v = rrtype === 'TXT' ? records[name.toLowerCase()] : undefined; if (v === undefined) return Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' })); return Promise.resolve([[v.slice(0,255), v.slice(255)].filter(Boolean)]); };
const sinkPort = 24000 + Math.floor(Math.random() * 1000);
const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'nobody', `127.0.0.1:${sinkPort}`, '512'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 300));
const fwd = new SmtpForwarder({ domain: 'fwd.test', resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
  transport: { relays: [{ host: '127.0.0.1', port: sinkPort }], maxConnections: 10 }, srs: { secrets: ['bench-secret-0123456789abcdef'] },
  limits: { maxConnectionsPerIp: 1000, maxConnections: 1000, maxMessagesPerSession: 1e6, maxMessageBytes: 64 * 2 ** 20 },
  ...(full ? { dkim: { selector: 'sel', privateKey: dkim.privateKey }, arc: { selector: 'arc', privateKey: arc.privateKey }, authentication: { dnsResolver: testDns as never }, fromRewrite: 'dmarc-strict' as const } : { fromRewrite: 'never' as const }) });
const { port } = await fwd.listen({ port: 0, host: '127.0.0.1' });
const src = (n: number) => run('/usr/sbin/smtp-source', ['-d', '-m', String(n), '-s', '10', '-l', '4096', '-f', 'sender@origin.test', '-t', 'alice@fwd.test', `127.0.0.1:${port}`]);
await src(500);
const ticks = () => Object.fromEntries(readdirSync('/proc/self/task').map((t) => { const s = readFileSync(`/proc/self/task/${t}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return [s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')) + ':' + t, Number(f[11]) + Number(f[12])]; }));
const a = ticks(); const t0 = performance.now();
await src(N);
const ms = performance.now() - t0; const b = ticks();
const byName: Record<string, number> = {};
for (const [k, v] of Object.entries(b)) { const name = k.split(':')[0]!.replace(/\d+$/, ''); byName[name] = (byName[name] ?? 0) + (v - (a[k] ?? 0)); }
console.log(full ? 'full' : 'plain', Math.round(N / ms * 1000), 'msgs/s');
for (const [k, v] of Object.entries(byName)) if (v > 0) console.log(' ', k, (v * 10000 / N).toFixed(0), 'us cpu/msg');
await fwd.close({ timeoutMs: 1000 }); sink.kill();
