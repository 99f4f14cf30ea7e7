// Reading Pinpoint's KPI answers (GetApplicationDateRangeKpi and friends) into what the charts draw: every value is a
// string holding a double, and a grouped KPI has one row per group, so series are joined on their group value.
import { api, call, type Schemas } from "../api/client";

type KpiRow = Schemas["ResultRow"];

export interface DateRange {
  start: string;
  end: string;
}

/** The `days` UTC days ending today, as KPI start-time and end-time (Pinpoint allows at most 31). */
export function lastDays(days: number, now: Date = new Date()): DateRange {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1)));
  return { start: start.toISOString(), end: now.toISOString() };
}

/** Every row of one application KPI over the range, following NextToken. */
export async function applicationKpi(appId: string, name: string, range: DateRange): Promise<KpiRow[]> {
  const rows: KpiRow[] = [];
  let token: string | undefined;
  do {
    const answer = await call(
      api.GET("/v1/apps/{application-id}/kpis/daterange/{kpi-name}", {
        params: {
          path: { "application-id": appId, "kpi-name": name },
          query: { "start-time": range.start, "end-time": range.end, "page-size": "1000", "next-token": token },
        },
      }),
    );
    rows.push(...(answer.KpiResult?.Rows ?? []));
    token = answer.NextToken ?? undefined;
  } while (token);
  return rows;
}

/** A single-value KPI's figure (0 when nothing counted: Pinpoint answers no rows then). */
export function single(rows: KpiRow[] | undefined): number {
  return Number(rows?.[0]?.Values?.[0]?.Value ?? 0);
}

/** A grouped KPI as group value → figure. */
export function byGroup(rows: KpiRow[] | undefined): Map<string, number> {
  return new Map((rows ?? []).map((row) => [row.GroupedBys?.[0]?.Value ?? "", Number(row.Values?.[0]?.Value ?? 0)]));
}

/** Several grouped KPIs joined on their group (`key` names it in each record), in group order; a group missing
 *  from one KPI counts 0 there, as Pinpoint leaves out rows whose figures are all zero. */
export function joinSeries(key: string, series: Record<string, KpiRow[] | undefined>): Record<string, string | number>[] {
  const maps = Object.entries(series).map(([name, rows]) => [name, byGroup(rows)] as const);
  const groups = [...new Set(maps.flatMap(([, map]) => [...map.keys()]))].sort();
  return groups.map((group) => ({ [key]: group, ...Object.fromEntries(maps.map(([name, map]) => [name, map.get(group) ?? 0])) }));
}

/** A share of a whole, 0 when the whole is 0 (as Pinpoint's rates are). */
export function ratio(part: number, whole: number): number {
  return whole ? part / whole : 0;
}
