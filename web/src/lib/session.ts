// The session of this tab: the bearer token from POST /v1/sessions, kept in sessionStorage (gone when the tab or
// popup closes; never shared with another tab, so each tab is its own session that can be revoked alone).
export interface StoredSession {
  token: string;
  pubkey: string;
  sessionId: string;
  expiresAt: string;
}

const KEY = 'nostrx.session';

export function loadSession(): StoredSession | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as StoredSession;
    return Date.parse(s.expiresAt) > Date.now() ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: StoredSession): void {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
