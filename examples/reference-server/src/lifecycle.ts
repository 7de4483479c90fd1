/** A message a child process sends its launcher (over the IPC channel, when there is one). */
export interface ReadyMessage {
  type: 'ready';
  process: string;
  port: number;
  /** Where the process serves `/metrics`, if it does. */
  metricsPort?: number;
}

/** Tells the launcher (if any) that the process listens on `port`. */
export function announceReady(processName: string, port: number, metricsPort?: number): void {
  const message: ReadyMessage =
    metricsPort === undefined
      ? { type: 'ready', process: processName, port }
      : { type: 'ready', process: processName, port, metricsPort };
  // A launcher already gone (its channel closed) is not written to: that would throw.
  if (typeof process.send === 'function' && process.connected) process.send(message);
}

/**
 * Runs `stop` once on SIGINT or SIGTERM, then exits; a second signal, or a stop that takes longer
 * than `timeoutMs`, exits at once with status 1.
 */
export function onShutdown(stop: () => Promise<void>, timeoutMs = 15_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    const timer = setTimeout(() => process.exit(1), timeoutMs);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`shutdown after ${signal} failed`, error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  // The launcher going away closes the IPC channel: stop too, so no orphan keeps a port.
  process.on('disconnect', () => handler('SIGTERM'));
  // It may have gone while this process was still starting, before anything listened for that:
  // `connected` is false (not undefined, as with no launcher at all) once the channel is closed.
  if (process.connected === false) handler('SIGTERM');
}
