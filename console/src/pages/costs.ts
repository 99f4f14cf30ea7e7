// Reading ClarionGetCosts answers: the months to offer, and one month's two bills (Pinpoint's prices and the
// operator's providers') side by side, line by line.
import type { Schemas } from "../api/client";

type Bill = Schemas["CostBill"];

/** The `count` calendar months (UTC) ending with the current one, newest first, as YYYY-MM. */
export function recentMonths(count: number, now: Date = new Date()): string[] {
  return Array.from({ length: count }, (_, back) =>
    new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1)).toISOString().slice(0, 7),
  );
}

export interface ComparedLine {
  meter: string;
  country: string;
  quantity: number;
  /** The amount as a number, or null when that side has no price for the line (Unpriced) or no such line. */
  pinpoint: number | null;
  provider: number | null;
}

/** The two bills' lines joined on meter and country, in Pinpoint's order, then the provider's lines it lacks. */
export function compareBills(pinpoint: Bill, provider: Bill): ComparedLine[] {
  const key = (line: Bill["Lines"][number]) => `${line.Meter}/${line.Country ?? ""}`;
  const amount = (line: Bill["Lines"][number] | undefined) =>
    line === undefined || line.Unpriced || line.Amount === undefined || line.Amount === null ? null : Number(line.Amount);
  const theirs = new Map(provider.Lines.map((line) => [key(line), line]));
  const joined = pinpoint.Lines.map((line) => ({
    meter: line.Meter,
    country: line.Country ?? "",
    quantity: line.Quantity,
    pinpoint: amount(line),
    provider: amount(theirs.get(key(line))),
  }));
  const ours = new Set(pinpoint.Lines.map(key));
  for (const line of provider.Lines) {
    if (!ours.has(key(line))) {
      joined.push({ meter: line.Meter, country: line.Country ?? "", quantity: line.Quantity, pinpoint: null, provider: amount(line) });
    }
  }
  return joined.filter((line) => line.quantity > 0);
}
