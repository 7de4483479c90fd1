import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One message in the outbox, as `GET /dev/outbox` lists it. */
export interface OutboxEntry {
  id: string;
  from: string;
  to: string[];
  subject: string;
  size: number;
  createdAt: number;
}

/** A mail to put in the outbox: the envelope and the whole RFC 5322 message. */
export interface OutboxMessage {
  from: string;
  to: readonly string[];
  raw: string | Buffer;
}

const ID = /^[0-9]{13}-[0-9a-f]{12}$/;

/**
 * The development outbox: every outgoing mail (forwarded and system) becomes one `.eml` file, with
 * the envelope in `X-Postern-Envelope-*` headers on top, so a first look needs no mail provider.
 */
export class Outbox {
  readonly #directory: string;
  readonly #now: () => number;

  constructor(directory: string, now: () => number = Date.now) {
    this.#directory = directory;
    this.#now = now;
  }

  /** Where the files are. */
  get directory(): string {
    return this.#directory;
  }

  /**
   * Writes one message atomically (temporary file, then rename); resolves with its id. The folder
   * and files are the owner's only: system mail holds verification and password-reset tokens.
   */
  async write(message: OutboxMessage): Promise<string> {
    await mkdir(this.#directory, { recursive: true, mode: 0o700 });
    await chmod(this.#directory, 0o700);
    const id = `${this.#now()}-${randomBytes(6).toString('hex')}`;
    const envelope = `X-Postern-Envelope-From: <${message.from}>\r\nX-Postern-Envelope-To: ${message.to.map((to) => `<${to}>`).join(', ')}\r\n`;
    const temporary = join(this.#directory, `.${id}.tmp`);
    await writeFile(
      temporary,
      Buffer.concat([
        Buffer.from(envelope),
        Buffer.isBuffer(message.raw) ? message.raw : Buffer.from(message.raw),
      ]),
      { mode: 0o600 },
    );
    await rename(temporary, join(this.#directory, `${id}.eml`));
    return id;
  }

  /** The messages, newest first. */
  async list(): Promise<OutboxEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.#directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const ids = names
      .filter((name) => name.endsWith('.eml'))
      .map((name) => name.slice(0, -4))
      .filter((id) => ID.test(id));
    const entries = await Promise.all(ids.map((id) => this.#entry(id)));
    return entries.sort((a, b) => b.id.localeCompare(a.id));
  }

  /** The raw `.eml` text of one message (envelope headers included), or null. */
  async read(id: string): Promise<string | null> {
    if (!ID.test(id)) return null;
    try {
      return await readFile(join(this.#directory, `${id}.eml`), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async #entry(id: string): Promise<OutboxEntry> {
    const path = join(this.#directory, `${id}.eml`);
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const headerEnd = text.search(/\r?\n\r?\n/);
    const headers = (headerEnd === -1 ? text : text.slice(0, headerEnd)).replace(
      /\r?\n[ \t]+/g,
      ' ',
    );
    const header = (name: string): string =>
      new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(headers)?.[1]?.trim() ?? '';
    const addresses = (value: string): string[] =>
      [...value.matchAll(/<([^>]*)>/g)].map((match) => match[1] ?? '');
    return {
      id,
      from: addresses(header('X-Postern-Envelope-From'))[0] ?? '',
      to: addresses(header('X-Postern-Envelope-To')),
      subject: header('Subject'),
      size: info.size,
      createdAt: Number(id.slice(0, 13)),
    };
  }
}
