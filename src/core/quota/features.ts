// Plan features: whether the caller's effective plan has a feature, and if not, which plan would give it to them
// (the first public, active plan in the plans' own order), so a refusal can name it.
import type { Plans } from './plans.js';

type PlanRecord = Awaited<ReturnType<Plans['all']>>[number];
export type Feature = 'customRelaysAllowed' | 'analyticsEnabled' | 'multipleIdentities';

export type FeatureCheck =
  | { readonly allowed: true; readonly plan: PlanRecord }
  | { readonly allowed: false; readonly plan: PlanRecord; readonly upgrade: PlanRecord | undefined };

const featureNames: Record<Feature, string> = {
  customRelaysAllowed: 'relays of your own',
  analyticsEnabled: 'stats',
  multipleIdentities: 'multiple identities (several Nostr keys on one account)',
};

export async function checkFeature(plans: Plans, userId: string, feature: Feature): Promise<FeatureCheck> {
  const plan = await plans.effectivePlan(userId);
  if (plan[feature]) return { allowed: true, plan };
  const upgrade = (await plans.all()).find((p) => p.isActive && p.isPublic && p[feature]);
  return { allowed: false, plan, upgrade };
}

/** "Your plan basic does not include stats; the premium plan does." */
export function refusal(check: Extract<FeatureCheck, { allowed: false }>, feature: Feature): string {
  const what = featureNames[feature];
  const upgrade = check.upgrade ? `; the ${check.upgrade.code} plan (${check.upgrade.name}) does` : '';
  return `your plan ${check.plan.code} does not include ${what}${upgrade}`;
}
