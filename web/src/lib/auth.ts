import type { User } from '../../../services/contract/index.js';
import { api, ApiError, setCsrfToken } from './api.js';

export type { User };

let current: User | undefined;

export function currentUser(): User | undefined {
  return current;
}

/** The signed-in user (from the session cookie), or undefined. */
export async function loadSession(): Promise<User | undefined> {
  try {
    const me = await api<{ user: User; csrfToken: string }>('/auth/me');
    current = me.user;
    setCsrfToken(me.csrfToken);
    return current;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      current = undefined;
      return undefined;
    }
    throw err;
  }
}

export async function signIn(username: string, password: string): Promise<User> {
  const result = await api<{ user: User; csrfToken: string }>('/auth/login', { method: 'POST', body: { username, password } });
  current = result.user;
  setCsrfToken(result.csrfToken);
  return current;
}

export async function signOut(): Promise<void> {
  try {
    await api('/auth/logout', { method: 'POST' });
  } finally {
    current = undefined;
    setCsrfToken(undefined);
  }
}
