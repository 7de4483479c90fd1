import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { ReadyMessage } from './lifecycle.js';

/** One child the supervisor runs. */
export interface ChildSpec {
  name: string;
  /** Module to run (with `execArgv`, e.g. `--import tsx` for TypeScript). */
  module: string;
  env: NodeJS.ProcessEnv;
}

/** Options of `Supervisor`. */
export interface SupervisorOptions {
  /** Node flags of every child. Default: `['--import', 'tsx']`. */
  execArgv?: readonly string[];
  /** Working directory of every child. Default: the launcher's. */
  cwd?: string;
  /** First restart delay; it doubles after each crash in a row, in ms. Default: 500. */
  restartDelayMs?: number;
  /** Longest restart delay, in ms. Default: 30_000. */
  maxRestartDelayMs?: number;
  /** A child that ran this long resets its restart delay, in ms. Default: 60_000. */
  stableAfterMs?: number;
  /**
   * Crashes of one child tolerated within `crashWindowMs`; one more is a crash loop: the supervisor
   * stops every child and emits `crash-loop`. Default: 5.
   */
  maxCrashes?: number;
  /** The sliding window crashes are counted in, in ms. Default: 300_000. */
  crashWindowMs?: number;
  /** Time a child gets after SIGTERM before SIGKILL, in ms. Default: 15_000. */
  stopTimeoutMs?: number;
  /** Epoch-ms clock. Default: Date.now. */
  now?: () => number;
  /** Where the supervisor writes what it does. Default: console.error. */
  log?: (line: string) => void;
  /** Receives every output line of the children; when absent they write to the launcher's own output. */
  output?: ((name: string, line: string) => void) | undefined;
}

interface Running {
  spec: ChildSpec;
  child: ChildProcess | undefined;
  startedAt: number;
  delayMs: number;
  restarts: number;
  /** When the child last exited unexpectedly, oldest first, within the crash window. */
  crashes: number[];
  /** Whether the child ever announced it was ready. */
  ready: boolean;
  timer: NodeJS.Timeout | undefined;
  port: number | undefined;
  metricsPort: number | undefined;
}

/**
 * Starts children in order, restarts one that exits while it should run (with a doubling delay),
 * and stops them in reverse order on `stop()`. A child that crashes more than `maxCrashes` times
 * within `crashWindowMs` is a crash loop: the supervisor starts stopping every child and emits
 * `crash-loop`, so the caller can wait for `stop()` (the same stop) and exit non-zero, letting its
 * own supervisor (systemd, Kubernetes) see the failure.
 * Emits `ready` (name, port), `exit` (name, code, signal) and `crash-loop` (name, crashes).
 */
export class Supervisor extends EventEmitter {
  readonly #options: Required<SupervisorOptions>;
  readonly #children: Running[] = [];
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(options: SupervisorOptions = {}) {
    super();
    this.#options = {
      execArgv: ['--import', 'tsx'],
      cwd: process.cwd(),
      restartDelayMs: 500,
      maxRestartDelayMs: 30_000,
      stableAfterMs: 60_000,
      maxCrashes: 5,
      crashWindowMs: 300_000,
      stopTimeoutMs: 15_000,
      now: Date.now,
      log: (line) => console.error(line),
      output: undefined,
      ...options,
    };
  }

  /**
   * Starts `spec` and resolves with the port it announces (0 if it listens on none). Rejects when
   * the child exits before it is first ready; it is not restarted then (the caller decides).
   */
  start(spec: ChildSpec): Promise<number> {
    const entry: Running = {
      spec,
      child: undefined,
      startedAt: 0,
      delayMs: this.#options.restartDelayMs,
      restarts: 0,
      crashes: [],
      ready: false,
      timer: undefined,
      port: undefined,
      metricsPort: undefined,
    };
    this.#children.push(entry);
    return new Promise((resolve, reject) => {
      const onReady = (name: string, port: number): void => {
        if (name !== spec.name) return;
        this.off('ready', onReady);
        this.off('exit', onExit);
        resolve(port);
      };
      const onExit = (name: string, code: number | null): void => {
        if (name !== spec.name || entry.restarts > 0) return;
        this.off('ready', onReady);
        this.off('exit', onExit);
        reject(new Error(`${spec.name} exited with ${String(code)} before it was ready`));
      };
      this.on('ready', onReady);
      this.on('exit', onExit);
      this.#spawn(entry);
    });
  }

  /** The pid of a child now, if it runs. */
  pid(name: string): number | undefined {
    const child = this.#children.find((entry) => entry.spec.name === name)?.child;
    return child?.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  /** Where a child serves `/metrics`, as it announced it. */
  metricsPort(name: string): number | undefined {
    return this.#children.find((entry) => entry.spec.name === name)?.metricsPort;
  }

  /** How many times a child was restarted. */
  restarts(name: string): number {
    return this.#children.find((entry) => entry.spec.name === name)?.restarts ?? 0;
  }

  /**
   * Stops every child in reverse start order, each with SIGTERM then (after the timeout) SIGKILL.
   * Calling it again (a signal during a crash-loop stop) returns the same stop.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stopAll();
    return this.#stopped;
  }

  async #stopAll(): Promise<void> {
    this.#stopping = true;
    for (const entry of [...this.#children].reverse()) {
      clearTimeout(entry.timer);
      const child = entry.child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue;
      this.#options.log(`stopping ${entry.spec.name}`);
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), this.#options.stopTimeoutMs);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
  }

  #spawn(entry: Running): void {
    const output = this.#options.output;
    const stdio = output === undefined ? 'inherit' : 'pipe';
    const child = fork(entry.spec.module, [], {
      cwd: this.#options.cwd,
      env: entry.spec.env,
      execArgv: [...this.#options.execArgv],
      stdio: ['ignore', stdio, stdio, 'ipc'],
    });
    entry.child = child;
    if (output !== undefined) {
      for (const stream of [child.stdout, child.stderr]) {
        let rest = '';
        stream?.setEncoding('utf8');
        stream?.on('data', (chunk: string) => {
          const lines = (rest + chunk).split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) output(entry.spec.name, line);
        });
      }
    }
    entry.startedAt = this.#options.now();
    child.on('message', (message: Partial<ReadyMessage>) => {
      if (message.type === 'ready' && typeof message.port === 'number') {
        entry.ready = true;
        entry.port = message.port;
        entry.metricsPort = message.metricsPort;
        this.emit('ready', entry.spec.name, message.port);
      }
    });
    child.on('exit', (code, signal) => {
      this.emit('exit', entry.spec.name, code, signal);
      if (this.#stopping) return;
      const { name } = entry.spec;
      const how = signal ?? String(code);
      // It never came up at all (bad configuration, a port taken): `start` rejected, and running it
      // again would only fail the same way.
      if (!entry.ready) {
        this.#options.log(`${name} exited (${how}) before it was ready; not restarting it`);
        return;
      }
      const now = this.#options.now();
      const { crashWindowMs, maxCrashes } = this.#options;
      entry.crashes = [...entry.crashes.filter((at) => at > now - crashWindowMs), now];
      if (entry.crashes.length > maxCrashes) {
        this.#options.log(
          `${name} crashed ${entry.crashes.length} times within ${crashWindowMs} ms (more than ${maxCrashes}): giving up, stopping every child`,
        );
        // Stopping first, so a `start` the stop makes fail is seen as part of the stop.
        void this.stop();
        this.emit('crash-loop', name, entry.crashes.length);
        return;
      }
      if (now - entry.startedAt >= this.#options.stableAfterMs)
        entry.delayMs = this.#options.restartDelayMs;
      const delay = entry.delayMs;
      entry.delayMs = Math.min(entry.delayMs * 2, this.#options.maxRestartDelayMs);
      this.#options.log(`${name} exited (${how}); restarting in ${delay} ms`);
      entry.timer = setTimeout(() => {
        // A stop that began while this timer ran must not be raced by a new child.
        if (this.#stopping) return;
        entry.restarts += 1;
        this.#spawn(entry);
      }, delay);
    });
  }
}
