import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthError, normalizeEmail } from '@postern/auth';
import type { AuthService, AuthStore, TokenPair } from '@postern/auth';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit.js';
import { ServerError } from '../errors.js';
import type { Mailer } from '../mailer.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter } from '../ports.js';
import { errorSchema } from './app.js';

/** What the account routes need. */
export interface AccountRouteDependencies {
  auth: AuthService;
  /** Where the caller's account address is read, to check the password of a deletion. */
  users: Pick<AuthStore, 'getUserById'>;
  mailer: Mailer;
  audit: AuditLog;
  metrics: Metrics;
  /** Where the refresh token travels: the JSON body, or an httpOnly cookie guarded by a CSRF token. */
  refreshTokenIn: 'body' | 'cookie';
  /** Public base URL, used in the links of system mail. */
  publicUrl: string;
  limits: {
    login: RateLimiter;
    register: RateLimiter;
    /** One warning mail per address per window, keyed on a hash of the normalized address. */
    registerWarning: RateLimiter;
    reset: RateLimiter;
  };
}

const REFRESH_COOKIE = 'postern_refresh';
const CSRF_COOKIE = 'postern_csrf';
const STATUS: Record<string, number> = {
  INVALID_CREDENTIALS: 401,
  ACCOUNT_LOCKED: 429,
  EMAIL_TAKEN: 409,
  WEAK_PASSWORD: 400,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_REUSED: 401,
  EMAIL_NOT_VERIFIED: 403,
  INVALID_INPUT: 400,
};

/** Maps an `AuthError` to the API's error, keeping its stable code; anything else is rethrown. */
export function fromAuthError(error: unknown): never {
  if (AuthError.isInstance(error)) {
    const code =
      error.code === 'INVALID_INPUT' || error.code === 'INVALID_OPTIONS'
        ? 'VALIDATION_FAILED'
        : error.code;
    const options: { status: number; field?: string; retryAfterMs?: number; cause: unknown } = {
      status: STATUS[error.code] ?? 500,
      cause: error,
    };
    if (error.field !== undefined) options.field = error.field;
    if (error.retryAfterMs !== undefined) options.retryAfterMs = error.retryAfterMs;
    throw new ServerError(code, error.message, options);
  }
  throw error;
}

const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const password = { type: 'string', minLength: 1, maxLength: 1024 } as const;
const token = { type: 'string', minLength: 1, maxLength: 512 } as const;
const errors = {
  400: errorSchema,
  401: errorSchema,
  403: errorSchema,
  404: errorSchema,
  409: errorSchema,
  429: errorSchema,
} as const;
const tokenResponse = {
  type: 'object',
  properties: {
    accessToken: { type: 'string' },
    accessExpiresAt: { type: 'integer' },
    refreshToken: { type: 'string' },
    refreshExpiresAt: { type: 'integer' },
    csrfToken: { type: 'string' },
    sessionId: { type: 'string' },
  },
} as const;
const security = [{ bearer: [] }];

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Adds `/auth/*` and `/account` routes: register, verify, login, refresh, logout, sessions, passwords, deletion. */
export function registerAccountRoutes(app: FastifyInstance, deps: AccountRouteDependencies): void {
  const context = (request: FastifyRequest): { ip: string; userAgent?: string } => {
    const userAgent = request.headers['user-agent'];
    return typeof userAgent === 'string'
      ? { ip: request.ip, userAgent: userAgent.slice(0, 256) }
      : { ip: request.ip };
  };

  const sendPair = (reply: FastifyReply, pair: TokenPair): Record<string, unknown> => {
    const body: Record<string, unknown> = {
      accessToken: pair.accessToken,
      accessExpiresAt: pair.accessExpiresAt,
      refreshExpiresAt: pair.refreshExpiresAt,
      sessionId: pair.sessionId,
    };
    if (deps.refreshTokenIn === 'body') return { ...body, refreshToken: pair.refreshToken };
    const csrf = randomBytes(24).toString('base64url');
    const expires = new Date(pair.refreshExpiresAt);
    void reply.setCookie(REFRESH_COOKIE, pair.refreshToken, {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/auth',
      expires,
    });
    void reply.setCookie(CSRF_COOKIE, csrf, {
      httpOnly: false,
      secure: true,
      sameSite: 'strict',
      path: '/',
      expires,
    });
    return { ...body, csrfToken: csrf };
  };

  // In cookie mode the browser sends the refresh cookie by itself, so a second proof that only
  // our own page can give (the CSRF cookie's value echoed in a header) is required.
  const presentedRefreshToken = (request: FastifyRequest): string => {
    if (deps.refreshTokenIn === 'body') {
      const value = (request.body as { refreshToken?: string } | undefined)?.refreshToken;
      if (value === undefined)
        throw new ServerError('VALIDATION_FAILED', 'body.refreshToken is required', {
          status: 400,
          field: 'body.refreshToken',
        });
      return value;
    }
    const cookie = request.cookies[REFRESH_COOKIE];
    const csrfCookie = request.cookies[CSRF_COOKIE];
    const csrfHeader = request.headers['x-csrf-token'];
    if (cookie === undefined)
      throw new ServerError('UNAUTHENTICATED', 'no refresh cookie', { status: 401 });
    if (
      csrfCookie === undefined ||
      typeof csrfHeader !== 'string' ||
      !sameSecret(csrfCookie, csrfHeader)
    ) {
      throw new ServerError(
        'CSRF_FAILED',
        'the X-CSRF-Token header must echo the postern_csrf cookie',
        { status: 403, field: 'headers.x-csrf-token' },
      );
    }
    return cookie;
  };
  const refreshBody =
    deps.refreshTokenIn === 'body'
      ? {
          type: 'object',
          required: ['refreshToken'],
          additionalProperties: false,
          properties: { refreshToken: token },
        }
      : undefined;

  app.post(
    '/auth/register',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Create an account; a verification mail is sent',
        body: {
          type: 'object',
          required: ['email', 'password'],
          additionalProperties: false,
          properties: { email, password },
        },
        response: {
          202: { type: 'object', properties: { status: { type: 'string' } } },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      await app.rateLimit(deps.limits.register, `register:${request.ip}`);
      const body = request.body as { email: string; password: string };
      const result = await deps.auth.register(body, context(request)).catch(fromAuthError);
      // The address the account holds, not the spelling in the request (local parts may be case-sensitive).
      const to = normalizeEmail(body.email);
      // The same answer whether or not the address was taken, so registration cannot probe accounts.
      if (result.alreadyRegistered) {
        // At most one warning per address per window, or registering someone's address over and
        // over would mail-bomb them. Whether it went out changes nothing in the answer. The key is
        // a hash, so no address is written into Redis key names.
        const warning = await deps.limits.registerWarning.consume(
          `register-warning:${createHash('sha256').update(to).digest('hex')}`,
        );
        if (warning.allowed) {
          await deps.mailer.send({
            to,
            subject: 'Someone tried to register with your address',
            text: 'An account already exists for this address. If this was you, log in or reset your password.',
          });
        }
      } else {
        await deps.mailer.send({
          to,
          subject: 'Verify your Postern address',
          text: `Confirm your address with this token:\n\n${result.verificationToken}\n\nor open ${deps.publicUrl}/verify?token=${encodeURIComponent(result.verificationToken)}\n`,
        });
        await deps.audit.append({
          userId: result.userId,
          action: 'account.register',
          requestId: request.id,
        });
      }
      return reply.status(202).send({ status: 'verification-sent' });
    },
  );

  app.post(
    '/auth/verify',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Spend an email-verification token',
        body: {
          type: 'object',
          required: ['token'],
          additionalProperties: false,
          properties: { token },
        },
        response: {
          200: { type: 'object', properties: { verified: { type: 'boolean' } } },
          ...errors,
        },
      },
    },
    async (request) => {
      const { userId } = await deps.auth
        .verifyEmail((request.body as { token: string }).token)
        .catch(fromAuthError);
      await deps.audit.append({ userId, action: 'account.verify', requestId: request.id });
      return { verified: true };
    },
  );

  app.post(
    '/auth/login',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Log in: an access token and a refresh token',
        body: {
          type: 'object',
          required: ['email', 'password'],
          additionalProperties: false,
          properties: { email, password },
        },
        response: { 200: tokenResponse, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body as { email: string; password: string };
      await app.rateLimit(deps.limits.login, `login:ip:${request.ip}`);
      try {
        const pair = await deps.auth.login({ ...body, ...context(request) });
        deps.metrics.loginOutcomes.inc({ outcome: 'success' });
        await deps.audit.append({
          userId: pair.userId,
          action: 'account.login',
          requestId: request.id,
          detail: { sessionId: pair.sessionId },
        });
        return sendPair(reply, pair);
      } catch (error) {
        deps.metrics.loginOutcomes.inc({
          outcome: AuthError.isInstance(error) ? error.code.toLowerCase() : 'error',
        });
        return fromAuthError(error);
      }
    },
  );

  app.post(
    '/auth/refresh',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Rotate the refresh token; replaying a spent one revokes the whole session',
        ...(refreshBody === undefined ? {} : { body: refreshBody }),
        response: { 200: tokenResponse, ...errors },
      },
    },
    async (request, reply) => {
      const pair = await deps.auth
        .refresh(presentedRefreshToken(request), context(request))
        .catch(fromAuthError);
      return sendPair(reply, pair);
    },
  );

  app.post(
    '/auth/logout',
    {
      schema: {
        tags: ['accounts'],
        summary: 'End the session of a refresh token',
        ...(refreshBody === undefined ? {} : { body: refreshBody }),
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      await deps.auth.logout(presentedRefreshToken(request), context(request));
      if (deps.refreshTokenIn === 'cookie')
        void reply
          .clearCookie(REFRESH_COOKIE, { path: '/auth' })
          .clearCookie(CSRF_COOKIE, { path: '/' });
      return reply.status(204).send();
    },
  );

  app.post(
    '/auth/logout-all',
    {
      schema: {
        tags: ['accounts'],
        summary: 'End every session of the caller',
        security,
        response: {
          200: { type: 'object', properties: { ended: { type: 'integer' } } },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      const ended = await deps.auth.logoutAll(principal.userId);
      await deps.audit.append({
        userId: principal.userId,
        action: 'account.logout-all',
        requestId: request.id,
      });
      return { ended };
    },
  );

  app.get(
    '/auth/sessions',
    {
      schema: {
        tags: ['accounts'],
        summary: 'The caller’s live sessions',
        security,
        response: {
          200: {
            type: 'object',
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    createdAt: { type: 'integer' },
                    lastUsedAt: { type: 'integer' },
                    expiresAt: { type: 'integer' },
                    ip: { type: 'string' },
                    userAgent: { type: 'string' },
                    current: { type: 'boolean' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = await app.requireUser(request);
      const sessions = await deps.auth.listSessions(principal.userId);
      return {
        items: sessions.map((session) => ({
          ...session,
          current: session.id === principal.sessionId,
        })),
      };
    },
  );

  app.delete(
    '/auth/sessions/:id',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Revoke one of the caller’s sessions',
        security,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
        },
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      const id = (request.params as { id: string }).id;
      if (!(await deps.auth.revokeSession(principal.userId, id)))
        throw new ServerError('NOT_FOUND', 'no such session', { status: 404 });
      await deps.audit.append({
        userId: principal.userId,
        action: 'account.revoke-session',
        requestId: request.id,
      });
      return reply.status(204).send();
    },
  );

  app.post(
    '/auth/password',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Change the password; every other session is ended',
        security,
        body: {
          type: 'object',
          required: ['currentPassword', 'newPassword'],
          additionalProperties: false,
          properties: { currentPassword: password, newPassword: password },
        },
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      const principal = await app.requireUser(request);
      const body = request.body as { currentPassword: string; newPassword: string };
      await deps.auth
        .changePassword(
          { userId: principal.userId, ...body, keepSessionId: principal.sessionId },
          context(request),
        )
        .catch(fromAuthError);
      await deps.audit.append({
        userId: principal.userId,
        action: 'account.change-password',
        requestId: request.id,
      });
      return reply.status(204).send();
    },
  );

  app.post(
    '/auth/password-reset/request',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Mail a password-reset token (same answer for unknown addresses)',
        body: {
          type: 'object',
          required: ['email'],
          additionalProperties: false,
          properties: { email },
        },
        response: {
          202: { type: 'object', properties: { status: { type: 'string' } } },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const address = (request.body as { email: string }).email;
      await app.rateLimit(deps.limits.reset, `reset:${request.ip}`);
      const issued = await deps.auth
        .requestPasswordReset(address, context(request))
        .catch(fromAuthError);
      if (issued !== null) {
        // The reset token goes to the account's own (normalized) address, never to the spelling
        // the requester typed.
        await deps.mailer.send({
          to: normalizeEmail(address),
          subject: 'Reset your Postern password',
          text: `Use this token to choose a new password:\n\n${issued.token}\n\nIt works once, for one hour.\n`,
        });
        await deps.audit.append({
          userId: issued.userId,
          action: 'account.reset-requested',
          requestId: request.id,
        });
      }
      return reply.status(202).send({ status: 'reset-sent-if-known' });
    },
  );

  app.post(
    '/auth/password-reset/complete',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Spend a reset token and set a new password; every session ends',
        body: {
          type: 'object',
          required: ['token', 'newPassword'],
          additionalProperties: false,
          properties: { token, newPassword: password },
        },
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body as { token: string; newPassword: string };
      await deps.auth
        .resetPassword(body.token, body.newPassword, context(request))
        .catch(fromAuthError);
      return reply.status(204).send();
    },
  );

  app.delete(
    '/account',
    {
      schema: {
        tags: ['accounts'],
        summary:
          'Delete the caller’s account with every alias, domain and log; the current password is required',
        security,
        body: {
          type: 'object',
          required: ['currentPassword'],
          additionalProperties: false,
          properties: { currentPassword: password },
        },
        response: { 204: { type: 'null' }, ...errors },
      },
      // Authentication comes first (401 before any 400); a request with no body at all (what
      // clients sent before the password was required) gets the answer of a body without the field.
      preValidation: async (request) => {
        await app.requireUser(request);
        if (request.body === undefined || request.body === null)
          throw new ServerError('VALIDATION_FAILED', 'body.currentPassword is required', {
            status: 400,
            field: 'body.currentPassword',
          });
      },
    },
    async (request, reply) => {
      const principal = request.principal ?? (await app.requireUser(request));
      const { currentPassword } = request.body as { currentPassword: string };
      // A guess here is a guess at login: the same per-IP budget.
      await app.rateLimit(deps.limits.login, `login:ip:${request.ip}`);
      const user = await deps.users.getUserById(principal.userId);
      if (user === null)
        throw new ServerError('UNAUTHENTICATED', 'the access token is invalid or expired', {
          status: 401,
        });
      // The password is checked by logging in: the same hashing work, lockout counters and answers
      // (401 INVALID_CREDENTIALS, 429 ACCOUNT_LOCKED) as POST /auth/login, so a stolen access token
      // is no faster or quieter way to guess it. The session this opens is deleted with the account.
      await deps.auth
        .login({ email: user.email, password: currentPassword, ...context(request) })
        .catch(fromAuthError);
      await deps.auth.deleteUser(principal.userId);
      return reply.status(204).send();
    },
  );
}
