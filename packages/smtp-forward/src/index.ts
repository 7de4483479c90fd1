// The public surface of @postern/smtp-forward: every export is named here.
export { VERSION } from './version.js';
export { SmtpForwarder } from './forwarder.js';
export type {
  AcceptedEvent,
  BoundAddress,
  DeliveryEvent,
  SessionClosedEvent,
  DeliveryMode,
  ForwarderStats,
  FromRewrite,
  Limits,
  ListenOptions,
  QueuedDeliveryOptions,
  RejectedEvent,
  SmtpForwarderOptions,
  TlsOptions,
} from './forwarder.js';
export { LocalDeliveryQueue } from './queue.js';
export { SETTLED_DAYS } from './settled.js';
export type { AttemptInfo, LocalDeliveryQueueOptions } from './queue.js';
export { staticResolver } from './resolver.js';
export type {
  DisabledAction,
  ResolvedRecipient,
  Resolver,
  ResolverContext,
  StaticEntry,
  StaticResolverOptions,
} from './resolver.js';
export { Srs } from './srs.js';
export type { SrsOptions } from './srs.js';
export { SmtpForwardError, isPosternError } from './errors.js';
export type { SmtpForwardErrorCode, SmtpForwardErrorFields } from './errors.js';
export { maskEmail } from './address.js';
export type { Disposable, Event } from './events.js';
export type {
  ArcOptions,
  AuthenticationOptions,
  DkimKey,
  DkimOptions,
  DkimSelectContext,
  DkimSelection,
  DkimSigning,
} from './signing.js';
export type {
  MtaStsLookup,
  MtaStsPolicy,
  MxOptions,
  RelayOptions,
  TransportOptions,
} from './transport.js';
export { mtaStsPolicy } from './mta-sts.js';
export type { MtaStsPolicyOptions } from './mta-sts.js';
export type {
  Clock,
  DeliveryQueue,
  DnsResolver,
  Logger,
  Policy,
  QueuedDelivery,
  RateLimiter,
} from './ports.js';
