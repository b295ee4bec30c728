// The shapes of the API replies the page reads (see /v1/openapi.json for the full documents).

export interface Profile {
  id: string;
  pubkey: string;
  status: string;
  plan: string;
  admin?: boolean;
  display_name: string | null;
  email: string | null;
  timezone: string;
  locale: string;
  data_retention_days: number;
  analytics_enabled: boolean;
  marketing_emails: boolean;
  created_at: string;
}

export interface QuotaPeriod {
  limit: number;
  used: number;
  remaining: number;
  resets_at: string;
}

export interface Quota {
  plan: string;
  daily: QuotaPeriod;
  monthly: QuotaPeriod | null;
}

export type Provider = 'stripe' | 'extensionpay' | (string & {});

export interface Plan {
  code: string;
  name: string;
  description: string | null;
  price_monthly: string;
  price_yearly: string | null;
  currency: string;
  daily_post_limit: number;
  monthly_post_limit: number | null;
  custom_relays_allowed: boolean;
  max_custom_relays: number | null;
  analytics_enabled: boolean;
  /** How the plan can be bought here: stripe (Checkout), extensionpay (in the extension); absent without billing. */
  providers?: Provider[];
  /** The billing cycles Stripe Checkout sells the plan for. */
  checkout_cycles?: ('monthly' | 'yearly')[];
}

interface DailyStat {
  date: string;
  total_posts: number;
  successful_posts: number;
  failed_posts: number;
}

export interface Stats {
  from: string;
  to: string;
  days: DailyStat[];
}

export interface RelayOutcome {
  relay_url: string;
  status: string;
  attempts: number;
  attempted_at: string | null;
  completed_at: string | null;
  next_attempt_at: string | null;
  publish_time_ms: number | null;
  relay_response: unknown;
  error_code: string | null;
  error_message: string | null;
}

export interface EventRecord {
  id: string;
  kind: number;
  created_at: number;
  status: string;
  received_at: string;
  successful_relays: number;
  failed_relays: number;
  total_relays: number;
  event: { content: string };
  source: { tweet_url: string | null };
  relays: RelayOutcome[];
}

export interface UserRelay {
  id: string;
  url: string;
  name: string | null;
  source: 'api' | 'nip65' | 'default';
  is_active: boolean;
  read: boolean;
  write: boolean;
  stats?: { success_rate?: number; total_publishes?: number; paused_until?: string | null };
}

export interface Session {
  id: string;
  extension_id: string | null;
  browser_name: string | null;
  os: string | null;
  ip_address: string | null;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
  current: boolean;
}

interface Subscription {
  id: string;
  plan: string;
  status: string;
  billing_cycle: string;
  amount: string;
  currency: string;
  current_period_end: string | null;
  payment_provider: string | null;
}

export interface Payment {
  id: string;
  amount: string;
  currency: string;
  status: string;
  payment_provider: string | null;
  created_at: string;
  invoice_url: string | null;
  receipt_url: string | null;
}

export interface Billing {
  plan: Plan;
  subscription: Subscription | null;
  history: Subscription[];
  payments: Payment[];
}

export interface AdminUser {
  id: string;
  pubkey: string;
  status: string;
  plan: string;
  display_name: string | null;
  email: string | null;
  created_at: string;
}

export interface RelayHealth {
  url: string;
  attempts: Record<string, number>;
  success_rate: number | null;
  avg_latency_ms: number | null;
  breaker: 'closed' | 'open' | 'half-open' | null;
  paused_until: string | null;
}

export interface Overview {
  at: string;
  sample_seconds: number;
  connections: number;
  subscriptions: number;
  admission: { p99_ms: number | null; count: number; window_seconds: number };
  outbox: { depth: number; oldest_seconds: number };
  per_minute: { minutes: number[]; accepted: number[]; duplicate: number[]; refused: Record<string, number[]> };
  relays: { window_seconds: number; rows: RelayHealth[] };
}

export interface AuditEntry {
  id: string;
  table: string;
  operation: string;
  user_id: string | null;
  actor: string | null;
  old_values: unknown;
  new_values: unknown;
  created_at: string;
}
