// The public surface of @postern/sync-queue: every export is named here.
export { VERSION } from './version.js';
export { SyncQueue } from './sync-queue.js';
export type {
  AddOptions,
  BulkItem,
  CloseOptions,
  CompletedEvent,
  CompletedJob,
  CompletedJobs,
  DeadEvent,
  DeadLetter,
  DeadLetters,
  ErrorEvent,
  FailedEvent,
  Handler,
  HandlerContext,
  Job,
  KeepCompletedOptions,
  LeaseLostEvent,
  ProcessOptions,
  StalledEvent,
  SyncQueueOptions,
  Worker,
} from './sync-queue.js';
export { MemoryBackend } from './memory-backend.js';
export type { MemoryBackendOptions } from './memory-backend.js';
export type {
  AddResult,
  ClaimResult,
  CompleteResult,
  CompletedRecord,
  CompletedRetention,
  DeadLetterRecord,
  ExpiredJob,
  FailResult,
  FencedResult,
  LeasedJob,
  NewJob,
  QueueBackend,
  QueueStats,
  RunRef,
} from './backend.js';
export type { RetryOptions } from './backoff.js';
export { SyncQueueError, PermanentError } from './errors.js';
export type { SyncQueueErrorCode, SyncQueueErrorOptions } from './errors.js';
export type { Disposable } from './events.js';
export type { Clock, Logger } from './ports.js';
