import type { CustosClient } from "./client.js";

/**
 * The audit RPC (audit_*, read scope) as typed calls: traces, reports, reconciliation, clearing,
 * event and transaction listings from a node's audit index, and exports to check offline with
 * @custos/audit's verifier. Times are ms since the epoch or "YYYY-MM-DD[THH:MM]" (CST); amounts
 * in answers are fen as decimal strings. README.md, "Audit", describes each answer.
 */
export type AuditTime = number | string;

export interface AuditRange {
  from?: AuditTime;
  to?: AuditTime;
  /** A whole day (CST), instead of from/to. */
  date?: string;
}

export type AuditTarget = { account: string } | { programme: string; card?: number };

export interface RechargeRecordJson {
  rechargeId: string;
  account: string;
  /** fen */
  amount: string;
}

export class AuditClient {
  constructor(readonly client: CustosClient) {}

  private call<T>(method: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    return this.client.request<T>(method, [params], signal ? { signal } : {});
  }

  /** `firstHeight`: the first block of the node's audit history (1: from genesis). */
  status(): Promise<{
    indexedHeight: number;
    ledgerHeight: number;
    firstHeight: number;
    building: unknown;
    programmes: number;
  }> {
    return this.call("audit_status", {});
  }

  programmes(): Promise<{ height: number; programmes: Record<string, unknown>[] }> {
    return this.call("audit_programmes", {});
  }

  trace(target: AuditTarget, range: AuditRange = {}): Promise<Record<string, unknown>> {
    return this.call("audit_trace", { ...target, ...range });
  }

  report(
    o: AuditRange & { threshold?: string; programmes?: string[] } = {},
  ): Promise<Record<string, unknown>> {
    return this.call("audit_report", { ...o });
  }

  reconcile(o: AuditRange & { recharges?: RechargeRecordJson[] } = {}): Promise<Record<string, unknown>> {
    return this.call("audit_reconcile", { ...o });
  }

  clearing(o: AuditRange = {}): Promise<Record<string, unknown>> {
    return this.call("audit_clearing", { ...o });
  }

  largeTransactions(o: AuditRange & { threshold?: string } = {}): Promise<Record<string, unknown>> {
    return this.call("audit_largeTransactions", { ...o });
  }

  events(
    o: AuditRange & {
      subject?: string;
      account?: string;
      programme?: string;
      card?: number;
      name?: string;
      emitter?: string;
      limit?: number;
      cursor?: string;
    } = {},
  ): Promise<{ height: number; events: Record<string, unknown>[]; next: string | null }> {
    return this.call("audit_events", { ...o });
  }

  txs(
    account: string,
    o: AuditRange & { limit?: number } = {},
  ): Promise<{ height: number; txs: Record<string, unknown>[] }> {
    return this.call("audit_txs", { account, ...o });
  }

  /** An export document (JSON) to write to a file and check with `custos audit verify`. */
  export(
    o: AuditRange &
      (
        | ({ kind: "trace" } & AuditTarget)
        | { kind: "report"; programmes?: string[]; threshold?: string }
        | { kind: "reconciliation" }
      ),
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    return this.call("audit_export", { ...o }, signal);
  }
}
