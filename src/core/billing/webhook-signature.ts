// The signature of payment webhooks: header `nostrx-signature: t=<unix seconds>,v1=<hex>` where the hex is the
// HMAC-SHA256, keyed with PAYMENT_WEBHOOK_SECRET, of `<t>.<raw body>`; t must be within 5 minutes of now (so a
// captured request cannot be replayed later; within the window the provider event id makes a replay harmless).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_TOLERANCE_SECONDS = 300;
export const SIGNATURE_HEADER = 'nostrx-signature';

export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Checks `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (several v1 values while a secret is being rotated). */
export function verifyWebhookSignature(
  header: string | undefined,
  body: Buffer,
  secret: string,
  nowSeconds: number,
): SignatureCheck {
  if (!header) return { ok: false, reason: `the ${SIGNATURE_HEADER} header is missing` };
  let t: string | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') t = value;
    else if (key === 'v1') signatures.push(value);
  }
  if (!t || !/^\d{1,12}$/.test(t) || signatures.length === 0)
    return { ok: false, reason: `the ${SIGNATURE_HEADER} header must be t=<unix seconds>,v1=<hex HMAC-SHA256>` };
  const skew = Math.abs(nowSeconds - Number(t));
  if (skew > WEBHOOK_TOLERANCE_SECONDS)
    return {
      ok: false,
      reason: `the signature timestamp is ${skew} s from now, the tolerance is ${WEBHOOK_TOLERANCE_SECONDS} s`,
    };
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  const match = signatures.some((s) => /^[0-9a-f]{64}$/i.test(s) && timingSafeEqual(Buffer.from(s, 'hex'), expected));
  return match ? { ok: true } : { ok: false, reason: 'the signature does not match the body' };
}

/** Signs a body as a provider would (tests, tooling): the value of the signature header. */
export function signWebhook(body: string | Buffer, secret: string, timestamp: number): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}
