// Display helpers: dates in the user's own timezone (their quota day starts at its midnight), counts, rates.

export function dateTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '—';
  try {
    return new Intl.DateTimeFormat(undefined, {
      dateStyle: 'medium',
      timeStyle: 'short',
      ...(timeZone ? { timeZone } : {}),
    }).format(new Date(iso));
  } catch {
    return new Date(iso).toLocaleString();
  }
}

export function time(iso: string, timeZone?: string): string {
  try {
    return new Intl.DateTimeFormat(undefined, {
      hour: '2-digit',
      minute: '2-digit',
      ...(timeZone ? { timeZone } : {}),
    }).format(new Date(iso));
  } catch {
    return new Date(iso).toLocaleTimeString();
  }
}

/** "in 3 h 20 min", "in 45 s", "2 min ago". */
export function relative(iso: string, now = Date.now()): string {
  const s = Math.round((Date.parse(iso) - now) / 1000);
  const a = Math.abs(s);
  const minutes = Math.round(a / 60);
  const text =
    a < 60 ? `${a} s` : minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

export const limitText = (n: number) => (n < 0 ? 'unlimited' : String(n));

/** A success rate as the API gives every one of them: a percentage, 0..100. */
export const percent100 = (r: number | null) => (r === null ? '—' : `${Math.round(r * 10) / 10} %`);

export const shortKey = (hex: string) => `${hex.slice(0, 8)}…${hex.slice(-4)}`;

export function money(amount: string, currency: string): string {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(Number(amount));
  } catch {
    return `${amount} ${currency}`;
  }
}

/** Today's calendar date (YYYY-MM-DD) in a timezone, `daysBack` days earlier. */
export function localDate(timeZone: string, daysBack = 0, now = Date.now()): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    timeZone,
  }).format(new Date(now));
  if (daysBack === 0) return parts;
  return new Date(Date.parse(`${parts}T00:00:00Z`) - daysBack * 86_400_000).toISOString().slice(0, 10);
}
