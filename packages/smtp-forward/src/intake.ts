import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';

/** Limits applied while a message streams in. */
export interface IntakeOptions {
  /** Bytes after which the message is refused (552). */
  maxMessageBytes: number;
  /** Bytes of header allowed before the body starts. */
  maxHeaderBytes: number;
  /** Bytes kept in memory before the body spills to a file. */
  memoryBytes: number;
  /** Directory for spill files. */
  spoolDir: string;
  /** Told the size of every chunk read, before any check, and of every chunk read back from a spill file. */
  onBytes?: (bytes: number) => void;
}

/** A message body kept in memory or spilled to a file; read it as many times as needed. */
export class Spool {
  #chunks: Buffer[] = [];
  #memory = 0;
  #file: FileHandle | undefined;
  #path: string | undefined;
  size = 0;

  /** `onBytes` is told the size of every chunk read back from a spill file. */
  constructor(
    private readonly memoryBytes: number,
    private readonly dir: string,
    private readonly onBytes?: (bytes: number) => void,
  ) {}

  /** Appends bytes; spills everything to a private file once the memory budget is passed. */
  async write(chunk: Buffer): Promise<void> {
    this.size += chunk.length;
    if (this.#file === undefined && this.#memory + chunk.length <= this.memoryBytes) {
      this.#chunks.push(chunk);
      this.#memory += chunk.length;
      return;
    }
    if (this.#file === undefined) {
      this.#path = join(this.dir, `postern-${randomUUID()}.part`);
      this.#file = await open(this.#path, 'wx', 0o600);
      const held = Buffer.concat(this.#chunks);
      this.#chunks = [];
      this.#memory = 0;
      await this.#file.write(held);
    }
    await this.#file.write(chunk);
  }

  /** Flushes the spill file, if any. */
  async finish(): Promise<void> {
    if (this.#file !== undefined) {
      await this.#file.close();
      this.#file = undefined;
    }
  }

  /** True when the body lives on disk. */
  get onDisk(): boolean {
    return this.#path !== undefined;
  }

  /** The body as one Buffer when it is held in memory, else undefined. */
  buffer(): Buffer | undefined {
    if (this.#path !== undefined) return undefined;
    // Joined once; later calls (and later reads) share the one Buffer.
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  /** A fresh stream of the body. */
  read(): Readable {
    if (this.#path !== undefined) {
      const file = createReadStream(this.#path, { highWaterMark: 64 * 1024 });
      const onBytes = this.onBytes;
      if (onBytes === undefined) return file;
      return Readable.from(
        (async function* () {
          for await (const chunk of file as AsyncIterable<Buffer>) {
            onBytes(chunk.length);
            yield chunk;
          }
        })(),
        { objectMode: false },
      );
    }
    return Readable.from(this.#chunks, { objectMode: false });
  }

  /** Removes the spill file. Safe to call twice. */
  async dispose(): Promise<void> {
    this.#chunks = [];
    if (this.#file !== undefined) await this.#file.close().catch(() => undefined);
    this.#file = undefined;
    if (this.#path !== undefined) await rm(this.#path, { force: true });
    this.#path = undefined;
  }
}

/** Why an intake refused a message (the data was still drained). */
export type IntakeProblem = 'size' | 'headers' | 'spool';

const CR = 13;
const LF = 10;

/**
 * Consumes the DATA stream: counts bytes, rewrites bare CR and bare LF to CRLF (so nothing
 * downstream can read an end-of-data that we did not see), splits off the header block and
 * spools the body. After a problem it keeps reading and discards, as SMTP requires.
 */
export class Intake extends Writable {
  readonly spool: Spool;
  header: Buffer = Buffer.alloc(0);
  headerDone = false;
  bytes = 0;
  normalised = 0;
  problem: IntakeProblem | undefined;
  #pendingCr = false;
  #headerChunks: Buffer[] = [];
  #headerSize = 0;
  // Bytes after line endings were made CRLF: what the size limit counts.
  #cleanBytes = 0;
  // The last 3 bytes of header seen so far, to find CRLFCRLF across chunks.
  #tail = Buffer.alloc(0);

  constructor(private readonly options: IntakeOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.spool = new Spool(options.memoryBytes, options.spoolDir, options.onBytes);
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.bytes += chunk.length;
    this.options.onBytes?.(chunk.length);
    if (this.problem !== undefined) {
      callback();
      return;
    }
    // The limit counts the message as it will be relayed: every bare LF made CRLF.
    const clean = this.#normalise(chunk);
    this.#cleanBytes += clean.length;
    if (this.#cleanBytes > this.options.maxMessageBytes) {
      this.problem = 'size';
      callback();
      return;
    }
    this.#accept(clean).then(
      () => callback(),
      () => {
        this.problem = 'spool';
        callback();
      },
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const finish = async (): Promise<void> => {
      if (this.problem !== undefined) return;
      if (this.#pendingCr) {
        this.#pendingCr = false;
        this.normalised += 1;
        this.#cleanBytes += 2;
        if (this.#cleanBytes > this.options.maxMessageBytes) {
          this.problem = 'size';
          return;
        }
        await this.#accept(Buffer.from([CR, LF]));
      }
      if (!this.headerDone) {
        // A message with no body: the whole thing is header.
        this.header = Buffer.concat(this.#headerChunks);
        this.#headerChunks = [];
        this.headerDone = true;
      }
      await this.spool.finish();
    };
    finish().then(
      () => callback(),
      () => {
        this.problem = 'spool';
        callback();
      },
    );
  }

  #normalise(chunk: Buffer): Buffer {
    // Fast path: no CR or LF out of pairs.
    let clean = !this.#pendingCr;
    if (clean) {
      for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
        if (i === 0 || chunk[i - 1] !== CR) {
          clean = false;
          break;
        }
      }
    }
    if (clean) {
      for (let i = chunk.indexOf(CR); i >= 0; i = chunk.indexOf(CR, i + 1)) {
        if (i === chunk.length - 1 || chunk[i + 1] !== LF) {
          clean = false;
          break;
        }
      }
    }
    if (clean) return chunk;
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.#pendingCr) {
        this.#pendingCr = false;
        out.push(CR, LF);
        if (byte === LF) continue;
        this.normalised += 1;
      }
      if (byte === CR) {
        this.#pendingCr = true;
      } else if (byte === LF) {
        this.normalised += 1;
        out.push(CR, LF);
      } else {
        out.push(byte);
      }
    }
    return Buffer.from(out);
  }

  async #accept(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    if (this.headerDone) {
      await this.spool.write(chunk);
      return;
    }
    if (this.#headerChunks.length === 0 && chunk[0] === CR && chunk[1] === LF) {
      // The message starts with the blank line: its header is empty and all of it is body.
      this.header = Buffer.alloc(0);
      this.headerDone = true;
      await this.spool.write(chunk.subarray(2));
      return;
    }
    const joined = Buffer.concat([this.#tail, chunk]);
    const end = joined.indexOf('\r\n\r\n');
    if (end < 0) {
      this.#headerChunks.push(chunk);
      this.#headerSize += chunk.length;
      this.#tail = joined.subarray(Math.max(0, joined.length - 3));
      if (this.#headerSize > this.options.maxHeaderBytes) this.problem = 'headers';
      return;
    }
    // `end` is an offset into tail+chunk; the header block ends after the first CRLF of the pair.
    const cut = end + 2 - this.#tail.length;
    let header: Buffer;
    if (cut >= 0) {
      this.#headerChunks.push(chunk.subarray(0, cut));
      header = Buffer.concat(this.#headerChunks);
    } else {
      header = Buffer.concat(this.#headerChunks);
      header = header.subarray(0, header.length + cut);
    }
    this.#headerChunks = [];
    this.header = header;
    this.headerDone = true;
    if (header.length > this.options.maxHeaderBytes) {
      this.problem = 'headers';
      return;
    }
    const bodyStart = end + 4 - this.#tail.length;
    await this.spool.write(chunk.subarray(bodyStart));
  }
}
