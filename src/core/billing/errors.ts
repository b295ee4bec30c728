// What a billing request can fail with, as values the API maps to its answers (api/errors.ts), one code each.
export type BillingErrorCode =
  /** A setting the route needs is empty (503); `setting` names it. */
  | 'not_configured'
  /** The provider could not be reached, timed out or answered 5xx (502). Nothing was stored. */
  | 'provider_unavailable'
  /** No Stripe price for that plan and billing cycle (400). */
  | 'unknown_price'
  /** ExtensionPay does not know that key (400). */
  | 'key_invalid'
  /** The ExtPay user paid for a plan nickname EXTENSIONPAY_PLANS does not map (400). */
  | 'plan_unmapped'
  /** That ExtPay user (or Stripe customer) is linked to another account (409). */
  | 'linked_elsewhere'
  /** The user has no Stripe customer yet: nothing to manage in the portal (404). */
  | 'no_customer'
  /** A Stripe webhook whose signature is missing, wrong or too old (400). */
  | 'signature_invalid';

export class BillingError extends Error {
  override name = 'BillingError';
  constructor(
    readonly code: BillingErrorCode,
    message: string,
    readonly setting?: string,
  ) {
    super(message);
  }
}

export function notConfigured(setting: string, what: string): BillingError {
  return new BillingError('not_configured', `${what} is not configured on this server: ${setting} is not set`, setting);
}
