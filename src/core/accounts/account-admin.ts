// Changes to an account that an admin, the payment webhook or the user's own request makes: the plan (through
// user_subscriptions) and the status. Each change is one transaction with its audit_log rows; after the commit the
// caches of every process are told (core/accounts/cache-invalidation.ts), so the next event of that user already sees it.
import type { Knex } from 'knex';
import { writeAudit } from '../../store/audit.js';
import {
  activeSubscription,
  cancelActiveSubscription,
  insertActiveSubscription,
  lockUser,
  type NewSubscription,
} from '../../store/subscriptions.js';
import { updateUserStatus, type UserRecord, type UserStatus } from '../../store/users.js';
import type { CacheInvalidation } from './cache-invalidation.js';
import { DEFAULT_PLAN, type Plans } from '../quota/index.js';
import type { Quota, QuotaStatus } from '../quota/index.js';
import type { UsageRecorder } from '../ops/index.js';

export interface AccountAdminDeps {
  readonly db: Knex;
  readonly plans: Plans;
  readonly quota: Quota;
  readonly invalidation: CacheInvalidation;
  readonly usage?: UsageRecorder | undefined;
  /** Seconds since the epoch; injectable for tests. */
  readonly now?: (() => number) | undefined;
}

export type AccountAdminErrorCode = 'unknown_user' | 'unknown_plan' | 'inactive_plan' | 'invalid_status';

/** A refused change, with a stable code the API maps to its answer (404 unknown_user, 400 otherwise). */
export class AccountAdminError extends Error {
  override name = 'AccountAdminError';
  constructor(
    readonly code: AccountAdminErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PlanChange {
  readonly previous: string;
  readonly current: string;
  /** false when the user was already on that plan (nothing written). */
  readonly changed: boolean;
  /** The new active subscription row; null on the basic plan (basic = no active subscription). */
  readonly subscriptionId: string | null;
}

/** Billing details of the new subscription, when a payment caused the change. */
export type PlanChangeOptions = Partial<
  Pick<NewSubscription, 'billingCycle' | 'paymentProvider' | 'paymentProviderId' | 'periodEnd' | 'amount'>
>;

const statuses: readonly UserStatus[] = ['active', 'suspended', 'deleted', 'pending_verification'];

/**
 * Moves the user to `planCode`: the active subscription (if any) is canceled and, unless the plan is basic, a new
 * active one is inserted, in one transaction with its audit rows. The new limits apply to the posts already
 * counted in the current day and month (a downgrade below today's count refuses further posts until the reset).
 */
export async function changePlan(
  deps: AccountAdminDeps,
  userId: string,
  planCode: string,
  actor: string,
  opts: PlanChangeOptions = {},
): Promise<PlanChange> {
  const plan = await deps.plans.byCode(planCode);
  if (!plan) throw new AccountAdminError('unknown_plan', `there is no plan "${planCode}"`);
  if (!plan.isActive) throw new AccountAdminError('inactive_plan', `the plan "${planCode}" is not active`);
  const result = await deps.db.transaction(async (trx): Promise<PlanChange> => {
    if (!(await lockUser(trx, userId))) throw new AccountAdminError('unknown_user', `there is no user ${userId}`);
    const active = await activeSubscription(trx, userId);
    const previous = active?.planCode ?? DEFAULT_PLAN;
    if (previous === plan.code)
      return { previous, current: previous, changed: false, subscriptionId: active?.id ?? null };
    if (active) {
      await cancelActiveSubscription(trx, userId);
      await writeAudit(trx, {
        table: 'user_subscriptions',
        operation: 'UPDATE',
        userId,
        oldValues: { id: active.id, plan: active.planCode, status: 'active' },
        newValues: { id: active.id, plan: active.planCode, status: 'canceled' },
        actor,
      });
    }
    let subscriptionId: string | null = null;
    if (plan.code !== DEFAULT_PLAN) {
      subscriptionId = await insertActiveSubscription(trx, {
        userId,
        planId: plan.id,
        amount: opts.amount ?? plan.priceMonthly,
        currency: plan.currency,
        billingCycle: opts.billingCycle,
        paymentProvider: opts.paymentProvider,
        paymentProviderId: opts.paymentProviderId,
        periodEnd: opts.periodEnd,
        notes: `plan set to ${plan.code} by ${actor}`,
      });
      await writeAudit(trx, {
        table: 'user_subscriptions',
        operation: 'INSERT',
        userId,
        oldValues: { plan: previous },
        newValues: { id: subscriptionId, plan: plan.code, status: 'active' },
        actor,
      });
    }
    return { previous, current: plan.code, changed: true, subscriptionId };
  });
  if (result.changed) {
    deps.invalidation.user(userId);
    const nowMs = deps.now ? deps.now() * 1000 : Date.now();
    deps.usage?.event({
      userId,
      type: 'tier_change',
      action: `${result.previous}_to_${result.current}`,
      occurredAt: new Date(nowMs),
      quotaLimit: plan.dailyPostLimit,
      data: { from: result.previous, to: result.current, actor },
    });
  }
  return result;
}

export interface StatusChange {
  readonly previous: UserStatus;
  readonly current: UserStatus;
  readonly changed: boolean;
}

/** Sets the user's status; `suspended` and `deleted` make admission answer `blocked:` from the next event on. */
export async function setUserStatus(
  deps: AccountAdminDeps,
  userId: string,
  status: UserStatus,
  actor: string,
): Promise<StatusChange> {
  if (!statuses.includes(status))
    throw new AccountAdminError('invalid_status', `status must be one of ${statuses.join(', ')}`);
  const result = await deps.db.transaction(async (trx) => {
    const r = await updateUserStatus(trx, userId, status);
    if (!r) throw new AccountAdminError('unknown_user', `there is no user ${userId}`);
    if (r.before.status !== status) {
      await writeAudit(trx, {
        table: 'users',
        operation: 'UPDATE',
        userId,
        oldValues: { status: r.before.status },
        newValues: { status },
        actor,
      });
    }
    return r;
  });
  deps.invalidation.account(result.after.pubkey, userId);
  return { previous: result.before.status, current: status, changed: result.before.status !== status };
}

/** GET /v1/me/quota: the plan, and per period what is used, the limit, what remains and when it resets. */
export function quotaStatus(deps: Pick<AccountAdminDeps, 'quota'>, user: UserRecord): Promise<QuotaStatus> {
  return deps.quota.status(user);
}
