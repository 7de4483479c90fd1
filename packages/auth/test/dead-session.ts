import { expect } from 'vitest';
import { AuthError, type AuthService, type TokenPair } from '../src/index.js';

async function caught(promise: Promise<unknown>): Promise<AuthError | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (!AuthError.isInstance(error)) throw error;
    return error;
  }
}

/**
 * Checks what every path answers for a session past its expiry, each path on a session of its
 * own, so each meets the dead session itself and not one an earlier path already removed. The
 * answers must not depend on the store, nor on whether it has evicted the record yet.
 */
export async function expectDeadSessionAnswers(
  service: AuthService,
  userId: string,
  pairs: readonly TokenPair[],
): Promise<void> {
  const [refreshed, loggedOut, revoked, checked] = pairs;
  if (checked === undefined) throw new Error('expectDeadSessionAnswers needs four sessions');
  expect(await caught(service.refresh(refreshed!.refreshToken))).toMatchObject({
    code: 'TOKEN_INVALID',
    field: 'refresh',
  });
  expect(await service.logout(loggedOut!.refreshToken)).toBe(false);
  expect(await service.revokeSession(userId, revoked!.sessionId)).toBe(false);
  expect(
    await caught(service.verifyAccessToken(checked.accessToken, { checkSession: true })),
  ).toMatchObject({ code: 'TOKEN_INVALID', field: 'session' });
  // Last among the first looks: the memory store drops dead sessions while listing.
  expect(await service.listSessions(userId)).toEqual([]);
  // And once more, after every path above has had the chance to remove the record.
  for (const pair of pairs) {
    expect(await caught(service.refresh(pair.refreshToken))).toMatchObject({
      code: 'TOKEN_INVALID',
      field: 'refresh',
    });
  }
  expect(await service.logoutAll(userId)).toBe(0);
}
